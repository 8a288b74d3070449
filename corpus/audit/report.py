"""report.html: the auditors' view of an output folder, rendered from stats/stats.json and manifest.json."""

from __future__ import annotations

import html
import json
from typing import Any

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.io import storage

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
.bar{background:#4a7;height:.8em;display:inline-block}.muted{color:#777}.sample{font-size:.85em;color:#444}
"""


def _n(x: int | float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:,.3f}"


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    head = "".join(f'<th class="{"n" if i in numeric else ""}">{html.escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if i in numeric else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _extract_section(parts: list[str], stats: dict[str, Any]) -> None:
    e = html.escape
    total = max(stats["documents"], 1)
    parts.append("<h2>Overview</h2>")
    parts.append(
        _table(
            ["", "count", "share of documents"],
            [
                ["records read (content records)", _n(stats["records"]), ""],
                ["skipped (outside the recipe)", _n(stats["skipped"]), ""],
                ["documents (HTML records)", _n(stats["documents"]), "100%"],
                ["kept", _n(stats["kept"]), f"{100 * stats['kept'] / total:.1f}%"],
                ["removed", _n(stats["removed"]), f"{100 * stats['removed'] / total:.1f}%"],
                ["kept text (characters)", _n(stats["kept_chars"]), ""],
            ],
            {1},
        )
    )
    parts.append("<h2>Funnel</h2><p>Documents entering and leaving each step, in pipeline order.</p>")
    rows = []
    for step in stats["funnel"]:
        removed = step["in"] - step["out"]
        width = int(300 * step["out"] / total)
        reasons = ", ".join(f"{e(str(r))}: {_n(c)}" for r, c in step["removed"].items())
        rows.append([f"<code>{e(step['step'])}</code>", _n(step["in"]), _n(removed), _n(step["out"]),
                     f'<span class="bar" style="width:{width}px"></span>', reasons])  # fmt: skip
    parts.append(_table(["step", "in", "removed", "out", "", "reasons"], rows, {1, 2, 3}))
    if stats["skipped_reasons"]:
        parts.append("<h2>Skipped records</h2>")
        parts.append(_table(["reason", "records"], [[e(k), _n(v)] for k, v in stats["skipped_reasons"].items()], {1}))
    parts.append("<h2>Languages</h2>")
    langs = stats["languages"]
    rows = [[e(k), _n(langs["kept"].get(k, 0)), _n(v)] for k, v in list(langs["identified"].items())[:30]]
    parts.append(_table(["language", "kept", "identified"], rows, {1, 2}))
    if stats.get("charsets"):
        parts.append("<h2>How payloads were decoded</h2>")
        parts.append(
            _table(["charset source", "documents"], [[e(k), _n(v)] for k, v in stats["charsets"].items()], {1})
        )
    if stats.get("samples"):
        parts.append("<h2>Examples of removed documents</h2>")
        rows = [
            [f"<code>{e(str(s['removed_by']))}</code>", e(str(s["reason"])),
             f'{e(s["url"] or "(no URL: the record could not be read)")}'
             f'<br><span class="muted">{e(str(s["source_path"]))} @ {s["source_offset"]}</span>',
             f'<span class="sample">{e((s["text"] or "")[:300])}</span>']
            for s in stats["samples"]
        ]  # fmt: skip
        parts.append(_table(["step", "reason", "document", "text"], rows))


def _dedup_section(parts: list[str], dedup: dict[str, Any]) -> None:
    parts.append("<h2>Deduplication</h2>")
    removed = dedup["removed"]
    total = max(dedup["documents"], 1)
    rows = [
        ["documents in", _n(dedup["documents"]), ""],
        ["exact duplicates removed", _n(removed["exact"]), f"{100 * removed['exact'] / total:.1f}%"],
        ["near duplicates removed (MinHash)", _n(removed["minhash"]), f"{100 * removed['minhash'] / total:.1f}%"],
        ["kept", _n(dedup["kept"]), f"{100 * dedup['kept'] / total:.1f}%"],
        ["candidate edges / component rounds", f"{_n(dedup['candidate_edges'])} / {dedup['components_rounds']}", ""],
    ]
    if "pii" in dedup:
        rows.append(
            ["PII replaced (emails / IPs)", f"{_n(dedup['pii']['emails'])} / {_n(dedup['pii']['ip_addresses'])}", ""]
        )
    parts.append(_table(["", "count", "share"], rows, {1}))
    sizes = dedup.get("kept_by_cluster_size", {})
    if sizes:
        parts.append("<p>Kept documents by the size of their duplicate cluster:</p>")
        parts.append(_table(["cluster size", "kept documents"], [[k, _n(v)] for k, v in sizes.items()], {0, 1}))


def _refetch_section(parts: list[str], refetch: dict[str, Any]) -> None:
    parts.append("<h2>Refetched PDFs</h2>")
    parts.append(
        f"<p>{_n(refetch['truncated_pdfs'])} truncated PDF(s) on {_n(refetch['hosts'])} host(s) fetched again "
        "from their origin (the truncated records are in removed/ with <code>removed_by=refetch</code>; the "
        "fetched copies were extracted from refetched/):</p>"
    )
    rows = [[html.escape(k), _n(v)] for k, v in refetch["outcomes"].items() if v]
    parts.append(_table(["outcome", "URLs"], rows, {1}))


def _tokenize_section(parts: list[str], tokens: dict[str, Any]) -> None:
    e = html.escape
    parts.append("<h2>Tokenization</h2>")
    mean = tokens["tokens"] / max(tokens["documents"], 1)
    rows = [
        [
            "tokenizer",
            f"<code>{e(tokens['tokenizer'])}</code> (vocabulary {_n(tokens['vocab_size'])}, EOS {tokens['eos_id']})",
        ],
        ["documents", _n(tokens["documents"])],
        ["tokens", f"{_n(tokens['tokens'])} ({mean:,.0f} per document)"],
        ["shards", f"{tokens['shards']}" + (f", shuffled with seed {tokens['seed']}" if tokens["shuffled"] else "")],
    ]
    parts.append(_table(["", ""], rows))
    by_language = tokens.get("tokens_by_language", {})
    if by_language:
        parts.append(_table(["language", "tokens"], [[e(k), _n(v)] for k, v in by_language.items()], {1}))


def render(
    stats: dict[str, Any] | None,
    run: Run,
    dedup: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
    refetch: dict[str, Any] | None = None,
) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>corpus report</title><style>{_STYLE}</style>"]
    parts.append("<h1>Corpus run report</h1>")
    config = run.config
    parts.append(
        f'<p class="muted">run <code>{e(run.run_id)}</code>,'
        f" recipe <code>{e(str(config['recipe']))}</code>,"
        f" compat <code>{e(str(config['compat']))}</code>,"
        f" config sha256 <code>{e(run.config_sha256[:16])}</code>,"
        f" {len(run.inputs)} input file(s), created {e(run.created)}</p>"
    )
    if refetch is not None:
        _refetch_section(parts, refetch)
    if stats is not None:
        _extract_section(parts, stats)
    if dedup is not None:
        _dedup_section(parts, dedup)
    if tokens is not None:
        _tokenize_section(parts, tokens)

    parts.append("<h2>Stages</h2>")
    rows = []
    for name, stage in run.stages.items():
        files = sum(len(v) for v in stage["outputs"].values())
        counted = [s["rows"] for v in stage["outputs"].values() for s in v if s["rows"] is not None]
        rows_out = _n(sum(counted)) if counted else "—"  # JSON outputs have no row count
        rows.append([e(name), e(stage["started"]), e(stage["finished"]), _n(files), rows_out])
    parts.append(_table(["stage", "started", "finished", "files", "rows"], rows, {3, 4}))
    versions = ", ".join(f"{e(k)} {e(str(v))}" for k, v in run.versions.items() if v)
    parts.append(f'<p class="muted">{versions}</p>')
    return "\n".join(parts)


def write_report(output: str) -> str:
    output = storage.absolute(output)
    run = manifest.load(output)
    if run is None:
        raise FileNotFoundError(f"{output}/manifest.json is missing")

    def load(name: str) -> dict[str, Any] | None:
        url = storage.join(output, "stats", name)
        return json.loads(storage.read_text(url)) if storage.exists(url) else None

    stats, dedup, tokens = load("stats.json"), load("dedup.json"), load("tokenize.json")
    if stats is None and dedup is None and tokens is None:
        raise FileNotFoundError(f"{output}/stats/ has no statistics: run the stats stage first (corpus stats {output})")
    path = storage.join(output, "report.html")
    storage.write_text(path, render(stats, run, dedup, tokens, load("refetch.json")), if_changed=True)
    return path
