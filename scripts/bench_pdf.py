"""Side-by-side benchmark of PDF text extraction: corpus.pdf.extract_pdf, plain PyMuPDF `page.get_text()` and
pymupdf4llm's layout mode (`to_markdown(header=False, footer=False)`, PyMuPDF 2.0's bundled layout model).

Reports, in one run:
- speed: pages per CPU-second (= pages/s per core) and wall-clock, with the one-off `import pymupdf` (which
  loads the layout model) measured apart and excluded. extract_pdf (without OCR) and get_text run over all PDFs;
  pymupdf4llm (about a page per second) runs over a subset: the first --llm-doc-pages pages of each PDF, PDFs in
  name order, until --llm-pages pages, one page per call; the three methods are also timed on that same subset
  for the ratios, and by extract_pdf's route for each page (text, tables). pymupdf4llm runs in a forked child
  with a per-document --llm-timeout (a single map page took minutes in the research), a timed-out page counting
  as without text and the timeout as its time.
- OCR: --cer-pages text pages (the first page routed `text` with at least 500 characters of each PDF, in name
  order) are rendered to pixels at --ocr-dpi and put alone on a page, as a scan; extract_pdf OCRs them (RapidOCR's
  bundled models, one thread) and the character error rate against the page's own text layer (both through
  extract_pdf's reading order) is reported with the OCR route's pages/s/core.
- usable text: share of PDFs and pages whose text has at least 20 non-space characters, under a third of them
  garbled (U+FFFD, private use, control characters); the same rule for every method.
- quality: pass rates of the hand-annotated page checks (tests/pdf_annotations.json, rules in
  tests/pdf_checks.py) for each method, by split: `tune` (in-sample: written and tuned on together) and `test`
  (held out: never tuned on); pymupdf4llm runs on every annotated page (layout mode, no OCR, as in the research);
  extract_pdf OCRs the annotated pages that need it.

Example: python scripts/bench_pdf.py --llm-pages 150 --cer-pages 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shlex
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pdf_checks import SPLITS, cer, describe, load_annotations, run_check  # noqa: E402

DEFAULT_PDF_DIR = Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data")) / "pdf"
MIN_CHARS = 20
_GARBLED = re.compile("[\ufffd\ue000-\uf8ff\x00-\x08\x0e-\x1f]")
_MARKUP = re.compile(r"[|*_#`\-]+|<br>")


def usable(text: str) -> bool:
    """A page's text is usable: enough characters, few of them garbled (the same rule for every method)."""
    text = _MARKUP.sub(" ", text)
    chars = len(text) - sum(text.count(c) for c in " \n\t\r")
    return chars >= MIN_CHARS and len(_GARBLED.findall(text)) < chars / 3


# ------------------------------------------------------------------------------------------------ methods


def run_ours(data: bytes, max_pages: int, ocr: bool = False) -> tuple[list[str], dict[str, Any]]:
    from corpus.pdf import extract_pdf

    result = extract_pdf(data, max_pages=max_pages, ocr_engine="auto" if ocr else None)
    bounds = [0, *result.page_ends]
    pages = [result.text[bounds[i] : bounds[i + 1]] for i in range(len(result.page_ends))]
    info = {"status": result.status, "routes": result.routes, "seconds": result.page_seconds}
    return pages, {**info, "ocr_wanted": result.ocr_wanted, "signals": result.signals}


def run_plain(data: bytes, max_pages: int) -> tuple[list[str], dict[str, Any]]:
    import pymupdf

    try:
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            if doc.needs_pass:
                return [], {"status": "encrypted"}
            pages = []
            for index in range(min(doc.page_count, max_pages)):
                try:
                    pages.append(doc[index].get_text())
                except Exception:
                    pages.append("")
            return pages, {"status": "ok"}
    except Exception as exc:
        return [], {"status": f"error:{type(exc).__name__}"}


def llm_pages(data: bytes, pages: list[int]) -> list[str]:
    """pymupdf4llm layout mode, one text per requested page (empty where it produced nothing)."""
    import pymupdf
    import pymupdf4llm

    with pymupdf.open(stream=data, filetype="pdf") as doc:
        if doc.needs_pass:
            return [""] * len(pages)
        pages = [p for p in pages if p < doc.page_count]
        chunks = pymupdf4llm.to_markdown(
            doc, pages=pages, header=False, footer=False, use_ocr=False, page_chunks=True, show_progress=False
        )
    by_page = {c["metadata"].get("page_number", 0) - 1: c["text"] for c in chunks}
    return [by_page.get(p, "") for p in pages]


def _llm_worker(conn: Any) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        path, pages = job
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            texts, error = llm_pages(Path(path).read_bytes(), pages), None
        except Exception as exc:
            texts, error = [], f"{type(exc).__name__}: {exc}"
        conn.send((texts, time.process_time() - cpu, time.perf_counter() - wall, error))


