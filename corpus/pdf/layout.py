"""The page model (lines and blocks of MuPDF's structured text, in the page's reading frame), reading order (a
recursive XY-cut over the blocks) and paragraphs (lines joined, hyphenated breaks undone, a block that continues a
sentence joined to the paragraph it continues)."""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from corpus.pdf.clean import _GARBLED, _HYPHENS, _TERMINAL, _clean

# Per-page routes (PdfExtraction.routes).
TEXT = "text"
TABLES = "tables"
LAYOUT = "layout"
OCR = "ocr"
NO_TEXT = "no_text"  # no text layer, with images: a scan that was not OCR'd
BLANK = "blank"  # no text layer and (almost) no images
GARBLED = "garbled"  # a text layer that is mostly unmapped glyphs
FAILED = "failed"  # MuPDF raised on this page
ROUTES = (TEXT, TABLES, LAYOUT, OCR, NO_TEXT, BLANK, GARBLED, FAILED)


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
    font: str = ""  # the font most of the line is set in (with its style flags), for running headers


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
    invisible: int = 0  # characters drawn invisibly (render mode 3 or fully transparent): an OCR layer
    text_area: float = 0.0  # area covered by the lines of text, in square points
    tables: int = 0
    reason: str | None = None  # why the router chose OCR for this page (or would have, without an engine)
    removed: list[str] = field(default_factory=list)  # running headers, footers, page numbers taken out
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
    raw = []  # (axis, block index, bbox, text, size, spans, invisible characters)
    vectors = []
    for index, block in enumerate(page_dict["blocks"]):
        if block["type"] == 3:
            vectors.append(block["bbox"])
        for line in block.get("lines", ()):
            spans = [s for s in line["spans"] if s["text"].strip()]
            if spans:
                text = "".join(s["text"] for s in line["spans"])
                size = max(s["size"] for s in spans)
                hidden = sum(len(s["text"].replace(" ", "")) for s in spans if _invisible(s))
                raw.append((_axis(line["dir"]), index, line["bbox"], text, size, spans, hidden))
    weights: Counter[tuple[int, int] | None] = Counter()
    for axis, _, _, text, _, _, _ in raw:
        weights[axis] += len(text)
    main = max((a for a in weights if a is not None), key=weights.__getitem__, default=(1, 0))
    page = _Page(TEXT, frame=_frame(main))
    page.width, page.height = (width, height) if main[0] else (height, width)
    x, y = _turn((0, 0, width, height), page.frame)[:2]
    page.origin = (x, y)
    page.vectors = [page.turn(bbox) for bbox in vectors]
    blocks: dict[int, list[_Line]] = {}
    for axis, index, bbox, text, size, spans, hidden in raw:
        page.chars += len(text) - text.count(" ")
        page.garbled += len(_GARBLED.findall(text))
        page.invisible += hidden
        page.text_area += (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
        cells = [(*page.turn(s["bbox"])[::2], _clean(s["text"])) for s in spans]
        main_span = max(spans, key=lambda s: len(s["text"]))
        line = _Line(
            *page.turn(bbox), _clean(text), size, cells, f"{main_span.get('font', '')}/{main_span.get('flags', 0) & 18}"
        )
        if not line.text:
            continue
        if axis != main:
            page.rotated.append(line)  # kept for table cells, dropped elsewhere
        else:
            blocks.setdefault(index, []).append(line)
    page.blocks = [_Block(*_bounds(lines), lines) for lines in blocks.values()]
    return page


_DRAWN = 8 | 16  # MuPDF's FZ_STEXT_FILLED | FZ_STEXT_STROKED character flags


def _invisible(span: dict) -> bool:
    """Text that is neither filled nor stroked (render mode 3) or fully transparent: an OCR layer under a scan."""
    return not span.get("char_flags", _DRAWN) & _DRAWN or span.get("alpha", 255) == 0


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
