"""PDF to text on CPU: a per-page router over PyMuPDF for reading order, tables, running headers and scans.

FinePDFs ran Docling (a layout model, under 1 page/s/core); pymupdf4llm's layout mode (`to_markdown(header=False,
footer=False)`) gets reading order, headers and tables about as right at 1-1.6 pages/s/core; plain
`page.get_text()` runs at 200+ pages/s but in content-stream order, with running headers and without tables
(../shared/research/pdf-finepdfs-pymupdf.md). Most pages of web PDFs are plain single- or multi-column text, so
`extract_pdf` reads every page once with MuPDF's structured text (`extractDICT`, which also reports the page's
vector paths) and routes each page from that pass's features to the cheapest path that handles it:

- `text`: the page's text blocks ordered by a recursive XY-cut: columns where a vertical gap crosses the whole
  region, horizontal bands otherwise; bands that share a column gutter are merged first, so two columns whose
  paragraph gaps happen to line up are not read across, unless they are set in different font sizes (a
  two-column figure caption above two-column body text is read band by band). Lines are joined into paragraphs
  (hyphenated line breaks undone, not after acronyms or numbers: "AF-toxin"), and a block that continues a
  sentence is joined to the paragraph it continues, across a column break and over a footnote, caption or
  table in between. Text written in another direction than the page's main one (margin stamps like arXiv's or
  "Downloaded from ...", watermarks) is dropped.
- `tables`: the same, plus tables, each a Markdown table (cells kept) in reading order. Grids are rebuilt from
  the page's line art (`get_cdrawings`, read only on pages whose vector paths look like rules, skipped on
  drawings of more than MAX_PATH_ITEMS items); tables ruled only across (booktabs: three rules of one extent,
  no vertical rule) get their columns from the gutters of the rows below the header rule; rule-less tables are
  found as runs of rows of at least three aligned, short cells, never taking lines of running text (a column of
  prose beside a figure, a newspaper's columns). PyMuPDF's own `find_tables` costs 0.2-2 s per page (its
  character pass is Python), about the layout model's price, so it is not used.
- `layout`: pymupdf4llm's layout mode, opt-in (`layout=True`) for the pages `_needs_layout` picks (pages with
  tables), at most MAX_LAYOUT_PAGES per document. It costs about a second per page, and a single vector-heavy
  page took minutes in the research; a timeout is the sandbox's job. On the annotated pages of
  tests/pdf_annotations.json the fast path scores as well as layout mode (scripts/bench_pdf.py), so it is off
  by default.
- `ocr`: pages whose text layer does not serve, OCR'd on CPU (corpus.pdf.ocr: RapidOCR's bundled PP-OCR models,
  or Tesseract inside MuPDF), the engine's lines then ordered and joined like a text page's. `_ocr_reason` says
  why, from the same pass's features (FinePDFs' router features, as rules): no text layer and images over the
  page (`no_text_layer`); no text and many vector paths, text drawn as outlines (`vector_only`); a mostly
  garbled text layer (`garbled`); an invisible text layer (render mode 3: a scanner's OCR) that does not read as
  words (`bad_ocr_layer`); a page-sized picture with a few lines of text on it, a stamp or a page number
  (`image_coverage`; with a higher bar on text in PDFs whose producer is a scanner: `scanner_producer`). Only
  such pages are OCR'd. Without an engine (or with `ocr_engine=None`, when the caller OCRs them itself, as the
  PDF recipe does, one sandboxed page at a time) they keep what text they have, scans are `no_text`, and a
  document that is mostly scans (or garbled text layers) gets status `needs_ocr`. FinePDFs decides with a
  gradient-boosted model on 124 such features; we have no labelled pages to train one on that are not also our
  held-out checks (its labels and weights are on the Hugging Face Hub), and the rules are per page, explainable
  and free, so they stay rules.

After all pages are read, running headers and footers are removed (corpus.pdf.margins): by repetition across at
least five pages, on any single page by position, gap, shape and typography, and bare page numbers.

Text is normalized conservatively: ligatures come out expanded (MuPDF's flag, plus NFKC for the presentation-form blocks
U+FB00-FDFF and U+FE70-FEFE: Latin/Armenian ligatures, Hebrew and Arabic presentation forms, which fonts emit
instead of letters); TeX's spacing accents are composed ("na¨ıve" -> "naïve"); odd spaces become spaces; soft
hyphens, zero-width and control characters go; and NFC. NFKC is not applied to everything: it would also
rewrite superscripts, fractions, full-width CJK punctuation and the like, which are real content.

Garbled text, the signal FinePDFs routes to OCR, is counted: U+FFFD (MuPDF's output for glyphs without a
Unicode mapping, e.g. CID fonts without ToUnicode), private-use characters and C0 controls, as `garbled_ratio`
of all non-space characters; those characters are removed from the text.

Nothing raises (a last guard turns any error outside a page into `error:pdf_broken`): not a PDF (MuPDF also opens
HTML, so the `%PDF-` magic and `doc.is_pdf` are checked), broken, encrypted, empty and scanned documents each come
back as a `PdfExtraction` with a status. Documents with more than `max_pages` pages are extracted up to `max_pages`
and flagged (`signals["pages_truncated"]`), not refused: the first pages are usually the valuable ones and the text
is still correct.

`extract_pdf` is a top-level function of bytes returning a picklable dataclass, so corpus.sandbox can run it in
a child process with time and memory limits. `import pymupdf` loads PyMuPDF's layout model (about 2 s and
140 MB, once per process), so the import is deferred to the first call.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from corpus.pdf.clean import _clean
from corpus.pdf.detect import MAGIC_WINDOW, PDF_MAGIC
from corpus.pdf.layout import (
    BLANK,
    FAILED,
    GARBLED,
    LAYOUT,
    NO_TEXT,
    OCR,
    ROUTES,
    TABLES,
    TEXT,
    _Page,
    _page_text,
    _read_blocks,
    _xy_order,
)
from corpus.pdf.margins import _remove_margins
from corpus.pdf.ocr import AUTO, OcrPage, ocr_loaded_page, page_dict, resolve_engine
from corpus.pdf.tables import _aligned_tables, _ruled_tables

OK = "ok"
EMPTY = "empty"
NEEDS_OCR = "needs_ocr"
NOT_PDF = "error:not_pdf"
ENCRYPTED = "error:pdf_encrypted"
BROKEN = "error:pdf_broken"

MAX_LAYOUT_PAGES = 20  # pages per document sent to pymupdf4llm's layout mode when `layout=True`
MIN_PAGE_CHARS = 20  # fewer non-space characters than this: the page has no text layer
SCAN_IMAGE_COVERAGE = 0.3  # ... and if images cover this share of it, it is a scan
VECTOR_TEXT_PATHS = 100  # ... or if it draws at least this many vector paths, text drawn as outlines, maybe
NEEDS_OCR_SHARE = 0.5  # a document with at least this share of scanned pages needs OCR
GARBLED_PAGE_RATIO = 0.3  # a page with this share of garbled characters has no usable text
HIDDEN_SHARE = 0.5  # a page whose text is mostly invisible carries an OCR layer under a picture ...
READABLE_SHARE = 0.7  # ... which is redone when less than this share of its characters are in word-like tokens
THIN_TEXT_CHARS = 200  # a page with fewer characters than this (SCANNER_THIN_CHARS in a scanner's PDF) ...
SCANNER_THIN_CHARS = 1000
THIN_TEXT_AREA = 0.05  # ... whose lines cover less than this share of it ...
IMAGE_PAGE_COVERAGE = 0.6  # ... and whose images cover this share is a picture with a stamp on it: OCR it
MAX_OCR_PAGES = 50  # pages OCR'd per document (the first ones that need it); the rest stay as they are

# Routing reasons (PdfExtraction.reasons, signals `ocr_wanted.<reason>`): why a page needs OCR.
NO_TEXT_LAYER = "no_text_layer"  # no text, images cover the page: a scan
VECTOR_ONLY = "vector_only"  # no text, many vector paths: text drawn as outlines, or a drawing
GARBLED_LAYER = "garbled"  # the text layer is mostly unmapped glyphs
BAD_OCR_LAYER = "bad_ocr_layer"  # an invisible text layer (a scanner's OCR) that does not read as words
IMAGE_PAGE = "image_coverage"  # a page-sized picture with only a little text on it (a stamp, a page number)
SCANNER = "scanner_producer"  # the same in a PDF a scanner or scanning software made, with a higher bar

# Creator/producer substrings of scanners and scanning software (FinePDFs' list, lower case, plus a few).
SCANNER_PRODUCERS = (
    "scan", "epson", "canon", "kofax", "ricoh", "readiris", "paperport", "xerox", "fujitsu", "konica", "kyocera",
    "lexmark", "brother", "omnipage", "finereader", "abbyy", "capture", "sharp mx", "hp digital sending",
)  # fmt: skip
_WORDLIKE = re.compile(r"[(\[\"'“‘]?(?:[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+(?:[.,:/-]\d+)*%?)[)\]\"'”’.,;:!?]*")

_FLAGS = 0  # set by _pymupdf(): MuPDF's dict flags without ligatures and images, with vector paths


@cache
def _pymupdf() -> Any:
    """Import PyMuPDF once, quietly (MuPDF prints every repaired xref otherwise), and set the text flags."""
    global _FLAGS
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    _FLAGS = (
        pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP | pymupdf.TEXT_COLLECT_VECTORS
    ) & ~pymupdf.TEXT_PRESERVE_LIGATURES
    return pymupdf


@dataclass
class PdfExtraction:
    """What `extract_pdf` made of one PDF.

    status: `ok`, `needs_ocr` (mostly scans and no OCR engine), `empty` (no pages, or no text at all),
        `error:not_pdf`, `error:pdf_encrypted` (needs a password), `error:pdf_broken` (MuPDF cannot open it or
        read any page).
    text: the pages' text, joined by blank lines; paragraphs are separated by blank lines, tables are Markdown.
    page_ends: for each extracted page, the offset in `text` where it ends (FinePDFs' `page_ends`): page i is
        `text[page_ends[i-1]:page_ends[i]]`, the separator belonging to the page before it.
    page_count: pages in the document (more than `len(page_ends)` when it was cut at `max_pages`).
    routes: for each extracted page, the path that produced its text (`text`, `tables`, `layout`, `ocr`) or why
        there is none (`no_text`, `blank`, `garbled`, `failed`).
    reasons: for each extracted page, why the router wanted it OCR'd (`no_text_layer`, `vector_only`, `garbled`,
        `bad_ocr_layer`, `image_coverage`, `scanner_producer`), None for pages read from their text layer.
    ocr_wanted: pages (0-based) that needed OCR and did not get it (no engine, or OCR deferred to the caller:
        `extract_pdf(..., ocr_engine=None)`; the PDF recipe OCRs them one by one in a sandbox, then passes the
        results back in `ocr_results`).
    removed_lines: for each extracted page, the running headers, footers and page numbers taken out of it.
    page_seconds: for each extracted page, the CPU seconds spent reading it (OCR included), for audits and
        benchmarks by route.
    signals: numbers for filters and audits (`garbled_ratio`, `pages_<route>`, `ocr_wanted.<reason>`,
        `header_footer_lines_removed`, `tables`, ...).
    error: the exception message behind an `error:` status or a failed page, if any.
    """

    status: str
    text: str = ""
    page_ends: list[int] = field(default_factory=list)
    page_count: int = 0
    routes: list[str] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    ocr_wanted: list[int] = field(default_factory=list)
    removed_lines: list[list[str]] = field(default_factory=list)
    page_seconds: list[float] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    error: str | None = None


# ------------------------------------------------------------------------------------------------ the router


def _image_coverage(page: Any) -> float:
    """Share of the page covered by images (overlaps counted twice, capped at 1); only asked for pages with
    (almost) no text, since it costs another pass over the page."""
    area = abs(page.rect)
    if not area:
        return 0.0
    covered = sum(abs(page.rect & info["bbox"]) for info in page.get_image_info())
    return min(1.0, covered / area)


def _unrotated_size(page: Any) -> tuple[float, float]:
    """Width and height of the page in the coordinates of its text, which PyMuPDF gives unrotated."""
    rect = page.rect
    return (rect.height, rect.width) if page.rotation in (90, 270) else (rect.width, rect.height)


def _scanner_made(doc: Any) -> bool:
    """The PDF's creator or producer names a scanner or scanning software (FinePDFs' router feature)."""
    meta = doc.metadata or {}
    names = f"{meta.get('creator') or ''} {meta.get('producer') or ''}".lower()
    return any(word in names for word in SCANNER_PRODUCERS)


def _readable(page: _Page) -> bool:
    """Most of the page's characters are in word-like tokens (letters, or numbers), as in a usable OCR layer;
    a poor one is full of fragments like "t'he", "Mahome-\"dans," or "~~"."""
    tokens = [token for block in page.blocks for line in block.lines for token in line.text.split()]
    total = sum(map(len, tokens))
    good = sum(len(token) for token in tokens if _WORDLIKE.fullmatch(token))
    return total == 0 or good >= READABLE_SHARE * total


def _ocr_reason(page: Any, result: _Page, scanner: bool) -> str | None:
    """Why this page needs OCR, from its text layer's features, or None (the text layer serves).
    Image coverage costs another pass over the page, so it is asked only where the text is thin."""
    usable = result.chars - result.garbled
    if result.chars >= MIN_PAGE_CHARS and result.garbled > GARBLED_PAGE_RATIO * result.chars:
        return GARBLED_LAYER
    if usable < MIN_PAGE_CHARS:
        if _image_coverage(page) >= SCAN_IMAGE_COVERAGE:
            return NO_TEXT_LAYER
        return VECTOR_ONLY if len(result.vectors) >= VECTOR_TEXT_PATHS else None
    if result.invisible >= HIDDEN_SHARE * result.chars:
        return None if _readable(result) else BAD_OCR_LAYER
    thin = SCANNER_THIN_CHARS if scanner else THIN_TEXT_CHARS
    if (
        usable < thin
        and result.text_area < THIN_TEXT_AREA * result.width * result.height
        and page.get_images()
        and _image_coverage(page) >= IMAGE_PAGE_COVERAGE
    ):
        return SCANNER if scanner and usable >= THIN_TEXT_CHARS else IMAGE_PAGE
    return None


def _read_page(doc: Any, index: int, scanner: bool, ocr: OcrPage | None) -> _Page:
    """One page through the router: read its structured text once; if it needs OCR and `ocr` holds the engine's
    lines for it, read those instead; else take the cheapest path that fits its text layer."""
    page = doc[index]
    width, height = _unrotated_size(page)
    page_dict_ = page.get_textpage(flags=_FLAGS).extractDICT()
    result = _read_blocks(page_dict_, width, height)
    reason = _ocr_reason(page, result, scanner)
    if reason is not None and ocr is not None:
        ocr_result = _read_blocks(page_dict(ocr), ocr.width, ocr.height)
        ocr_result.route, ocr_result.reason = OCR, reason
        ocr_result.blocks = _xy_order(ocr_result.blocks)
        return ocr_result
    result.reason = reason
    usable = result.chars - result.garbled
    if reason == GARBLED_LAYER:
        route = GARBLED
    elif usable >= MIN_PAGE_CHARS:
        route = TEXT  # a thin or poor text layer is still better than nothing when it is not OCR'd
    else:  # little or no text: a scan if images cover the page, else keep what little text there is
        route = NO_TEXT if reason is not None else (TEXT if usable else BLANK)
    if route == TEXT:
        _ruled_tables(result, page)
        _aligned_tables(result)
        result.blocks = _xy_order(result.blocks)
        return result
    return _Page(route, width, height, chars=result.chars, garbled=result.garbled, reason=reason)


def _open(data: bytes) -> tuple[Any, PdfExtraction | None]:
    """The MuPDF document, or the outcome that ends extraction before any page is read."""
    if PDF_MAGIC not in data[:MAGIC_WINDOW]:
        return None, PdfExtraction(EMPTY if not data.strip() else NOT_PDF)
    pymupdf = _pymupdf()
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
        if not doc.is_pdf:
            return None, PdfExtraction(NOT_PDF)
        if doc.needs_pass and not doc.authenticate(""):
            return None, PdfExtraction(ENCRYPTED)
        if doc.page_count == 0:
            return None, PdfExtraction(BROKEN if doc.is_repaired else EMPTY)
    except Exception as exc:  # MuPDF raises a zoo of types (FileDataError, RuntimeError, FzErrorFormat, ...)
        return None, PdfExtraction(BROKEN, error=f"{type(exc).__name__}: {exc}")
    return doc, None


def extract_pdf(
    data: bytes,
    max_pages: int = 500,
    ocr_language: str | None = "eng",
    layout: bool = False,
    ocr_engine: str | None = AUTO,
    ocr_dpi: float = 150,
    ocr_max_pixels: int = 6_000_000,
    max_ocr_pages: int = MAX_OCR_PAGES,
    ocr_results: dict[int, OcrPage | str] | None = None,
) -> PdfExtraction:
    """Text of a PDF with layout handling (see the module docstring). Never raises for a bad document.

    max_pages: extract at most this many pages (the first ones); more are flagged in `pages_truncated`.
    ocr_language: Tesseract language(s), for the `tesseract` engine.
    layout: let the router send the pages the fast path is least sure of (`_needs_layout`: pages with tables) to
        pymupdf4llm's layout mode, about a second per page; at most MAX_LAYOUT_PAGES per document.
    ocr_engine: OCR pages that need it here, in this process, with this engine (`auto`, `rapidocr`, `tesseract`,
        see corpus.pdf.ocr); None leaves them in `ocr_wanted` for the caller.
    ocr_dpi, ocr_max_pixels: the render resolution for OCR, and the most pixels a page's image may have.
    max_ocr_pages: OCR at most this many pages of the document (the first that need it).
    ocr_results: OCR done elsewhere, by page index: an `OcrPage`, or why it failed (`timeout`, ...).
    """
    started = time.perf_counter()
    engine = resolve_engine(ocr_engine)
    ocr_results = dict(ocr_results or {})
    try:
        doc, outcome = _open(data)
        if outcome is not None:
            return outcome
        with doc:
            page_count = doc.page_count
            scanner = _scanner_made(doc)
            pages, failed_ocr, page_seconds = [], [], []
            for index in range(min(page_count, max_pages)):
                cpu = time.process_time()
                try:
                    done = ocr_results.get(index)
                    page = _read_page(doc, index, scanner, done if isinstance(done, OcrPage) else None)
                    if page.reason and page.route != OCR and engine and len(ocr_results) < max_ocr_pages:
                        try:  # OCR in this process: the caller's limits apply (the recipe OCRs in a sandbox)
                            ocr_results[index] = ocr_loaded_page(
                                doc[index], engine, ocr_dpi, ocr_max_pixels, ocr_language or "eng"
                            )
                        except Exception as exc:
                            ocr_results[index] = f"error:{type(exc).__name__}"
                        done = ocr_results[index]
                        if isinstance(done, OcrPage):
                            page = _read_page(doc, index, scanner, done)
                    if isinstance(done, str) and page.reason:
                        failed_ocr.append(done)
                    pages.append(page)
                except Exception as exc:
                    pages.append(_Page(FAILED, error=f"{type(exc).__name__}: {exc}"))
                page_seconds.append(time.process_time() - cpu)
            if layout:
                _layout_pages(doc, pages)
            repaired = doc.is_repaired
        result = _assemble(pages, page_count, repaired, started)
        result.page_seconds = [round(t, 5) for t in page_seconds]
        result.signals["scanner_producer"] = int(scanner)
        result.signals["ocr_failed"] = len(failed_ocr)
        for why in failed_ocr:
            key = f"ocr_failed.{why.removeprefix('error:')}"
            result.signals[key] = result.signals.get(key, 0) + 1
        ocr_seconds = sum(r.seconds for r in ocr_results.values() if isinstance(r, OcrPage))
        result.signals["ocr_seconds"] = round(ocr_seconds, 4)
        return result
    except Exception as exc:  # a last guard: a bug or a MuPDF error outside a page must not kill the task
        return PdfExtraction(BROKEN, error=f"{type(exc).__name__}: {exc}")


def _needs_layout(page: _Page) -> bool:
    """Pages the fast path is least sure of: those where it found tables (rebuilt from rules and alignment)."""
    return page.route == TABLES


def _layout_pages(doc: Any, pages: list[_Page]) -> None:
    """Re-read the pages `_needs_layout` picks, up to MAX_LAYOUT_PAGES, with pymupdf4llm's layout mode (a layout
    model classifies the page's boxes, headers and footers dropped, tables as Markdown). A page it fails on keeps
    the fast path's text."""
    chosen = [i for i, page in enumerate(pages) if _needs_layout(page)][:MAX_LAYOUT_PAGES]
    if not chosen:
        return
    import pymupdf4llm

    for index in chosen:
        try:
            chunks = pymupdf4llm.to_markdown(
                doc, pages=[index], header=False, footer=False, use_ocr=False, page_chunks=True, show_progress=False
            )
        except Exception as exc:
            pages[index].error = f"layout: {type(exc).__name__}: {exc}"
            continue
        text = "\n".join(_clean(line) for line in "".join(c.get("text", "") for c in chunks).splitlines())
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        if text:
            pages[index].text, pages[index].route = unicodedata.normalize("NFC", text), LAYOUT