class LlmRunner:
    """pymupdf4llm in a forked child (pymupdf already imported, so the fork shares it), killed and replaced when a
    document runs past the timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.context = multiprocessing.get_context("fork")
        self.process: Any = None
        self.conn: Any = None

    def _start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=_llm_worker, args=(child,), daemon=True)
        self.process.start()

    def run(self, path: Path, pages: list[int]) -> tuple[list[str], float, float, str | None]:
        if self.process is None or not self.process.is_alive():
            self._start()
        self.conn.send((str(path), pages))
        if self.conn.poll(self.timeout):
            return self.conn.recv()
        self.process.kill()
        self.process.join()
        self.process = None
        return [""] * len(pages), self.timeout, self.timeout, f"timeout after {self.timeout:.0f} s"

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(5)


# ------------------------------------------------------------------------------------------------ measuring


class Tally:
    def __init__(self) -> None:
        self.pages = self.cpu = self.wall = 0.0
        self.docs = self.docs_usable = self.pages_usable = 0
        self.errors: list[str] = []

    def add(self, texts: list[str], cpu: float, wall: float) -> None:
        self.docs += 1
        self.pages += len(texts)
        self.cpu += cpu
        self.wall += wall
        good = sum(map(usable, texts))
        self.pages_usable += good
        self.docs_usable += good > 0

    def rate(self) -> float:
        return self.pages / self.cpu if self.cpu else 0.0

    def line(self, name: str) -> str:
        wall_rate = self.pages / self.wall if self.wall else 0.0
        return (
            f"  {name:<22} {self.docs:>5} {int(self.pages):>6} {self.cpu:>8.2f} {self.wall:>8.2f} "
            f"{self.rate():>10.1f} {wall_rate:>8.1f}"
        )


def timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def share(part: float, whole: float) -> str:
    return f"{part:.0f}/{whole:.0f} ({100 * part / whole:.1f}%)" if whole else "0/0"


def scan_of(data: bytes, page: int, dpi: float) -> bytes:
    """Page `page` of a PDF rendered to pixels and put alone on a page of the same size: a scan of it."""
    import pymupdf

    with pymupdf.open(stream=data, filetype="pdf") as source:
        pix = source[page].get_pixmap(dpi=round(dpi))
        rect = source[page].rect
    with pymupdf.open() as doc:
        doc.new_page(width=rect.width, height=rect.height).insert_image(rect, pixmap=pix)
        return doc.tobytes(deflate=True)


def route_rates(times: dict[str, list[float]]) -> str:
    return ", ".join(f"{route} {len(t)} pages {len(t) / sum(t):.1f}/s" for route, t in sorted(times.items()) if sum(t))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdf-dir", type=Path, default=DEFAULT_PDF_DIR, help="folder searched for *.pdf")
    parser.add_argument("--max-pages", type=int, default=500, help="pages per PDF for extract_pdf and get_text")
    parser.add_argument("--llm-pages", type=int, default=150, help="page budget of the pymupdf4llm speed subset")
    parser.add_argument("--llm-doc-pages", type=int, default=4, help="first pages of each PDF in that subset")
    parser.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per page for pymupdf4llm")
    parser.add_argument("--no-llm", action="store_true", help="skip pymupdf4llm entirely")
    parser.add_argument("--cer-pages", type=int, default=10, help="text pages rendered and OCR'd for the CER")
    parser.add_argument("--ocr-dpi", type=float, default=150.0, help="render resolution of those scans")
    parser.add_argument("--show-failures", action="store_true", help="list every failed annotation check")
    args = parser.parse_args(argv)

    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    files = sorted(args.pdf_dir.rglob("*.pdf"))
    if not files:
        print(f"no PDFs under {args.pdf_dir}")
        return 1
    _, cpu, wall = timed(__import__, "pymupdf")
    print(f"import pymupdf (loads the layout model): {wall:.2f} s wall, {cpu:.2f} s CPU -- excluded from rates")
    if not args.no_llm:
        if "pymupdf4llm" in sys.modules:
            print("import pymupdf4llm: already loaded by `import pymupdf` (its layout package imports it)")
        else:
            _, cpu, wall = timed(__import__, "pymupdf4llm")
            print(f"import pymupdf4llm: {wall:.2f} s wall, {cpu:.2f} s CPU -- excluded from rates")
    from corpus.pdf import extract_pdf, resolve_engine, warm_up

    extract_pdf(b"%PDF-1.4\n")  # the extractor's own one-off set-up
    engine = resolve_engine("auto")
    _, cpu, wall = timed(warm_up, engine)
    print(f"OCR engine: {engine}; loading its models: {wall:.2f} s wall, {cpu:.2f} s CPU -- excluded from rates")
    blobs = {path: path.read_bytes() for path in files}
    print(f"corpus: {len(files)} PDFs under {args.pdf_dir}, {sum(map(len, blobs.values())) / 1e6:.1f} MB")

    # ---- all PDFs: extract_pdf (no OCR: the OCR route is measured below) and get_text
    ours, plain = Tally(), Tally()
    ours_pages: dict[Path, list[str]] = {}
    ours_routes: dict[Path, list[str]] = {}
    ours_wanted: dict[Path, list[int]] = {}
    statuses: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    by_route: dict[str, list[float]] = {}
    wanted = 0
    for path, data in blobs.items():
        (texts, info), cpu, wall = timed(run_ours, data, args.max_pages)
        ours.add(texts, cpu, wall)
        ours_pages[path], ours_routes[path] = texts, info["routes"]
        statuses[info["status"]] += 1
        routes.update(info["routes"])
        wanted += len(info["ocr_wanted"])
        ours_wanted[path] = info["ocr_wanted"]
        for route, seconds in zip(info["routes"], info["seconds"]):
            by_route.setdefault(route, []).append(seconds)
        (texts, _), cpu, wall = timed(run_plain, data, args.max_pages)
        plain.add(texts, cpu, wall)
    header = f"  {'method':<22} {'PDFs':>5} {'pages':>6} {'CPU s':>8} {'wall s':>8} {'pages/s/core':>10} {'pages/s':>8}"
    print("\nspeed, all PDFs, no OCR (pages/s/core = pages per CPU-second of this process)")
    print(header)
    print(ours.line("extract_pdf"))
    print(plain.line("page.get_text()"))
    print(f"  get_text / extract_pdf speed: {plain.rate() / ours.rate():.1f}x" if ours.rate() else "")
    print(f"  extract_pdf by route (pages/s/core from per-page CPU time): {route_rates(by_route)}")
    print(f"  pages the router wants OCR'd (left without OCR here): {wanted}")

    # ---- the pymupdf4llm subset, all three methods, page by page
    llm_runner = None if args.no_llm else LlmRunner(args.llm_timeout)
    subset: list[tuple[Path, int]] = []
    budget = args.llm_pages
    for path in files:
        if budget <= 0:
            break
        texts = ours_pages[path]
        count = min(len(texts) or 1, args.llm_doc_pages, budget)
        subset.append((path, count))
        budget -= count
    if llm_runner is not None:
        s_ours, s_plain, s_llm = Tally(), Tally(), Tally()
        ours_by_route: dict[str, list[float]] = {}
        llm_by_route: dict[str, list[float]] = {}
        timeouts = []
        for path, count in subset:
            (texts, info), cpu, wall = timed(run_ours, blobs[path], count)
            s_ours.add(texts, cpu, wall)
            for route, seconds in zip(info["routes"], info["seconds"]):
                ours_by_route.setdefault(route, []).append(seconds)
            (texts, _), cpu, wall = timed(run_plain, blobs[path], count)
            s_plain.add(texts, cpu, wall)
            for page, route in enumerate(info["routes"] or ["none"]):
                texts, cpu, wall, error = llm_runner.run(path, [page])
                s_llm.add(texts[:1], cpu, wall)
                llm_by_route.setdefault(route, []).append(cpu)
                if error and error.startswith("timeout"):
                    timeouts.append(f"{path.name} p{page}")
        print(
            f"\nspeed, pymupdf4llm subset: first <= {args.llm_doc_pages} pages of {len(subset)} PDFs "
            f"(--llm-pages {args.llm_pages}), same pages for all three"
        )
        print(header)
        print(s_ours.line("extract_pdf"))
        print(s_plain.line("page.get_text()"))
        print(s_llm.line("pymupdf4llm layout"))
        if timeouts:
            print(f"  pymupdf4llm timeouts (> {args.llm_timeout:.0f} s, pages counted empty): {', '.join(timeouts)}")
        if s_llm.rate():
            print(
                f"  extract_pdf / pymupdf4llm speed: {s_ours.rate() / s_llm.rate():.1f}x per core "
                f"(target >= 10x); get_text / pymupdf4llm: {s_plain.rate() / s_llm.rate():.1f}x"
            )
        print(f"  by extract_pdf's route, extract_pdf: {route_rates(ours_by_route)}")
        print(f"  by extract_pdf's route, pymupdf4llm: {route_rates(llm_by_route)}")
        for route in sorted(set(ours_by_route) & set(llm_by_route) - {"no_text", "blank", "garbled", "failed"}):
            ours_rate = len(ours_by_route[route]) / (sum(ours_by_route[route]) or 1e-9)
            llm_rate = len(llm_by_route[route]) / (sum(llm_by_route[route]) or 1e-9)
            print(f"  route {route}: extract_pdf / pymupdf4llm = {ours_rate / llm_rate:.1f}x per core")

    # ---- usable text
    print("\nusable text (>= 20 non-space chars per page, < 1/3 garbled), all PDFs, no OCR:")
    for name, tally in (("extract_pdf", ours), ("page.get_text()", plain)):
        docs, pages = share(tally.docs_usable, tally.docs), share(tally.pages_usable, tally.pages)
        print(f"  {name:<16} PDFs {docs}, pages {pages}")
    print(f"  extract_pdf statuses: {dict(statuses.most_common())}")
    print(f"  extract_pdf page routes: {dict(routes.most_common())}")
    if llm_runner is not None:
        print(
            f"  on the pymupdf4llm subset: extract_pdf pages {share(s_ours.pages_usable, s_ours.pages)}, "
            f"get_text {share(s_plain.pages_usable, s_plain.pages)}, "
            f"pymupdf4llm {share(s_llm.pages_usable, s_llm.pages)}"
        )

    # ---- OCR: character error rate on rendered text pages, and the OCR route's speed
    if engine and args.cer_pages:
        rates, ocr_cpu, pages_done = [], 0.0, 0
        print(f"\nOCR ({engine}) of text pages rendered at {args.ocr_dpi:.0f} dpi, against their text layer:")
        for path in files:
            if pages_done >= args.cer_pages:
                break
            page = next(
                (
                    i
                    for i, (r, t) in enumerate(zip(ours_routes[path], ours_pages[path]))
                    if r == "text" and len(t) >= 500
                ),
                None,
            )
            if page is None:
                continue
            scan = scan_of(blobs[path], page, args.ocr_dpi)
            (texts, info), cpu, _ = timed(run_ours, scan, 1, True)
            if info["routes"] != ["ocr"]:
                continue
            ocr_cpu += cpu
            pages_done += 1
            rates.append(cer(ours_pages[path][page], texts[0]))
            print(f"  {path.relative_to(args.pdf_dir)} p{page}: CER {rates[-1]:.3f}, {cpu:.1f} s CPU")
        if rates:
            print(
                f"  {len(rates)} pages: CER mean {statistics.mean(rates):.3f}, median {statistics.median(rates):.3f}, "
                f"max {max(rates):.3f}; OCR route {pages_done / ocr_cpu:.2f} pages/s/core"
            )

    # ---- annotation checks, by split
    methods = ["extract_pdf", "page.get_text()"] + ([] if llm_runner is None else ["pymupdf4llm layout"])
    import pymupdf

    for split in SPLITS:
        annotations = load_annotations(split=split)
        results: dict[str, Counter[str]] = {m: Counter() for m in methods}
        totals: Counter[str] = Counter()
        failures: dict[str, list[str]] = {m: [] for m in methods}
        ocred = 0
        for entry in annotations:
            path = args.pdf_dir / entry["pdf"]
            if path not in blobs:
                print(f"  (missing annotated PDF {entry['pdf']}, skipped)")
                continue
            page = entry["page"]
            text = (ours_pages[path][page : page + 1] or [""])[0]
            if engine and page in ours_wanted[path]:  # OCR'd as the recipe would (up to that page)
                text = run_ours(blobs[path], page + 1, True)[0][page]
                ocred += 1
            texts = {"extract_pdf": text}
            with pymupdf.open(stream=blobs[path], filetype="pdf") as doc:
                texts["page.get_text()"] = doc[page].get_text()
            if llm_runner is not None:
                llm_texts, _, _, _ = llm_runner.run(path, [page])
                texts["pymupdf4llm layout"] = (llm_texts or [""])[0]
            for check in entry["checks"]:
                kind = "absent" if check["type"] == "absent" else check["type"]
                totals[kind] += 1
                for method in methods:
                    if run_check(texts[method], check):
                        results[method][kind] += 1
                    else:
                        failures[method].append(f"{entry['pdf']} p{page}: {describe(check)}")
        kinds = sorted(totals)
        label = "in-sample (tuned on)" if split == "tune" else "held out (never tuned on)"
        print(
            f"\nannotation checks, split {split!r}, {label}: {len(annotations)} pages, {sum(totals.values())} "
            f"checks (tests/pdf_annotations.json); extract_pdf OCR'd {ocred} of these pages"
        )
        print(f"  {'method':<22} " + " ".join(f"{k + ' /' + str(totals[k]):>12}" for k in kinds) + f" {'total':>14}")
        for method in methods:
            passed = sum(results[method].values())
            cells = " ".join(f"{results[method][k]:>12}" for k in kinds)
            print(f"  {method:<22} {cells} {passed:>5} ({100 * passed / max(1, sum(totals.values())):.0f}%)")
        for method in methods:
            if args.show_failures or method == "extract_pdf":
                print(f"  failed checks, {method} ({len(failures[method])}):")
                for line in failures[method]:
                    print("    " + line)
    if llm_runner is not None:
        llm_runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
