"""Extraction statistics from aggregated counts: per shard and merged, the funnel through the recipe's steps
(documents in and out of each step, and why they left), skipped records, languages and charsets.

The counts come from the written Parquet (jobs/stages/stats.py groups it with Spark into rows of
corpus.schema.STATS_ROW_SCHEMA), so the statistics always agree with the shards."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from corpus.recipes import STEPS
from corpus.schema import STATUS_KEPT, STATUS_REMOVED, STATUS_SKIPPED

#: One aggregated row: source_path, status, removed_by, reason, language, charset source, docs, chars.
Row = dict[str, Any]


def _funnel(removed: Counter, removed_by_reason: dict[str, Counter], records: int) -> list[dict[str, Any]]:
    steps = list(STEPS) + sorted(set(removed) - set(STEPS))
    funnel = []
    remaining = records
    for step in steps:
        out = remaining - removed.get(step, 0)
        funnel.append(
            {
                "step": step,
                "in": remaining,
                "out": out,
                "removed": _ranked(removed_by_reason.get(step, Counter())),
            }
        )
        remaining = out
    return funnel


def summarize(rows: Iterable[Row], source_path: str | None = None) -> dict[str, Any]:
    """Statistics over `rows` (one shard's, or all of them for the merged view)."""
    status: Counter = Counter()
    removed: Counter = Counter()
    reasons: dict[str, Counter] = defaultdict(Counter)
    skipped: Counter = Counter()
    languages_kept: Counter = Counter()
    languages_all: Counter = Counter()
    charsets: Counter = Counter()
    kept_chars = 0
    for row in rows:
        n = row["docs"]
        status[row["status"]] += n
        if row["status"] == STATUS_REMOVED:
            removed[row["removed_by"]] += n
            reasons[row["removed_by"]][row["reason"]] += n
        elif row["status"] == STATUS_SKIPPED:
            skipped[row["reason"]] += n
        else:
            kept_chars += row["chars"] or 0
            if row["language"]:
                languages_kept[row["language"]] += n
        if row["language"]:
            languages_all[row["language"]] += n
        if row.get("charset"):
            charsets[row["charset"]] += n
    documents = status[STATUS_KEPT] + status[STATUS_REMOVED]
    out: dict[str, Any] = {}
    if source_path is not None:
        out["source_path"] = source_path
    out.update(
        {
            "records": documents + status[STATUS_SKIPPED],
            "documents": documents,
            "kept": status[STATUS_KEPT],
            "removed": status[STATUS_REMOVED],
            "skipped": status[STATUS_SKIPPED],
            "kept_chars": kept_chars,
            "funnel": _funnel(removed, reasons, documents),
            "skipped_reasons": _ranked(skipped),
            "languages": {"kept": _ranked(languages_kept), "identified": _ranked(languages_all)},
            "charsets": _ranked(charsets),
        }
    )
    return out


def build(rows: list[Row], inputs: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(merged statistics, per-shard statistics keyed by shard name) for the extract stage."""
    by_source: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_source[row["source_path"]].append(row)
    shards = {}
    for index, path in enumerate(inputs):
        shards[f"part-{index:05d}"] = summarize(by_source.get(path, []), path)
    merged = summarize(rows)
    merged["shards"] = len(inputs)
    return merged, shards


def _ranked(counter: Counter) -> dict:
    """Largest count first; equal counts by key, whatever order Spark returned the groups in."""
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def read_stats(output: str) -> dict[str, dict[str, Any] | None]:
    """The statistics files of an output folder (stats/stats.json, dedup.json, tokenize.json, refetch.json),
    None for those it lacks."""
    import json

    from corpus.io import storage

    found: dict[str, dict[str, Any] | None] = {}
    for name in ("stats", "dedup", "tokenize", "refetch"):
        url = storage.join(output, "stats", f"{name}.json")
        found[name] = json.loads(storage.read_text(url)) if storage.exists(url) else None
    return found


def funnel_text(stats: dict[str, Any] | None, dedup: dict[str, Any] | None, tokens: dict[str, Any] | None) -> str:
    """The run's funnel for a terminal: documents in and out of every step, the top reasons, what dedup removed
    and the kept tokens (from stats/stats.json, dedup.json and tokenize.json; any may be missing)."""
    lines = []
    if stats is not None:
        lines.append(
            f"{stats['records']:,} records: {stats['skipped']:,} skipped (outside the recipe), "
            f"{stats['documents']:,} documents"
        )
        for step in stats["funnel"]:
            removed = step["in"] - step["out"]
            if not removed and step["step"] not in ("reader", "extract"):
                continue
            top = ", ".join(f"{reason} {n:,}" for reason, n in list(step["removed"].items())[:3])
            more = len(step["removed"]) - 3
            top += f", +{more} more" if more > 0 else ""
            lines.append(
                f"  {step['step']:<18} {step['in']:>10,} in {removed:>9,} out" + (f"   ({top})" if top else "")
            )
        lines.append(f"  {'kept':<18} {stats['kept']:>10,}")
    if dedup is not None:
        removed = dedup["removed"]
        lines.append(
            f"dedup: {dedup['documents']:,} in, {removed['exact']:,} exact and {removed['minhash']:,} near "
            f"duplicates removed, {dedup['kept']:,} kept"
        )
    if tokens is not None:
        lines.append(
            f"tokens: {tokens['tokens']:,} ({tokens['tokenizer']}) in {tokens['documents']:,} documents, "
            f"{tokens['shards']} shard(s)"
        )
    return "\n".join(lines)