def _assemble(pages: list[_Page], page_count: int, repaired: bool, started: float) -> PdfExtraction:
    """Join the pages' text, after removing running headers and footers, and decide the document's status."""
    counts: Counter[str] = Counter()
    headers, numbers, cues = _remove_margins(pages)
    texts = [_page_text(page, counts) for page in pages]
    page_ends, offset = [], 0
    for i, text in enumerate(texts):
        if text and any(texts[i + 1 :]):
            texts[i] = text + "\n\n"
        offset += len(texts[i])
        page_ends.append(offset)
    routes = [page.route for page in pages]
    reasons = [page.reason for page in pages]
    chars = sum(page.chars for page in pages)
    garbled = sum(page.garbled for page in pages)
    scans = routes.count(NO_TEXT) + routes.count(GARBLED)
    signals = {
        "chars": chars,
        "garbled_chars": garbled,
        "garbled_ratio": round(garbled / chars, 6) if chars else 0.0,
        "pages_without_text": sum(r in (NO_TEXT, BLANK, GARBLED, FAILED) for r in routes),
        "pages_scanned": scans,
        **{f"pages_{route}": routes.count(route) for route in ROUTES},
        **{f"ocr_wanted.{why}": reasons.count(why) for why in sorted({r for r in reasons if r})},
        "ocr_pending": sum(1 for page in pages if page.reason and page.route != OCR),
        "tables": sum(page.tables for page in pages),
        "header_footer_lines_removed": headers,
        **{f"margin_lines.{cue}": count for cue, count in sorted(cues.items())},
        "pages_with_margins_removed": sum(1 for page in pages if page.removed),
        "page_numbers_removed": numbers,
        "rotated_lines_dropped": sum(len(page.rotated) for page in pages),
        "dehyphenated": counts["dehyphenated"],
        "pages_truncated": int(page_count > len(pages)),
        "repaired": int(repaired),
        "seconds": round(time.perf_counter() - started, 4),
    }
    text = "".join(texts)
    if routes and routes.count(FAILED) == len(routes):
        status = BROKEN
    elif scans and scans >= NEEDS_OCR_SHARE * len(routes):
        status = NEEDS_OCR
    elif not text.strip():
        status = EMPTY
    else:
        status = OK
    error = next((page.error for page in pages if page.error), None)
    wanted = [i for i, page in enumerate(pages) if page.reason and page.route != OCR]
    removed = [page.removed for page in pages]
    return PdfExtraction(
        status,
        text,
        page_ends,
        page_count,
        routes,
        reasons=reasons,
        ocr_wanted=wanted,
        removed_lines=removed,
        signals=signals,
        error=error,
    )
