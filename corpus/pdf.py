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
- `ocr`: pages without a text layer, through Tesseract inside MuPDF (`get_textpage_ocr`) when its language
  data is installed; otherwise such pages are `no_text`, and a document that is mostly scans (or garbled text
  layers) gets status `needs_ocr`, for an OCR queue. A page with a few characters and no picture keeps them.

After all pages are read, running headers and footers are removed: lines in the top or bottom 12% of the page,
or among the first or last two rows of text of a page (books set on letter paper put the header lower), that
repeat on enough pages (digits masked in the 12% zones, so "Page 3 of 9" matches "Page 4 of 9"); then bare page
numbers ("12", "- 12 -", "Page 3 of 9", "7-45", "xii") alone on the first or last row. Text is normalized
conservatively: ligatures come out expanded (MuPDF's flag, plus NFKC for the presentation-form blocks
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

import bisect
import glob
import itertools
import math
import os
import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

OK = "ok"
EMPTY = "empty"
NEEDS_OCR = "needs_ocr"
NOT_PDF = "error:not_pdf"
ENCRYPTED = "error:pdf_encrypted"
BROKEN = "error:pdf_broken"

# Per-page routes (PdfExtraction.routes).
TEXT = "text"
TABLES = "tables"
LAYOUT = "layout"
OCR = "ocr"
NO_TEXT = "no_text"  # no text layer, with images: a scan that was not OCR'd
BLANK = "blank"  # no text layer and (almost) no images
GARBLED = "garbled"  # a text layer that is mostly unmapped glyphs
FAILED = "failed"  # MuPDF raised on this page

PDF_MIME_TYPES = frozenset(
    {"application/pdf", "application/x-pdf", "application/acrobat", "applications/vnd.pdf", "text/pdf"}
)
PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024  # Acrobat accepts the header anywhere in the first 1024 bytes
EOF_WINDOW = 2048  # "%%EOF" is the last line; writers may append a little whitespace or junk after it

MAX_LAYOUT_PAGES = 20  # pages per document sent to pymupdf4llm's layout mode when `layout=True`
MIN_PAGE_CHARS = 20  # fewer non-space characters than this: the page has no text layer
SCAN_IMAGE_COVERAGE = 0.3  # ... and if images cover this share of it, it is a scan
NEEDS_OCR_SHARE = 0.5  # a document with at least this share of scanned pages needs OCR
GARBLED_PAGE_RATIO = 0.3  # a page with this share of garbled characters has no usable text
MARGIN_ZONE = 0.12  # running headers and footers live in the top and bottom 12% of the page
REPEATED_SHARE = 0.05  # ... and repeat on at least this share of the pages (and at least twice)
EDGE_ROWS = 2  # ... or are among the first or last two rows of text of a page
MAX_HEADER_CHARS = 120  # longer lines are never taken for running headers or footers

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


@cache
def tessdata_dir() -> str | None:
    """Tesseract's language-data folder when MuPDF's built-in OCR can use it, else None; looked up once per
    process, without starting a subprocess ($TESSDATA_PREFIX, then Debian's tesseract-ocr locations)."""
    candidates = [os.environ.get("TESSDATA_PREFIX", "")]
    candidates += sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)
    candidates += ["/usr/share/tessdata", "/usr/local/share/tessdata"]
    for folder in candidates:
        if folder and glob.glob(os.path.join(folder, "*.traineddata")):
            return folder
    return None


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
    signals: numbers for filters and audits (`garbled_ratio`, `pages_without_text`, `tables`, ...).
    error: the exception message behind an `error:` status or a failed page, if any.
    """

    status: str
    text: str = ""
    page_ends: list[int] = field(default_factory=list)
    page_count: int = 0
    routes: list[str] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    error: str | None = None


# ------------------------------------------------------------------------------------------------ WARC side


def is_pdf_record(payload_type: str | None, url: str | None, head_bytes: bytes = b"") -> bool:
    """A WARC record holds a PDF: by MIME type (FinePDFs' list; parameters and case ignored), by a URL path
    ending in .pdf, or by the `%PDF-` magic near the start of the payload."""
    if payload_type and payload_type.split(";", 1)[0].strip().lower() in PDF_MIME_TYPES:
        return True
    if url:
        try:
            if urlsplit(url).path.lower().endswith(".pdf"):
                return True
        except ValueError:
            pass
    return PDF_MAGIC in head_bytes[:MAGIC_WINDOW]


def truncation_reason(
    data: bytes, warc_truncated_header: str | None = None, declared_content_length: int | None = None
) -> str | None:
    """Why a PDF payload is incomplete, or None: `warc_truncated` (the crawler says so: WARC-Truncated),
    `short_payload` (fewer bytes than the HTTP Content-Length declared), `no_eof` (no %%EOF marker at the end,
    where every complete PDF has one). A truncated PDF should be refetched, not extracted: MuPDF's repair
    recovers a prefix of some files and nothing of others."""
    if warc_truncated_header:
        return "warc_truncated"
    if declared_content_length is not None and len(data) < declared_content_length:
        return "short_payload"
    if b"%%EOF" not in data[-EOF_WINDOW:]:
        return "no_eof"
    return None


# ------------------------------------------------------------------------------------------------ text hygiene

# Characters removed from the text; the garbled ones among them are counted first.
_GARBLED = re.compile("[\ufffd\ue000-\uf8ff\U000f0000-\U0010ffff\x00-\x08\x0e-\x1f]")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ufffd\ufffe\uffff\ue000-\uf8ff]")
_SPACES = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_LEADERS = re.compile(r"(?:\s*[.·…_]){4,}\s*")  # dot leaders of tables of contents and tables
_HYPHENS = "-\u00ad\u2010"
_TERMINAL = frozenset(".!?:;\"'”’)]»。！？")


@cache
def _translation() -> dict[int, str]:
    """NFKC for presentation forms only: ligatures (U+FB00-FB4F) and Arabic forms (U+FB50-FDFF, U+FE70-FEFE)."""
    table = {}
    for start, end in ((0xFB00, 0xFDFF), (0xFE70, 0xFEFE)):
        for cp in range(start, end + 1):
            folded = unicodedata.normalize("NFKC", chr(cp))
            if folded != chr(cp):
                table[cp] = folded
    return table


# A spacing accent before a letter, as TeX's accent macros come out of many PDFs ("na¨ıve", "R´enyi", "Erd˝os"):
# composed into the accented letter. The acute only before a vowel, since "´" also stands in for an apostrophe.
_ACCENTS = {"¨": "\u0308", "ˆ": "\u0302", "˜": "\u0303", "ˇ": "\u030c", "˘": "\u0306", "˚": "\u030a", "˝": "\u030b"}
_ACCENTED = re.compile("([¨ˆ˜ˇ˘˚˝])([A-Za-zı])|´([AEIOUYaeiouyı])")


def _accent(match: re.Match[str]) -> str:
    if match.group(3):
        return match.group(3).replace("ı", "i") + "\u0301"
    return match.group(2).replace("ı", "i") + _ACCENTS[match.group(1)]


def _clean(text: str) -> str:
    text = text.rstrip()
    text = _ACCENTED.sub(_accent, text)
    if text.endswith("\u00ad"):  # a soft hyphen at the end of a line is where the word was broken
        text = text[:-1] + "-"
    text = _INVISIBLE.sub("", text.translate(_translation()))
    return _SPACES.sub(" ", _LEADERS.sub(" ", text)).strip()


# ------------------------------------------------------------------------------------------------ page model


@dataclass(slots=True)
class _Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str  # cleaned
    size: float  # font size
    spans: list[tuple[float, float, str]]  # (x0, x1, cleaned text), for table cells


@dataclass(slots=True)
class _Block:
    x0: float
    y0: float
    x1: float
    y1: float
    lines: list[_Line]
    table: str | None = None  # a Markdown table instead of lines


@dataclass
class _Page:
    route: str
    width: float = 0.0
    height: float = 0.0
    frame: tuple[int, int, int, int] = (1, 0, 0, 1)  # see _frame
    origin: tuple[float, float] = (0.0, 0.0)  # subtracted after turning, so coordinates start at 0
    blocks: list[_Block] = field(default_factory=list)  # in reading order once ordered
    rotated: list[_Line] = field(default_factory=list)  # lines in another writing direction
    vectors: list[tuple[float, ...]] = field(default_factory=list)  # bounding boxes of vector paths
    text: str | None = None  # text made by another engine (layout, with its own header/footer removal)
    chars: int = 0
    garbled: int = 0
    tables: int = 0
    error: str | None = None

    def turn(self, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """A bounding box from PyMuPDF's coordinates into this page's reading frame."""
        if self.frame == (1, 0, 0, 1) and self.origin == (0.0, 0.0):  # upright pages: nothing to do
            return bbox
        x0, y0, x1, y1 = _turn(bbox, self.frame)
        return x0 - self.origin[0], y0 - self.origin[1], x1 - self.origin[0], y1 - self.origin[1]


def _bounds(items: list[Any]) -> tuple[float, float, float, float]:
    return min(i.x0 for i in items), min(i.y0 for i in items), max(i.x1 for i in items), max(i.y1 for i in items)


def _frame(direction: tuple[float, float]) -> tuple[int, int, int, int]:
    """The axis-aligned rotation that makes text running in `direction` run left to right: (a, b, c, d) maps a
    point (x, y) to (a*x + b*y, c*x + d*y)."""
    dx, dy = round(direction[0]), round(direction[1])
    return dx, dy, -dy, dx


def _turn(
    bbox: tuple[float, float, float, float], frame: tuple[int, int, int, int]
) -> tuple[float, float, float, float]:
    a, b, c, d = frame
    x0, y0, x1, y1 = bbox
    xs = (a * x0 + b * y0, a * x1 + b * y1)
    ys = (c * x0 + d * y0, c * x1 + d * y1)
    return min(xs), min(ys), max(xs), max(ys)


def _axis(direction: tuple[float, float]) -> tuple[int, int] | None:
    """The axis direction a line's writing direction is closest to, or None for slanted text."""
    dx, dy = direction
    if abs(dx) > 0.98 or abs(dy) > 0.98:
        return round(dx), round(dy)
    return None


def _read_blocks(page_dict: dict, width: float, height: float) -> _Page:
    """Text lines in the page's main writing direction, grouped as MuPDF grouped them, plus what the router
    needs. Coordinates are turned so that the main direction runs left to right, top to bottom."""
    raw = []  # (axis, block index, bbox, text, size, spans)
    vectors = []
    for index, block in enumerate(page_dict["blocks"]):
        if block["type"] == 3:
            vectors.append(block["bbox"])
        for line in block.get("lines", ()):
            spans = [s for s in line["spans"] if s["text"].strip()]
            if spans:
                text = "".join(s["text"] for s in line["spans"])
                size = max(s["size"] for s in spans)
                raw.append((_axis(line["dir"]), index, line["bbox"], text, size, spans))
    weights: Counter[tuple[int, int] | None] = Counter()
    for axis, _, _, text, _, _ in raw:
        weights[axis] += len(text)
    main = max((a for a in weights if a is not None), key=weights.__getitem__, default=(1, 0))
    page = _Page(TEXT, frame=_frame(main))
    page.width, page.height = (width, height) if main[0] else (height, width)
    x, y = _turn((0, 0, width, height), page.frame)[:2]
    page.origin = (x, y)
    page.vectors = [page.turn(bbox) for bbox in vectors]
    blocks: dict[int, list[_Line]] = {}
    for axis, index, bbox, text, size, spans in raw:
        page.chars += len(text) - text.count(" ")
        page.garbled += len(_GARBLED.findall(text))
        cells = [(*page.turn(s["bbox"])[::2], _clean(s["text"])) for s in spans]
        line = _Line(*page.turn(bbox), _clean(text), size, cells)
        if not line.text:
            continue
        if axis != main:
            page.rotated.append(line)  # kept for table cells, dropped elsewhere
        else:
            blocks.setdefault(index, []).append(line)
    page.blocks = [_Block(*_bounds(lines), lines) for lines in blocks.values()]
    return page


# ------------------------------------------------------------------------------------------------ reading order

COLUMN_GAP = 6.0  # points: the narrowest gutter that separates columns
SAME_SIZE = 0.6  # points: body text of two bands in the same columns differs less than this in font size


def _split(items: list[_Block], vertical: bool, gap: float) -> list[list[_Block]]:
    """Groups of items separated by gaps wider than `gap` in their projection on the x axis (vertical cuts)
    or the y axis, in order."""
    lo, hi = ((lambda b: b.x0), (lambda b: b.x1)) if vertical else ((lambda b: b.y0), (lambda b: b.y1))
    ordered = sorted(items, key=lo)
    groups, end = [[ordered[0]]], hi(ordered[0])
    for item in ordered[1:]:
        if lo(item) > end + gap:
            groups.append([item])
        else:
            groups[-1].append(item)
        end = max(end, hi(item))
    return groups


def _columnar(blocks: list[_Block]) -> bool:
    """Blocks that split into columns of running text (several lines per block on average), not into the
    cells of a form or a list of label/value rows."""
    return len(_split(blocks, True, COLUMN_GAP)) > 1 and sum(len(b.lines) for b in blocks) >= 2 * len(blocks)


def _merge_bands(bands: list[list[_Block]]) -> tuple[list[list[_Block]], bool]:
    """Rejoin horizontal bands that belong to the same columns: a y-gap across a two-column region where both
    columns happen to have a paragraph break must not make the reader jump between columns. Bands set in
    different font sizes stay apart (a two-column caption above two-column body text); the flag says whether
    that happened."""
    merged = [bands[0]]
    by_size = False
    for previous, band in itertools.pairwise(bands):
        union = merged[-1] + band
        if (_columnar(merged[-1]) or _columnar(band)) and len(_split(union, True, COLUMN_GAP)) > 1:
            if abs(_body_size(previous) - _body_size(band)) <= SAME_SIZE or not (
                _columnar(previous) and _columnar(band)
            ):
                merged[-1] = union
                continue
            by_size = True
        merged.append(band)
    return merged, by_size


def _body_size(blocks: list[_Block]) -> float:
    """The font size most of the blocks' text is set in (a two-column figure caption is smaller than the body
    below it, and must be read whole before it)."""
    sizes: Counter[float] = Counter()
    for block in blocks:
        for line in block.lines:
            sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _xy_order(blocks: list[_Block]) -> list[_Block]:
    """Recursive XY-cut: columns left to right where a vertical gap crosses the whole region (unless bands in
    different font sizes span the same columns: those are read band by band), else horizontal bands top to
    bottom, else top-to-bottom, left-to-right."""
    if len(blocks) <= 1:
        return blocks
    columns = _split(blocks, True, COLUMN_GAP)
    bands, by_size = _merge_bands(_split(blocks, False, 0.0))
    if len(columns) > 1 and not by_size:
        return [b for column in columns for b in _xy_order(column)]
    if len(bands) > 1:
        return [b for band in bands for b in _xy_order(band)]
    return sorted(blocks, key=lambda b: (round(b.y0), b.x0))


# ------------------------------------------------------------------------------------------------ headers, footers

_ROMAN = r"m{0,3}(?:c[md]|d?c{0,3})(?:x[cl]|l?x{0,3})(?:i[xv]|v?i{0,3})"
_PAGE_NUMBER = re.compile(
    rf"(?:page|p\.|pg\.?|seite|p[aá]gina|strona|стр\.?)?\s*[-–—(\[]?\s*(?:\d{{1,4}}|(?=[ivxlcdm]){_ROMAN})\s*"
    rf"[-–—)\]]?(?:\s*(?:of|/|von|de|sur|di|из)\s*\d{{1,4}})?|\d{{1,3}}\s?[-–.]\s?\d{{1,4}}",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")
_NOT_WORD = re.compile(r"\W+")


def _zone(line: _Line, page: _Page) -> str | None:
    if line.y1 <= MARGIN_ZONE * page.height:
        return "top"
    if line.y0 >= (1 - MARGIN_ZONE) * page.height:
        return "bottom"
    return None


def _edges(lines: list[_Line], page: _Page, rows: int, min_rows: int) -> dict[int, str]:
    """The lines that may be running headers or footers, by id, with a key prefix: "top"/"bottom" for those in
    the margin zones, "top="/"bottom=" for those in the first or last `rows` rows of text of the upper or lower
    half of the page (margins vary: a book set on letter paper has its running header at 13% of the height).
    Only the zones' lines are compared with their digits masked ("Page 3 of 9"); the others must repeat as they
    are, so that body lines which differ only in numbers are not taken for a header, must be short, and are
    only looked for on pages with at least `min_rows` rows of text."""
    out = {id(line): zone for line in lines if (zone := _zone(line, page))}
    text_rows = [[item[2] for item in row] for row in _text_rows([(line.y0, line.y1, line) for line in lines])]
    if len(text_rows) < min_rows:  # too little text on the page to tell a header row from the body
        return out
    text_rows = [[line for line in row if len(line.text) <= MAX_HEADER_CHARS] for row in text_rows]
    for row in text_rows[:rows]:
        out.update({id(line): "top=" for line in row if line.y1 <= page.height / 2 and id(line) not in out})
    for row in text_rows[-rows:]:
        out.update({id(line): "bottom=" for line in row if line.y0 >= page.height / 2 and id(line) not in out})
    return out


def _margin_key(line: _Line, zone: str) -> str:
    text = line.text.lower() if zone.endswith("=") else _DIGITS.sub("0", line.text.lower())
    return zone + _NOT_WORD.sub("", text)


def _remove_margins(pages: list[_Page]) -> tuple[int, int]:
    """Drop running headers and footers (header/footer candidates, see `_edges`, whose text repeats on enough
    pages) and then bare page numbers ("12", "- 12 -", "Page 3 of 9", "7-45", "xii") that sit alone on the
    first or last row or in the margin zones. Returns (repeated lines removed, numbers removed)."""
    texts = [p for p in pages if p.blocks]
    edges = [
        _edges([line for b in page.blocks for line in b.lines], page, EDGE_ROWS, 2 * EDGE_ROWS + 2) for page in texts
    ]
    seen: Counter[str] = Counter()
    for page, edge in zip(texts, edges):
        seen.update({_margin_key(line, edge[id(line)]) for b in page.blocks for line in b.lines if id(line) in edge})
    need = max(2, math.ceil(REPEATED_SHARE * len(texts)))
    repeated = numbers = 0
    for page, edge in zip(texts, edges):
        drop: set[int] = set()
        for block in page.blocks:
            for line in block.lines:
                if id(line) in edge and seen[_margin_key(line, edge[id(line)])] >= need:
                    drop.add(id(line))
        repeated += len(drop)
        kept = [line for b in page.blocks for line in b.lines if id(line) not in drop]
        last = _edges(kept, page, 1, 2)
        for line in kept:
            if id(line) in last and _PAGE_NUMBER.fullmatch(line.text) and _alone(line, kept):
                drop.add(id(line))
                numbers += 1
        if drop:
            for block in page.blocks:
                block.lines = [line for line in block.lines if id(line) not in drop]
            page.blocks = [b for b in page.blocks if b.lines or b.table]
    return repeated, numbers


def _alone(line: _Line, lines: list[_Line]) -> bool:
    """No other line shares this line's row."""
    return not any(o is not line and o.y0 < line.y1 and line.y0 < o.y1 for o in lines)


# ------------------------------------------------------------------------------------------------ paragraphs

_BULLET = re.compile(r"[•·▪●◦‣⁃○■□➢►\-–—*]\s|\(?\d{1,2}[.)]\s|\(?[a-z][.)]\s")


def _hyphenated(left: str, right: str) -> bool:
    """A word broken at the line end: "al-" + "ternative". Not after an acronym or a number ("AF-" + "toxin",
    "COVID-19-" + "related"): those hyphens are part of the word."""
    if len(left) < 2 or left[-1] not in _HYPHENS or not left[-2].isalpha() or not right[:1].islower():
        return False
    fragment = left[:-1].rsplit(None, 1)[-1]
    return not (len(fragment) > 1 and fragment.isupper()) and not any(c.isdigit() for c in fragment)


def _block_text(block: _Block, counts: Counter[str]) -> str:
    """A block's lines as paragraph text: wrapped lines joined with spaces, hyphenated breaks undone, line
    breaks kept after lines that end short of the block's right edge and before list items."""
    if block.table is not None:
        return block.table
    lines = block.lines
    out = [lines[0].text]
    for prev, line in itertools.pairwise(lines):
        left = out[-1]
        if line.y0 < (prev.y0 + prev.y1) / 2 and line.x0 >= prev.x1 - 1:  # same row, further right
            out.append(" " + line.text)
        elif _hyphenated(left, line.text):
            out[-1] = left[:-1]
            out.append(line.text)
            counts["dehyphenated"] += 1
        elif left[-1] in _HYPHENS:  # "COVID-" + "19": a real hyphen at the break
            out.append(line.text)
        elif prev.x1 < block.x1 - max(2 * prev.size, 0.15 * (block.x1 - block.x0)) or _BULLET.match(line.text):
            out.append("\n" + line.text)
        else:
            out.append(" " + line.text)
    return "".join(out)


def _page_text(page: _Page, counts: Counter[str]) -> str:
    """Blocks in reading order, separated by blank lines; a block that continues a sentence (no closing
    punctuation before, a lowercase letter after: a paragraph broken by a column or a figure) is joined to the
    paragraph it continues: the one before it, or the last one in its font size when only tables or smaller
    text (a footnote, a caption) stand between them."""
    if page.text is not None:
        return page.text
    out: list[str] = []
    sizes: list[float | None] = []  # None for tables
    for block in page.blocks:
        text = _block_text(block, counts)
        if not text:
            continue
        size = None if block.table is not None else _body_size([block])
        target = len(out) - 1
        if size is not None and text[:1].islower():
            while target >= 0 and ((size_before := sizes[target]) is None or size_before < size - SAME_SIZE):
                target -= 1
        if target >= 0 and sizes[target] is not None and out[target][-1:] not in _TERMINAL and text[:1].islower():
            if _hyphenated(out[target], text):
                out[target] = out[target][:-1] + text
                counts["dehyphenated"] += 1
            else:
                out[target] += " " + text
        else:
            out.append(text)
            sizes.append(size)
    return unicodedata.normalize("NFC", "\n\n".join(out))


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


def _read_page(doc: Any, index: int, ocr_language: str | None) -> _Page:
    """One page through the router: read its structured text once, then take the cheapest path that fits."""
    page = doc[index]
    width, height = _unrotated_size(page)
    page_dict = page.get_textpage(flags=_FLAGS).extractDICT()
    result = _read_blocks(page_dict, width, height)
    usable = result.chars - result.garbled
    if result.chars >= MIN_PAGE_CHARS and result.garbled > GARBLED_PAGE_RATIO * result.chars:
        route = GARBLED
    elif usable >= MIN_PAGE_CHARS:
        route = TEXT
    else:  # little or no text: a scan if images cover the page, else keep what little text there is
        route = NO_TEXT if _image_coverage(page) >= SCAN_IMAGE_COVERAGE else (TEXT if usable else BLANK)
    if route == TEXT:
        _ruled_tables(result, page)
        _aligned_tables(result)
        result.blocks = _xy_order(result.blocks)
        return result
    if route != BLANK and ocr_language and tessdata_dir():
        ocr_dict = page.get_textpage_ocr(
            flags=_FLAGS, language=ocr_language, dpi=300, full=True, tessdata=tessdata_dir()
        ).extractDICT()
        ocr = _read_blocks(ocr_dict, width, height)
        ocr.route, ocr.blocks = OCR, _xy_order(ocr.blocks)
        return ocr
    return _Page(route, width, height, chars=result.chars, garbled=result.garbled)


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
    data: bytes, max_pages: int = 500, ocr_language: str | None = "eng", layout: bool = False
) -> PdfExtraction:
    """Text of a PDF with layout handling (see the module docstring). Never raises for a bad document.

    max_pages: extract at most this many pages (the first ones); more are flagged in `pages_truncated`.
    ocr_language: Tesseract language(s) for pages without a text layer, if Tesseract's data is installed;
        None never OCRs.
    layout: let the router send the pages the fast path is least sure of (`_needs_layout`: pages with tables) to
        pymupdf4llm's layout mode, about a second per page; at most MAX_LAYOUT_PAGES per document.
    """
    started = time.perf_counter()
    try:
        doc, outcome = _open(data)
        if outcome is not None:
            return outcome
        with doc:
            page_count = doc.page_count
            pages = []
            for index in range(min(page_count, max_pages)):
                try:
                    pages.append(_read_page(doc, index, ocr_language))
                except Exception as exc:
                    pages.append(_Page(FAILED, error=f"{type(exc).__name__}: {exc}"))
            if layout:
                _layout_pages(doc, pages)
            repaired = doc.is_repaired
        return _assemble(pages, page_count, repaired, started)
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
    headers, numbers = _remove_margins(pages)
    texts = [_page_text(page, counts) for page in pages]
    page_ends, offset = [], 0
    for i, text in enumerate(texts):
        if text and any(texts[i + 1 :]):
            texts[i] = text + "\n\n"
        offset += len(texts[i])
        page_ends.append(offset)
    routes = [page.route for page in pages]
    chars = sum(page.chars for page in pages)
    garbled = sum(page.garbled for page in pages)
    scans = routes.count(NO_TEXT) + routes.count(GARBLED)
    signals = {
        "chars": chars,
        "garbled_chars": garbled,
        "garbled_ratio": round(garbled / chars, 6) if chars else 0.0,
        "pages_without_text": sum(r in (NO_TEXT, BLANK, GARBLED, FAILED) for r in routes),
        "pages_scanned": scans,
        "pages_failed": routes.count(FAILED),
        "pages_ocr": routes.count(OCR),
        "pages_layout": routes.count(LAYOUT),
        "tables": sum(page.tables for page in pages),
        "header_footer_lines_removed": headers,
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
    return PdfExtraction(status, text, page_ends, page_count, routes, signals, error)


# ------------------------------------------------------------------------------------------------ tables

RULE = 2.5  # points: a path at most this thick is a rule
SNAP = 2.0  # points: rules closer than this are the same rule
MAX_VECTORS = 2000  # pages with more vector paths are drawings or maps; no table search there
MAX_PATH_ITEMS = 20_000  # line-art items (lines, rectangles, curves) beyond which a page is a drawing
MIN_RULE_WIDTH = 80.0  # points: the narrowest rule that bounds a table
PROSE_CHARS = 25  # median characters per line of a running-text block
MAX_CELL_CHARS = 200  # a "table" whose cells average more text than this is a frame around paragraphs

Segment = tuple[float, float, float]  # (position across, start, end): y, x0, x1 for horizontal rules


def _looks_ruled(vectors: list[tuple[float, float, float, float]], area: float) -> bool:
    """Cheap test on the paths MuPDF reported with the text: enough thin rules or boxes for a ruled table."""
    if not 2 <= len(vectors) <= MAX_VECTORS:
        return False
    rules = boxes = 0
    for x0, y0, x1, y1 in vectors:
        w, h = x1 - x0, y1 - y0
        if min(w, h) <= RULE < max(w, h):
            rules += 1
        elif w > RULE and h > RULE and w * h < area / 2:
            boxes += 1
    return rules + boxes >= 2


def _segments(drawings: list[dict], page: _Page) -> tuple[list[Segment], list[Segment]]:
    """Horizontal and vertical rules in the page's line art: straight lines, thin rectangles, and the edges of
    boxes (cell borders and shaded cells; not page-sized backgrounds)."""
    hs: list[Segment] = []
    vs: list[Segment] = []
    area = page.width * page.height

    def add(x0: float, y0: float, x1: float, y1: float, edges: bool) -> None:
        x0, y0, x1, y1 = page.turn((x0, y0, x1, y1))
        w, h = x1 - x0, y1 - y0
        if h <= RULE < w:
            hs.append(((y0 + y1) / 2, x0, x1))
        elif w <= RULE < h:
            vs.append(((x0 + x1) / 2, y0, y1))
        elif edges and w > RULE and h > RULE and w * h < area / 2:
            hs.extend(((y0, x0, x1), (y1, x0, x1)))
            vs.extend(((x0, y0, y1), (x1, y0, y1)))

    items = 0
    for path in drawings:
        items += len(path["items"])
        if items > MAX_PATH_ITEMS:  # a drawing, a map or outlined text, not a table grid
            return [], []
        for item in path["items"]:
            if item[0] == "l":
                (ax, ay), (bx, by) = item[1], item[2]
                add(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by), False)
            elif item[0] == "re":
                add(*item[1], True)
    return _merge_segments(hs), _merge_segments(vs)


def _merge_segments(segments: list[Segment]) -> list[Segment]:
    """Collinear rules that touch or overlap become one."""
    merged: list[list[float]] = []
    for pos, start, end in sorted(segments):
        for m in reversed(merged[-8:]):  # recent ones at (almost) the same position
            if abs(m[0] - pos) <= SNAP and start <= m[2] + SNAP and m[1] <= end + SNAP:
                m[1], m[2] = min(m[1], start), max(m[2], end)
                break
        else:
            merged.append([pos, start, end])
    return [(m[0], m[1], m[2]) for m in merged]


def _grids(hs: list[Segment], vs: list[Segment]) -> list[tuple[list[float], list[float]]]:
    """Connected sets of crossing rules that form a grid, each as its column edges (x) and row edges (y)."""
    if len(hs) * len(vs) > 250_000:
        return []
    parent = list(range(len(hs) + len(vs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (y, x0, x1) in enumerate(hs):
        for j, (x, y0, y1) in enumerate(vs):
            if x0 - SNAP <= x <= x1 + SNAP and y0 - SNAP <= y <= y1 + SNAP:
                parent[root(i)] = root(len(hs) + j)
    groups: dict[int, tuple[list[Segment], list[Segment]]] = {}
    for i, h in enumerate(hs):
        groups.setdefault(root(i), ([], []))[0].append(h)
    for j, v in enumerate(vs):
        groups.setdefault(root(len(hs) + j), ([], []))[1].append(v)
    return [grid for h, v in groups.values() if (grid := _grid(h, v))]


def _grid(hs: list[Segment], vs: list[Segment]) -> tuple[list[float], list[float]] | None:
    """Row and column edges of crossing rules, if they look like a table: at least two columns, and rules
    that mostly run across the whole table (callout boxes and diagrams have short ones)."""
    xs, ys = _snap([v[0] for v in vs]), _snap([h[0] for h in hs])
    if len(xs) < 3 or len(ys) < 2:
        return None
    width, height = xs[-1] - xs[0], ys[-1] - ys[0]
    across = sum(h[2] - h[1] for h in hs) / (width * len(ys))
    down = sum(v[2] - v[1] for v in vs) / (height * len(xs))
    return (xs, ys) if min(across, down) >= 0.5 else None


def _snap(values: list[float]) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > SNAP:
            out.append(v)
    return out


def _text_rows(items: list[tuple]) -> list[list[tuple]]:
    """Items whose first two fields are (y0, y1), grouped into rows of text: an item whose middle lies below
    the current row's first item opens a new row."""
    rows: list[list[tuple]] = []
    bottom = -math.inf
    for item in sorted(items, key=lambda i: i[0] + i[1]):
        if (item[0] + item[1]) / 2 > bottom:
            rows.append([item])
            bottom = item[1]
        else:
            rows[-1].append(item)
    return rows


def _fill_grid(xs: list[float], ys: list[float], lines: list[_Line]) -> list[list[str]]:
    """Text of each cell (spans placed by their centre). A grid row holding three or more rows of text in at
    least two columns (a table ruled only around its header, say) is split into one row per text row."""
    cells: list[tuple[int, float, float, int, float, str]] = []  # (row, y0, y1, col, x0, text)
    for line in lines:
        row = bisect.bisect(ys, (line.y0 + line.y1) / 2) - 1
        if 0 <= row < len(ys) - 1:
            for x0, x1, text in line.spans:
                col = bisect.bisect(xs, (x0 + x1) / 2) - 1
                if 0 <= col < len(xs) - 1 and text:
                    cells.append((row, line.y0, line.y1, col, x0, text))
    rows: list[list[str]] = []
    for row in range(len(ys) - 1):
        items = [c[1:] for c in cells if c[0] == row]
        text_rows = _text_rows(items)
        per_col = Counter(col for group in text_rows for col in {i[2] for i in group})
        filled = sum(n >= max(2, 0.6 * len(text_rows)) for n in per_col.values())
        for group in text_rows if len(text_rows) >= 3 and filled >= 2 else [items]:
            out: list[list[str]] = [[] for _ in range(len(xs) - 1)]
            for _, _, col, _, text in sorted(group, key=lambda i: (round(i[0]), i[3])):
                out[col].append(text)
            rows.append([" ".join(texts) for texts in out])
    return rows


def _markdown(rows: list[list[str]]) -> str | None:
    """A Markdown table of the rows without empty rows and columns, or None when that leaves less than a
    table (two rows, two columns) or cells full of running text."""
    rows = [r for r in rows if any(r)]
    keep = [c for c in range(len(rows[0]) if rows else 0) if any(r[c] for r in rows)]
    rows = [[r[c].replace("|", "\\|") for c in keep] for r in rows]
    filled = [c for r in rows for c in r if c]
    if len(rows) < 2 or len(keep) < 2 or sum(map(len, filled)) > MAX_CELL_CHARS * len(filled):
        return None
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(keep)]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def _ruled_tables(page: _Page, pdf_page: Any) -> None:
    """Find tables drawn with rules and put each in the page as one Markdown block in place of its lines."""
    if not _looks_ruled(page.vectors, page.width * page.height):
        return
    hs, vs = _segments(pdf_page.get_cdrawings(), page)
    lines = [line for block in page.blocks for line in block.lines] + page.rotated
    for xs, ys in _grids(hs, vs):
        inside = [line for line in lines if _within(line, xs[0], ys[0], xs[-1], ys[-1])]
        table = _markdown(_fill_grid(xs, ys, inside))
        if table:
            _place_table(page, _Block(xs[0], ys[0], xs[-1], ys[-1], [], table), inside)
    _open_tables(page, hs, vs)


def _open_tables(page: _Page, hs: list[Segment], vs: list[Segment]) -> None:
    """Tables ruled only across (LaTeX booktabs: a rule above, one under the header, one below): three or more
    horizontal rules of the same extent, no vertical rule across them, at least four lines of text between them
    and none of running text, in columns separated by gutters that run through all rows below the header rule.
    Each text row is a table row; a row that starts in lowercase continues the cells of the row above."""
    wide = sorted((h for h in hs if h[2] - h[1] >= MIN_RULE_WIDTH), key=lambda h: h[0])
    groups: list[list[Segment]] = []
    for rule in wide:
        for group in groups:
            if abs(group[0][1] - rule[1]) <= 2 * SNAP and abs(group[0][2] - rule[2]) <= 2 * SNAP:
                group.append(rule)
                break
        else:
            groups.append([rule])
    prose = _prose_lines(page.blocks)
    for group in groups:
        if len(group) < 3 or group[-1][0] - group[0][0] < 10:
            continue
        top, bottom, x0, x1 = group[0][0], group[-1][0], min(g[1] for g in group), max(g[2] for g in group)
        if any(x0 - SNAP <= x <= x1 + SNAP and min(y1, bottom) - max(y0, top) > (bottom - top) / 2 for x, y0, y1 in vs):
            continue  # a frame, a grid or a chart's axes: not a table ruled only across
        lines = [
            line for block in page.blocks for line in block.lines if _within(line, x0 - SNAP, top, x1 + SNAP, bottom)
        ]
        if (
            len(lines) < 4
            or any(id(line) in prose for line in lines)
            or any(
                b.table is not None and b.y0 < bottom and top < b.y1 and b.x0 < x1 and x0 < b.x1 for b in page.blocks
            )
        ):
            continue
        header_end = group[1][0]
        body = [line for line in lines if (line.y0 + line.y1) / 2 > header_end] or lines
        xs = _gutters(body, x0, x1)
        if len(xs) < 3:
            continue
        rows: list[list[str]] = []
        for text_row in _text_rows([(line.y0, line.y1, line) for line in lines]):
            cells = [[] for _ in range(len(xs) - 1)]
            for _, _, line in sorted(text_row, key=lambda item: item[2].x0):
                column = max(0, min(len(xs) - 2, bisect.bisect(xs, (line.x0 + line.x1) / 2) - 1))
                cells[column].append(line.text)
            row = [" ".join(c) for c in cells]
            first = next((c for c in row if c), "")
            if rows and first[:1].islower():
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row)]
            else:
                rows.append(row)
        table = _markdown(rows)
        if table:
            _place_table(page, _Block(x0, top, x1, bottom, [], table), lines)


def _gutters(lines: list[_Line], x0: float, x1: float) -> list[float]:
    """Column edges from x0 to x1: the middles of the gaps of at least COLUMN_GAP points that no line crosses."""
    spans = sorted((line.x0, line.x1) for line in lines)
    edges, end = [x0], spans[0][1]
    for start, stop in spans[1:]:
        if start > end + COLUMN_GAP:
            edges.append((start + end) / 2)
        end = max(end, stop)
    return [*edges, x1]


def _within(line: _Line, x0: float, y0: float, x1: float, y1: float) -> bool:
    return x0 <= (line.x0 + line.x1) / 2 <= x1 and y0 <= (line.y0 + line.y1) / 2 <= y1


def _place_table(page: _Page, table: _Block, lines: list[_Line]) -> None:
    gone = {id(line) for line in lines}
    blocks = []
    for block in page.blocks:
        kept = [line for line in block.lines if id(line) not in gone]
        if len(kept) == len(block.lines):
            blocks.append(block)
        elif kept:
            blocks.append(_Block(*_bounds(kept), kept))
    page.blocks = [*blocks, table]
    page.rotated = [line for line in page.rotated if id(line) not in gone]
    page.tables += 1
    page.route = TABLES


def _aligned_tables(page: _Page) -> None:
    """Find tables without rules: runs of at least three text rows of three or more short, spread-out cells
    (MuPDF makes each cell its own line). Read by the XY-cut they would come out column by column."""
    prose = _prose_lines(page.blocks)
    lines = [line for block in page.blocks for line in block.lines if id(line) not in prose]
    rows = [[item[2] for item in row] for row in _text_rows([(line.y0, line.y1, line) for line in lines])]
    region: list[list[_Line]] = []
    misses = 0
    for row in [*rows, []]:
        if _table_row(row):
            region.append(row)
            misses = 0
        elif region and misses < 2 and row:  # a section heading inside the table
            region.append(row)
            misses += 1
        else:
            region = region[: len(region) - misses]
            if sum(map(_table_row, region)) >= 3:
                _place_aligned(page, region)
            region, misses = [], 0


def _prose_lines(blocks: list[_Block]) -> set[int]:
    """Ids of the lines of running-text blocks: three or more lines, most of them filling the block's width,
    of sentence length. A column of prose beside a figure or a table must not be read as table cells, nor
    the narrow columns of a newspaper as a table's columns."""
    out: set[int] = set()
    for block in blocks:
        lines = block.lines
        if len(lines) < 3:
            continue
        width = block.x1 - block.x0
        full = sum(line.x1 - line.x0 >= 0.85 * width for line in lines)
        lengths = sorted(len(line.text) for line in lines)
        if full >= 0.6 * len(lines) and lengths[len(lengths) // 2] >= PROSE_CHARS:
            out.update(id(line) for line in lines)
    return out


def _table_row(row: list[_Line]) -> bool:
    if len(row) < 3:
        return False
    span = max(line.x1 for line in row) - min(line.x0 for line in row)
    filled = sum(line.x1 - line.x0 for line in row)
    lengths = sorted(len(line.text) for line in row)
    return filled < 0.8 * span and lengths[len(lengths) // 2] <= 25


def _place_aligned(page: _Page, rows: list[list[_Line]]) -> None:
    """A Markdown table from the rows; column edges where the share of table rows with text there changes
    across a tenth (so one cell spanning two columns does not merge them)."""
    x0 = min(line.x0 for row in rows for line in row)
    x1 = max(line.x1 for row in rows for line in row)
    width = int(x1 - x0) + 2
    cover = [0] * width
    table_rows = [row for row in rows if _table_row(row)]
    for row in table_rows:
        for line in row:
            for x in range(int(line.x0 - x0), int(line.x1 - x0) + 1):
                cover[x] += 1
    limit = 0.1 * len(table_rows)
    # lines wholly outside the table's columns (a caption or prose beside the table that shares its rows) stay out
    rows = [[line for line in row if max(cover[int(line.x0 - x0) : int(line.x1 - x0) + 1]) > limit] for row in rows]
    rows = [row for row in rows if row]
    edges = [x0 + x for x in range(1, width) if (cover[x] > limit) != (cover[x - 1] > limit) and cover[x] > limit]
    xs = [-math.inf, *edges, math.inf]
    cells = [
        [
            " ".join(line.text for line in row if xs[c] <= (line.x0 + line.x1) / 2 < xs[c + 1])
            for c in range(len(xs) - 1)
        ]
        for row in rows
    ]
    table = _markdown(cells)
    if table and len(edges) >= 2:
        lines = [line for row in rows for line in row]
        _place_table(page, _Block(*_bounds(lines), [], table), lines)
