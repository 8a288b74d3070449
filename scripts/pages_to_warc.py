"""Write HTML pages of ../shared/data/html (the extraction benchmarks: nothing in the recipe was tuned on them) as
WARC files of response records, so that `bench_extract.py --data` can measure on pages other than ccdev.

    .venv/bin/python scripts/pages_to_warc.py --out /tmp/oos [--files 10]
    .venv/bin/python scripts/bench_extract.py --data /tmp/oos --copies 2
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ROOT = Path(__file__).resolve().parent.parent
SKIP_PARTS, SKIP_ENDINGS = ("GoldStandard", "expected"), (".json", ".rst", ".txt", ".md")  # ground truth, docs


def pages(root: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every page under `root`: .html(.gz) files and the files of html/ and input/ folders."""
    found = []
    for path in sorted((p for p in root.rglob("*") if p.is_file()), key=str):
        name = str(path.relative_to(root))
        if any(part in name for part in SKIP_PARTS) or name.endswith(SKIP_ENDINGS):
            continue
        if not (name.endswith((".html", ".html.gz")) or "/html/" in name or "/input/" in name):
            continue
        data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
        if len(data) >= 200:
            found.append((name, data))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", default=str(ROOT.parent / "shared" / "data" / "html"))
    parser.add_argument("--out", required=True, help="folder for the WARC files")
    parser.add_argument("--files", type=int, default=10, help="pages are dealt round-robin into this many files")
    args = parser.parse_args()
    found = pages(Path(args.html))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(args.files):
        with (out / f"oos-{k:05d}.warc.gz").open("wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            for name, data in found[k :: args.files]:
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
                url = "https://oos.example/" + name.replace("/", "_")
                # as Common Crawl's WARCs: without the identified type, datatrove's reader asks libmagic, which
                # calls some of these pages text/plain or text/xml and drops them unread (a quarter of them)
                warc_headers = {"WARC-Identified-Payload-Type": "text/html"}
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(data), http_headers=headers, warc_headers_dict=warc_headers
                )
                writer.write_record(record)
    print(f"{len(found)} pages in {args.files} files under {out}")


if __name__ == "__main__":
    main()
