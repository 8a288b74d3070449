"""report.html: the auditors' view of an output folder, one self-contained page (inline SVG charts, inline CSS, no
script, nothing fetched at view time; printable). Rendered from manifest.json, stats/*.json and stats/profile.json
(the report stage computes the profile in Spark: corpus.jobs.audit), plus a drift comparison when a baseline
is given."""

from __future__ import annotations

import html
import json
import shlex
from datetime import datetime
from typing import Any

import numpy as np
from scipy.stats import median_abs_deviation

from corpus.audit import charts, manifest
from corpus.audit.manifest import Run
from corpus.io import storage

PROFILE = "profile.json"
#: A shard is an outlier when |robust z| exceeds this (Iglewicz and Hoaglin's cut-off for modified z-scores).
OUTLIER_Z = 3.5
#: Floor of the robust scale (1.4826 x MAD), so shards that differ by a hair from identical peers are not flagged.
SCALE_FLOOR = 0.01

_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1180px;padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:1.2em 0 .3em}
nav{columns:3 14em;font-size:.9em;margin:.8em 0 1.2em;padding:.6em 1em;background:#f6f7f8;border-radius:4px}
nav a{display:block}
a{color:#0b5cad}
table{border-collapse:collapse;margin:.5em 0;max-width:100%}
td,th{padding:.25em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top;overflow-wrap:anywhere}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-size:.88em;overflow-wrap:anywhere}
.muted{color:#666}.sample{font-size:.85em;color:#444;max-width:36em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:.6em 1.2em}
.chart{width:100%;height:auto;display:block}
figure{margin:0;break-inside:avoid}
.wide{max-width:760px}
.flag{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}
.scroll{overflow-x:auto}
@media print{nav{display:none}body{max-width:none;font-size:11px}h2{break-after:avoid}.chart{break-inside:avoid}}
"""


def _n(x: int | float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.3f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    head = "".join(f'<th class="{"n" if i in numeric else ""}">{html.escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"n" if i in numeric else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _duration(started: str | None, finished: str | None) -> str:
    try:
        seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def robust_z(values: list[float]) -> list[float]:
    """(x - median) / max(1.4826 x MAD, SCALE_FLOOR): the modified z-score, robust to the outliers it looks for."""
    if not values:
        return []
    x = np.asarray(values, dtype=float)
    scale = max(float(median_abs_deviation(x, scale="normal")), SCALE_FLOOR)
    return [float(v) for v in (x - np.median(x)) / scale]


def shard_outliers(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per shard: its removal rate and language-mix distance (total variation distance of its language shares
    from all shards' pooled shares), their robust z-scores, and whether either is beyond OUTLIER_Z."""
    pooled: dict[str, int] = {}
    for shard in shards:
        for language, n in shard["languages"].items():
            pooled[language] = pooled.get(language, 0) + n
    total = max(sum(pooled.values()), 1)
    rows = []
    for shard in shards:
        docs = max(shard["documents"], 1)
        langs = shard["languages"]
        distance = 0.5 * sum(abs(langs.get(k, 0) / docs - pooled[k] / total) for k in pooled)
        top = max(langs.items(), key=lambda kv: kv[1])[0] if langs else "—"
        rows.append({**shard, "removal_rate": 1 - shard["kept"] / docs, "language_distance": distance, "top": top})
    for key in ("removal_rate", "language_distance"):
        for row, z in zip(rows, robust_z([r[key] for r in rows])):
            row[f"{key}_z"] = z
    for row in rows:
        row["outlier"] = [k for k in ("removal_rate", "language_distance") if abs(row[f"{k}_z"]) > OUTLIER_Z]
    return rows


def inspect_command(output: str, doc_id: str) -> str:
    return f"corpus inspect {shlex.quote(output)} --id {shlex.quote(doc_id)}"


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.sections: list[tuple[str, str]] = []

    def section(self, anchor: str, title: str) -> None:
        self.sections.append((anchor, title))
        self.parts.append(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>')

    def end(self) -> None:
        self.parts.append("</section>")

    def add(self, text: str) -> None:
        self.parts.append(text)


def _overview(page: _Page, run: Run, stats: dict | None, dedup: dict | None, tokens: dict | None) -> None:
    page.section("overview", "Overview")
    rows = []
    documents = None
    if stats is not None:
        documents = stats["documents"]
        rows += [
            ["records read (content records)", _n(stats["records"]), ""],
            ["skipped (outside the recipe)", _n(stats["skipped"]), ""],
            ["documents", _n(documents), "100%"],
            ["removed by the filters", _n(stats["removed"]), _pct(stats["removed"], documents)],
            ["kept by the filters (filtered/)", _n(stats["kept"]), _pct(stats["kept"], documents)],
        ]
    if dedup is not None:
        base = documents or dedup["documents"]
        if stats is None:
            rows.append(["documents (dedup input)", _n(dedup["documents"]), "100%"])
        removed = sum(dedup["removed"].values())
        rows.append(["removed as duplicates", _n(removed), _pct(removed, base)])
        rows.append(["<b>kept after dedup (deduped/)</b>", f"<b>{_n(dedup['kept'])}</b>", _pct(dedup["kept"], base)])
    if stats is not None:
        rows.append(["kept text (characters, before dedup)", _n(stats["kept_chars"]), ""])
    if tokens is not None:
        rows.append(["kept tokens (tokenized/)", _n(tokens["tokens"]), ""])
    page.add(_table(["", "count", "share of documents"], rows, {1, 2}))
    page.end()


def _funnel(page: _Page, stats: dict, dedup: dict | None) -> None:
    page.section("funnel", "Funnel")
    steps = [(s["step"], s["in"], s["out"], s["removed"]) for s in stats["funnel"]]
    if dedup is not None:
        remaining = steps[-1][2] if steps else dedup["documents"]
        for name in ("exact", "minhash"):
            removed = dedup["removed"].get(name, 0)
            steps.append((f"dedup: {name}", remaining, remaining - removed, {}))
            remaining -= removed
    total = max(stats["documents"], 1)
    page.add("<p>Documents left after each step, in pipeline order (share of all documents).</p>")
    chart = charts.bars(
        "Documents left after each step",
        [name for name, *_ in steps],
        {"documents out": [out / total for _, _, out, _ in steps]},
        percent=True,
    )
    page.add(f'<figure class="wide">{chart}</figure>')
    e = html.escape
    rows = []
    for name, n_in, n_out, reasons in steps:
        top = ", ".join(f"{e(str(r))}: {_n(c)}" for r, c in list(reasons.items())[:6])
        rows.append([f"<code>{e(name)}</code>", _n(n_in), _n(n_in - n_out), _n(n_out), top])
    page.add(_table(["step", "in", "removed", "out", "top reasons"], rows, {1, 2, 3}))
    if stats.get("skipped_reasons"):
        page.add("<h3>Skipped records</h3>")
        page.add(_table(["reason", "records"], [[e(k), _n(v)] for k, v in stats["skipped_reasons"].items()], {1}))
    page.end()


def _histogram_grid(histos: dict[str, Any], xlabel: str = "") -> str:
    figures = []
    for key, h in sorted(histos.items()):
        if not h["counts"]:
            continue
        order = ["kept", "removed by this filter", "removed by another step"]
        series = {name: h["counts"][name] for name in order if name in h["counts"]}
        series.update({k: v for k, v in h["counts"].items() if k not in series})
        note = []
        below, above = h["clipped"]
        if below or above:
            note.append(f"{below + above:,} value(s) beyond the 0.5–99.5 % quantiles counted in the end bins")
        beyond = [t for t in h["thresholds"] if not h["edges"][0] <= t <= h["edges"][-1]]
        if beyond:
            note.append("threshold " + ", ".join(f"{t:g}" for t in beyond) + " lies outside the data")
        svg = charts.histogram(key, h["edges"], series, h["thresholds"], log_x=h["log"], xlabel=xlabel)
        caption = f'<figcaption class="muted">{html.escape("; ".join(note))}</figcaption>' if note else ""
        figures.append(f"<figure>{svg}{caption}</figure>")
    return f'<div class="grid">{"".join(figures)}</div>'


def _signals(page: _Page, profile: dict) -> None:
    histos = profile["histograms"].get("signals") or {}
    if not histos:
        return
    page.section("signals", "Filter signals")
    page.add(
        "<p>For every signal the filters computed: documents kept, removed by the filter that computed it, and "
        "removed by another (later) step, with the configured threshold(s) dashed. "
        f"{profile['bins']} fixed bins over the values' range (between the 0.5 and 99.5 % quantiles from 2,000 values "
        "up), widened to show a threshold near the data; computed in Spark from the written Parquet.</p>"
    )
    page.add(_histogram_grid(histos))
    page.end()


def _quality(page: _Page, profile: dict) -> None:
    histos = dict(profile["histograms"].get("quality") or {})
    histos.update({k: v for k, v in (profile["histograms"].get("signals") or {}).items() if k.endswith(".score")})
    if not histos:
        return
    page.section("quality", "Quality scores")
    page.add("<p>Scores of the quality classifier(s) that ran: <code>quality_score</code> and each "
             "<code>&lt;name&gt;.score</code> signal.</p>")  # fmt: skip
    page.add(_histogram_grid(histos, "score"))
    page.end()


def _languages(page: _Page, stats: dict) -> None:
    langs = stats["languages"]
    if not langs["identified"]:
        return
    page.section("languages", "Languages")
    top = list(langs["identified"].items())[:15]
    total_all = max(sum(langs["identified"].values()), 1)
    total_kept = max(sum(langs["kept"].values()), 1)
    chart = charts.bars(
        "Language shares (top 15)",
        [k for k, _ in top],
        {
            "all documents": [v / total_all for _, v in top],
            "kept": [langs["kept"].get(k, 0) / total_kept for k, _ in top],
        },
        percent=True,
    )
    page.add(f'<figure class="wide">{chart}</figure>')
    e = html.escape
    rows = [
        [e(k), _n(v), _pct(v, total_all), _n(langs["kept"].get(k, 0))]
        for k, v in list(langs["identified"].items())[:30]
    ]
    page.add(_table(["language", "documents", "share", "kept"], rows, {1, 2, 3}))
    page.end()


def _lengths(page: _Page, profile: dict) -> None:
    histos = profile["histograms"]
    if not histos.get("length") and not histos.get("tokens"):
        return
    page.section("lengths", "Document length and tokens")
    page.add("<p>Kept documents (after dedup when it ran); bins even on a log scale.</p>")
    figures = []
    for name, unit in (("length", "characters"), ("tokens", "tokens")):
        for h in (histos.get(name) or {}).values():
            svg = charts.histogram(f"{unit} per kept document", h["edges"], h["counts"], log_x=True, xlabel=unit)
            figures.append(f"<figure>{svg}</figure>")
    page.add(f'<div class="grid">{"".join(figures)}</div>')
    page.end()


def _dedup(page: _Page, dedup: dict, run: Run, profile: dict | None) -> None:
    page.section("dedup", "Deduplication")
    removed = dedup["removed"]
    total = max(dedup["documents"], 1)
    rows = [
        ["documents in", _n(dedup["documents"]), ""],
        ["exact duplicates removed", _n(removed["exact"]), _pct(removed["exact"], total)],
        ["near duplicates removed (MinHash)", _n(removed["minhash"]), _pct(removed["minhash"], total)],
        ["kept", _n(dedup["kept"]), _pct(dedup["kept"], total)],
        ["candidate edges / component rounds", f"{_n(dedup['candidate_edges'])} / {dedup['components_rounds']}", ""],
    ]
    pii = (run.config.get("dedup") or {}).get("pii") or {}
    if "pii" in dedup:
        rows.append(
            ["PII replaced (emails / IPs)", f"{_n(dedup['pii']['emails'])} / {_n(dedup['pii']['ip_addresses'])}", ""]
        )
    elif pii.get("enabled", True):
        rows.append(["PII masking", "on (not counted: the input has no signals column)", ""])
    else:
        rows.append(["PII masking", "off (dedup.pii.enabled=false)", ""])
    page.add(_table(["", "count", "share"], rows, {1, 2}))
    sizes = dedup.get("kept_by_cluster_size") or (profile or {}).get("cluster_sizes") or {}
    if sizes:
        labels = sorted(sizes, key=int)
        chart = charts.columns(
            "Kept documents by duplicate-cluster size", labels, [sizes[k] for k in labels], "cluster size", log=True
        )
        page.add(f'<div class="grid"><figure>{chart}</figure></div>')
    page.end()


def _tokens(page: _Page, tokens: dict) -> None:
    e = html.escape
    page.section("tokens", "Tokenization")
    mean = tokens["tokens"] / max(tokens["documents"], 1)
    rows = [
        ["tokenizer", f"<code>{e(tokens['tokenizer'])}</code> (vocabulary {_n(tokens['vocab_size'])}, "
         f"EOS {tokens['eos_id']})"],
        ["documents", _n(tokens["documents"])],
        ["tokens", f"{_n(tokens['tokens'])} ({mean:,.0f} per document)"],
        ["shards", f"{tokens['shards']}" + (f", shuffled with seed {tokens['seed']}" if tokens["shuffled"] else "")],
    ]  # fmt: skip
    page.add(_table(["", ""], rows))
    by_language = tokens.get("tokens_by_language", {})
    if by_language:
        page.add(_table(["language", "tokens"], [[e(k), _n(v)] for k, v in by_language.items()], {1}))
    page.end()


def _shards(page: _Page, profile: dict) -> None:
    shards = profile.get("shards") or []
    if not shards:
        return
    rows = shard_outliers(shards)
    flagged = [r for r in rows if r["outlier"]]
    page.section("shards", "Shards")
    page.add(
        "<p><b>Outlier rule.</b> For each shard (input file): its removal rate, and its language-mix distance "
        "(total variation distance between its language shares and those of all shards together). Each gets a "
        "robust z-score, (x − median) / (1.4826 × MAD), with the scale floored at "
        f"{SCALE_FLOOR}; a shard with |z| &gt; {OUTLIER_Z} on either is flagged. "
        f"{len(flagged)} of {len(rows)} shard(s) flagged{'' if flagged else '.'}</p>"
    )
    ordered = sorted(rows, key=lambda r: (not r["outlier"], r["source_path"]))[:200]
    e = html.escape
    table_rows = []
    for r in ordered:
        mark = f'<span class="flag">{e(", ".join(r["outlier"]))}</span>' if r["outlier"] else ""
        table_rows.append([
            f"<code>{e(r['source_path'])}</code>", _n(r["documents"]), _n(r["kept"]),
            f"{100 * r['removal_rate']:.1f}%", f"{r['removal_rate_z']:+.1f}", e(r["top"]),
            f"{r['language_distance']:.3f}", f"{r['language_distance_z']:+.1f}", mark,
        ])  # fmt: skip
    page.add(_table(["shard", "documents", "kept", "removed", "z", "top language", "language distance", "z",
                     "outlier"], table_rows, {1, 2, 3, 4, 6, 7}))  # fmt: skip
    if len(rows) > 200:
        page.add(
            f'<p class="muted">First 200 of {len(rows)} shards (flagged ones first); all are in stats/{PROFILE}.</p>'
        )
    page.end()


def _samples(page: _Page, samples: list[dict], output: str) -> None:
    if not samples:
        return
    e = html.escape
    page.section("samples", "Sample documents per removal reason")
    page.add("<p>A few removed documents for every reason (chosen by a seeded hash of their id), each with where it "
             "came from (<code>source_path@source_offset</code>) and the command that shows it whole, with its "
             "signals and the raw WARC record.</p>")  # fmt: skip
    rows = []
    for s in samples:
        where = f"{s.get('source_path')}@{s.get('source_offset')}" if s.get("source_path") else "(no source record)"
        reason = s["reason"]
        rows.append([
            f"<code>{e(str(s['removed_by']))}</code><br>{e(str(reason))}",
            f"{e(s.get('url') or '(no URL: the record could not be read)')}<br><code class=muted>{e(where)}</code>"
            f"<br><code>{e(inspect_command(output, s['id']))}</code>",
            f'<div class="sample">{e((s.get("text") or "")[:300])}</div>',
        ])  # fmt: skip
    page.add(_table(["step / reason", "document", "text"], rows))
    page.end()


def _drift(page: _Page, drift: dict, baseline: str) -> None:
    e = html.escape
    page.section("drift", "Drift from the baseline")
    crossed = drift["crossed"]
    status = (
        f'<span class="flag">{len(crossed)} threshold(s) crossed</span>'
        if crossed
        else '<span class="ok">within every threshold</span>'
    )
    page.add(f"<p>Baseline <code>{e(baseline)}</code> (A) against this run (B): {status}. {e(drift['method'])}.</p>")
    if crossed:
        page.add("<ul>" + "".join(f"<li>{e(c)}</li>" for c in crossed) + "</ul>")
    differences = drift.get("manifests") or {}
    diff_rows = [
        [e(part), f"<code>{e(k)}</code>", e(json.dumps(va)), e(json.dumps(vb))]
        for part in ("config", "code", "model_cards", "versions")
        for k, (va, vb) in (differences.get(part) or {}).items()
    ]
    if diff_rows:
        page.add("<h3>What differs between the runs</h3>")
        page.add(_table(["", "key", "baseline", "this run"], diff_rows))
    rows = [[f"<code>{e(s)}</code>", f"{r['a']:.1%}", f"{r['b']:.1%}", f"{r['delta']:+.1%}"]
            for s, r in drift["removal_rates"].items()]  # fmt: skip
    page.add("<h3>Removal rates</h3>" + _table(["step", "baseline", "this run", "change"], rows, {1, 2, 3}))
    rows = [
        [f"<code>{e(k)}</code>", _n(v["a"]), _n(v["b"]), f"{v['relative_change']:+.1%}"]
        for k, v in drift["counts"].items()
    ]
    page.add(_table(["count", "baseline", "this run", "change"], rows, {1, 2, 3}))
    rows = [[e(k), f"{v['psi']:.3f}"] for k, v in drift["categorical"].items()]
    page.add("<h3>Categorical shares (PSI)</h3>" + _table(["shares of", "PSI"], rows, {1}))
    t = drift["thresholds"]
    rows = [
        [f"<code>{e(k)}</code>", f"{v['values'][0]:,} / {v['values'][1]:,}", f"{v['ks']:.3f}" if "ks" in v else "—",
         f"{v['wasserstein_scaled']:.3f}" if "ks" in v else "—", e(v.get("note", ""))]
        for k, v in drift["numeric"].items()
    ]  # fmt: skip
    page.add(f"<h3>Numeric signals (KS threshold {t['ks']}, Wasserstein/IQR threshold {t['wasserstein']})</h3>")
    page.add(_table(["signal", "values A / B", "KS", "Wasserstein / IQR", ""], rows, {1, 2, 3}))
    page.end()


def _refetch(page: _Page, refetch: dict) -> None:
    page.section("refetch", "Refetched PDFs")
    page.add(
        f"<p>{_n(refetch['truncated_pdfs'])} truncated PDF(s) on {_n(refetch['hosts'])} host(s) fetched again "
        "from their origin (the truncated records are in removed/ with <code>removed_by=refetch</code>; the "
        "fetched copies were extracted from refetched/):</p>"
    )
    rows = [[html.escape(k), _n(v)] for k, v in refetch["outcomes"].items() if v]
    page.add(_table(["outcome", "URLs"], rows, {1}))
    page.end()


def _stages(page: _Page, run: Run) -> None:
    e = html.escape
    page.section("stages", "Stages and lineage")
    rows = []
    for name, stage in run.stages.items():
        outputs = []
        for folder, shards in stage.get("outputs", {}).items():
            counted = [s["rows"] for s in shards if s.get("rows") is not None]
            what = "index rows" if folder == "minhash_index" else "rows"
            outputs.append(f"{e(folder)}: {len(shards)} file(s)" + (f", {_n(sum(counted))} {what}" if counted else ""))
        rows.append([e(name), e(stage.get("started", "")), _duration(stage.get("started"), stage.get("finished")),
                     "<br>".join(outputs)])  # fmt: skip
    page.add(_table(["stage", "started", "took", "wrote"], rows))
    lineage = run.lineage or {}
    if not lineage:
        page.add('<p class="muted">This run was made before lineage was recorded (no git commit, input listing hash '
                 "or model cards in its manifest).</p>")  # fmt: skip
    rows = [
        ["corpus version", e(str(lineage.get("corpus_version", run.versions.get("corpus"))))],
        ["git commit", f"<code>{e(str(lineage.get('git_commit')))}</code>"
         + (" (with uncommitted changes)" if lineage.get("git_dirty") else "")],
        ["config sha256", f"<code>{e(run.config_sha256)}</code>"],
        ["input listing sha256", f"<code>{e(str(lineage.get('input_listing_sha256')))}</code> "
         f"({len(run.inputs)} input file(s))"],
    ]  # fmt: skip
    for key, card in (lineage.get("model_cards") or {}).items():
        rows.append([f"model card <code>{e(key)}</code>", f"<code>{e(card['sha256'])}</code> {e(card['path'])}"])
    page.add(_table(["", ""], rows))
    versions = ", ".join(f"{e(k)} {e(str(v))}" for k, v in run.versions.items() if v)
    page.add(f'<p class="muted">{versions}</p>')
    page.add('<p class="muted">Files: <a href="manifest.json">manifest.json</a> · <a href="stats/stats.json">'
             f'stats/stats.json</a> · <a href="stats/{PROFILE}">stats/{PROFILE}</a></p>')  # fmt: skip
    page.end()


def render(
    stats: dict[str, Any] | None,
    run: Run,
    dedup: dict[str, Any] | None = None,
    tokens: dict[str, Any] | None = None,
    refetch: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
    drift: dict[str, Any] | None = None,
    output: str = "OUT",
    baseline: str | None = None,
) -> str:
    e = html.escape
    page = _Page()
    config = run.config
    if "extract" in run.stages or stats is not None:
        what = f"recipe <code>{e(str(config['recipe']))}</code>, compat <code>{e(str(config['compat']))}</code>"
    else:
        done = [s for s in ("dedup", "tokenize") if s in run.stages]
        what = f"{' and '.join(done) or 'stages'} of input Parquet (no extraction)"
    commit = (run.lineage or {}).get("git_commit")
    header = (
        f'<p class="muted">run <code>{e(run.run_id)}</code>, {what}, config sha256 <code>{e(run.config_sha256[:16])}'
        f"</code>, {len(run.inputs)} input file(s), created {e(run.created)}"
        + (f", code <code>{e(commit[:12])}</code>" if commit else "")
        + "</p>"
    )
    _overview(page, run, stats, dedup, tokens)
    if drift is not None:
        _drift(page, drift, baseline or "baseline")
    if refetch is not None:
        _refetch(page, refetch)
    if stats is not None:
        _funnel(page, stats, dedup)
    if profile is not None:
        _signals(page, profile)
        _quality(page, profile)
    if stats is not None:
        _languages(page, stats)
    if profile is not None:
        _lengths(page, profile)
    if dedup is not None:
        _dedup(page, dedup, run, profile)
    if tokens is not None:
        _tokens(page, tokens)
    if profile is not None:
        _shards(page, profile)
        _samples(page, profile.get("samples") or [], output)
    _stages(page, run)
    nav = "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in page.sections)
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
            f"<title>corpus report: {e(output)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>Corpus run report</h1>{header}<nav>{nav}</nav>",
            *page.parts,
            "</body></html>",
        ]
    )


def load_json(output: str, *parts: str) -> dict[str, Any] | None:
    url = storage.join(output, *parts)
    return json.loads(storage.read_text(url)) if storage.exists(url) else None


def write_report(
    output: str, profile: dict[str, Any] | None = None, drift: dict[str, Any] | None = None, baseline: str | None = None
) -> str:
    """Render OUT/report.html from what the output holds (and `profile`, else stats/profile.json); return its path."""
    output = storage.absolute(output)
    run = manifest.load(output)
    if run is None:
        raise FileNotFoundError(f"{output}/manifest.json is missing")
    stats, dedup, tokens = load_json(output, "stats", "stats.json"), load_json(output, "stats", "dedup.json"), None
    tokens = load_json(output, "stats", "tokenize.json")
    if stats is None and dedup is None and tokens is None:
        raise FileNotFoundError(f"{output}/stats/ has no statistics: run the stats stage first (corpus stats {output})")
    profile = profile or load_json(output, "stats", PROFILE)
    path = storage.join(output, "report.html")
    page = render(
        stats, run, dedup, tokens, load_json(output, "stats", "refetch.json"), profile, drift, output, baseline
    )
    storage.write_text(path, page, if_changed=True)
    return path


__all__ = ["OUTLIER_Z", "PROFILE", "inspect_command", "render", "robust_z", "shard_outliers", "write_report"]
