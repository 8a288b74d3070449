"""Cost model for one Common Crawl dump: core-hours per stage, the cluster for a 24-hour run, shuffle and storage.

Every rate is a per-core figure measured by a `scripts/bench_*.py` run (docs/BENCHMARKS.md has the commands;
docs/SCALE.md says where each default comes from); every volume of the crawl is a projection from published
figures. Change any of them on the command line, e.g. with the rates measured on your own nodes or the funnel
of your first files (`corpus stats OUT`):

    python scripts/cost_model.py                                  # the defaults of docs/SCALE.md
    python scripts/cost_model.py --pages 2.5e9 --html-ms 50 --no-pdf --efficiency 0.9
    python scripts/cost_model.py --json                           # the same figures as JSON

It prints a Markdown table (the one in docs/SCALE.md). Nothing here runs Spark; it is arithmetic on the inputs,
kept in a script so the table and its inputs cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, fields


@dataclass
class Inputs:
    """A crawl and the per-core rates the model multiplies. Defaults: docs/SCALE.md, "Where the inputs come from"."""

    # -- the crawl (projected: Common Crawl's published figures for a recent dump)
    warc_files: int = 90_000  #: WARC files in the dump
    warc_gib: float = 1.0  #: compressed GiB per WARC file
    pages: float = 3.0e9  #: response records (pages) in the dump
    html_share: float = 0.95  #: share of the pages that are HTML (the rest: PDFs, images, other types)
    pdf_share: float = 0.006  #: share of the pages that are PDFs (FinePDFs: "about 0.6 % of the crawl")
    pdf_pages: float = 6.5  #: pages per PDF that arrives whole (FinePDFs' planning constant)
    pdf_truncated: float = 0.10  #: share of PDFs cut by the crawler, refetched
    pdf_truncated_pages: float = 39.0  #: pages per truncated PDF (FinePDFs' planning constant)
    pdf_ocr_share: float = 0.05  #: share of PDF pages the router OCRs (measured on the shared PDFs)
    dedup_share: float = 0.20  #: share of HTML pages that reach dedup (language + quality filters passed)
    dedup_kept: float = 0.60  #: share of those dedup keeps
    tokens_per_doc: float = 700.0  #: tokens per kept document
    # -- measured per-core rates (docs/BENCHMARKS.md)
    html_ms: float = 22.4  #: CPU ms per HTML record, extraction and filters, all processes (marginal, out of sample)
    other_ms: float = 0.23  #: CPU ms per record that is skipped (read with FastWARC, decompressed, typed)
    pdf_text_pages_per_s: float = 110.0  #: PDF pages per CPU-second, no OCR
    pdf_ocr_s: float = 7.4  #: CPU seconds per OCR'd page
    dedup_cpu_s_per_million: float = 389.0  #: CPU seconds per million documents, whole dedup stage
    dedup_shuffle_bytes_per_doc: float = 1620.0  #: shuffle written per document by dedup
    tokens_per_s: float = 703_000.0  #: tokens per CPU-second (tiktoken cl100k_base, on Spark)
    # -- output sizes (zstd Parquet; measured on ccdev and the tokenize benchmark, PDF projected)
    kept_kib_per_doc: float = 2.2  #: filtered/ (and deduped/) per kept document
    removed_kib_per_doc: float = 2.6  #: removed/ per removed document (its text is kept for audits)
    skipped_kib_per_doc: float = 0.19  #: skipped/ per record outside the recipe (no text)
    pdf_kib_per_page: float = 1.5  #: per PDF page of text (projected: ~3,000 characters a page)
    token_bytes: float = 1.73  #: tokenized/ bytes per token
    # -- the cluster
    efficiency: float = 0.70  #: fraction of linear when cores are added (measured: 1 vs 2 workers)
    hours: float = 24.0  #: wall-clock target


def model(x: Inputs) -> dict[str, dict[str, float]]:
    """Core-hours, shuffle and output per stage, and the cores for the target wall time."""
    html = x.pages * x.html_share
    pdfs = x.pages * x.pdf_share
    other = x.pages - html - pdfs
    pdf_pages = pdfs * ((1 - x.pdf_truncated) * x.pdf_pages + x.pdf_truncated * x.pdf_truncated_pages)
    to_dedup = html * x.dedup_share
    kept = to_dedup * x.dedup_kept
    tokens = kept * x.tokens_per_doc
    gib = 1 << 30
    stages = {
        "extract (FineWeb recipe, HTML)": {
            "core_hours": (html * x.html_ms + other * x.other_ms) / 1000 / 3600,
            "shuffle_gib": 0.0,
            "output_gib": (
                to_dedup * x.kept_kib_per_doc
                + (html - to_dedup) * x.removed_kib_per_doc
                + other * x.skipped_kib_per_doc
            )
            * 1024
            / gib,
        },
        "extract (FinePDFs recipe, PDF)": {
            # the PDF recipe reads every record of the dump too, and skips what is not a PDF
            "core_hours": (
                pdf_pages * (1 - x.pdf_ocr_share) / x.pdf_text_pages_per_s
                + pdf_pages * x.pdf_ocr_share * x.pdf_ocr_s
                + (x.pages - pdfs) * x.other_ms / 1000
            )
            / 3600,
            "shuffle_gib": 0.0,
            "output_gib": pdf_pages * x.pdf_kib_per_page * 1024 / gib,
        },
        "dedup (MinHash, per dump)": {
            "core_hours": to_dedup / 1e6 * x.dedup_cpu_s_per_million / 3600,
            "shuffle_gib": to_dedup * x.dedup_shuffle_bytes_per_doc / gib,
            "output_gib": kept * x.kept_kib_per_doc * 1024 / gib,
        },
        "tokenize": {
            "core_hours": tokens / x.tokens_per_s / 3600,
            "shuffle_gib": 0.0,
            "output_gib": tokens * x.token_bytes / gib,
        },
    }
    total = {key: sum(s[key] for s in stages.values()) for key in ("core_hours", "shuffle_gib", "output_gib")}
    stages["total"] = total
    for entry in stages.values():
        entry["cores_for_target"] = math.ceil(entry["core_hours"] / x.hours / x.efficiency)
    stages["total"]["input_tib"] = x.warc_files * x.warc_gib / 1024
    stages["total"]["html_pages"] = html
    stages["total"]["documents_to_dedup"] = to_dedup
    stages["total"]["documents_kept"] = kept
    stages["total"]["tokens"] = tokens
    return stages


def table(x: Inputs, result: dict[str, dict[str, float]]) -> str:
    cores = f"cores for {x.hours:g} h (at {x.efficiency:.0%} of linear)"
    lines = [
        f"| stage | core-hours | {cores} | shuffle GiB | output GiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in result.items():
        bold = "**" if name == "total" else ""
        lines.append(
            f"| {bold}{name}{bold} | {r['core_hours']:,.0f} | {r['cores_for_target']:,} | {r['shuffle_gib']:,.0f} "
            f"| {r['output_gib']:,.0f} |"
        )
    t = result["total"]
    lines.append("")
    lines.append(
        f"Input {t['input_tib']:,.0f} TiB of WARC; {t['html_pages'] / 1e9:.2f} B HTML pages; "
        f"{t['documents_to_dedup'] / 1e6:,.0f} M documents into dedup, {t['documents_kept'] / 1e6:,.0f} M kept; "
        f"{t['tokens'] / 1e9:,.0f} B tokens."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Inputs()
    for f in fields(Inputs):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, type=type(getattr(defaults, f.name)), default=getattr(defaults, f.name),
                            help=f"(default: {getattr(defaults, f.name):g})")  # fmt: skip
    parser.add_argument("--no-pdf", action="store_true", help="the FineWeb recipe only (no PDF recipe)")
    parser.add_argument("--json", action="store_true", help="print the inputs and results as JSON")
    args = parser.parse_args(argv)
    x = Inputs(**{f.name: getattr(args, f.name) for f in fields(Inputs)})
    result = model(x)
    if args.no_pdf:
        pdf = result.pop("extract (FinePDFs recipe, PDF)")
        for key in ("core_hours", "shuffle_gib", "output_gib"):
            result["total"][key] -= pdf[key]
        result["total"]["cores_for_target"] = math.ceil(result["total"]["core_hours"] / x.hours / x.efficiency)
    if args.json:
        print(json.dumps({"inputs": asdict(x), "result": result}, indent=2))
    else:
        print(table(x, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
