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
