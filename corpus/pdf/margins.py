"""Running headers and footers, and bare page numbers, removed from the pages before their text is joined.

Three rules, in this order, each counted per page (signals `header_footer_lines_removed`, `page_numbers_removed`,
and `margin_lines.<cue>` for the single-page rule's cues):

1. Repetition across pages (where there are pages): lines near the top or bottom of the page (the 12% bands, or
   the first or last two rows of text) that repeat on at least REPEATED_PAGES pages and REPEATED_SHARE of them,
   digits masked in the bands ("Page 3 of 9" matches "Page 4 of 9"). FinePDFs removes top/bottom line runs found
   on at least 5 pages and 25% of them; we keep its 5 pages but not its 25%: a book's chapter titles run on a
   tenth of its pages each.
2. One page on its own (single pages cut from longer documents, short documents): a line in the top or bottom
   band, in the group of rows nearest the page edge that is set apart from the body by a gap of at least a body
   line's height, goes when it looks like a running header or footer: by shape (a page number, a date, a URL,
   DOI, e-mail, ISSN or copyright line, a "Downloaded from" stamp, a journal line with volume, issue or pages),
   or by typography (smaller than the body text, or in another font, not bold and not larger) on a line shorter
   than the body's. A title is larger than the body and is kept; a section heading at the top of a page sits close to
   its paragraph and is kept. Pages with little body text (covers, figure pages) are left alone.
3. Bare page numbers ("12", "- 12 -", "Page 3 of 9", "7-45", "xii") alone on the first or last row of text.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter

from corpus.pdf.layout import _Line, _Page, _text_rows

MARGIN_ZONE = 0.12  # running headers and footers live in the top and bottom 12% of the page
REPEATED_PAGES = 5  # ... and repeat on at least this many pages (FinePDFs' minimum) ...
REPEATED_SHARE = 0.05  # ... and this share of the pages
EDGE_ROWS = 2  # ... or are among the first or last two rows of text of a page
MAX_HEADER_CHARS = 120  # longer lines are never taken for running headers or footers
MIN_BODY_LINES = 6  # the single-page rule needs this many lines of body text to tell body from margin
HEADER_GAP = 1.0  # ... and a gap of this many body font sizes between the margin rows and the body
SMALLER = 0.9  # ... typography: a line set at most this share of the body size is "smaller"
SHORT = 0.8  # ... a line narrower than this share of the body's usual line width is "short"

_ROMAN = r"m{0,3}(?:c[md]|d?c{0,3})(?:x[cl]|l?x{0,3})(?:i[xv]|v?i{0,3})"
_PAGE_NUMBER = re.compile(
    rf"(?:page|p\.|pg\.?|seite|p[aá]gina|strona|стр\.?)?\s*[-–—(\[]?\s*(?:\d{{1,4}}|(?=[ivxlcdm]){_ROMAN})\s*"
    rf"[-–—)\]]?(?:\s*(?:of|/|von|de|sur|di|из)\s*\d{{1,4}})?|\d{{1,3}}\s?[-–.]\s?\d{{1,4}}",
    re.IGNORECASE,
)
_MONTHS = (
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?|janvier|février|mars|avril|mai|juin|"
    r"juillet|août|septembre|octobre|novembre|décembre|januar|februar|märz|juni|juli|oktober|dezember"
)
# What running headers and footers are made of, searched anywhere in a short line of the bands (the first that
# matches names the cue).
_MARGIN_SHAPES = {
    "stamp": re.compile(r"\bdownloaded\s+(?:from|by)\b|\bprinted\s+(?:on|from)\b|\baccessed\s+on\b", re.IGNORECASE),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"),
    "doi": re.compile(r"\bdoi\b|\b10\.\d{4,9}/", re.IGNORECASE),
    "url": re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|org|net|edu|gov|int)(?:/|\b)", re.IGNORECASE),
    "copyright": re.compile(r"©|\(c\)\s*\d{4}|\bcopyright\b|all rights reserved|\blicen[cs]ed? under\b", re.IGNORECASE),
    "issn": re.compile(r"\b[ep]?-?issn\b|\bisbn\b", re.IGNORECASE),
    "journal": re.compile(
        r"\bvol(?:ume)?\.?\s*\d|\bno\.\s*\d|\bissue\s*\d|\bpp?\.\s*\d|\b\d{4}\s*;\s*\d+|\(\d{4}\)\s*\d+\s*[-–]\s*\d+"
        r"|\bjournal\b|\bproceedings\b|\btransactions\b|\barxiv:",
        re.IGNORECASE,
    ),
    "date": re.compile(
        rf"\b(?:{_MONTHS})\s+\d{{1,2}},?\s+\d{{4}}\b|\b\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}\b"
        r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\s*(?:am|pm)?\b",
        re.IGNORECASE,
    ),
    "page_number": re.compile(rf"(?:^|\s)(?:{_PAGE_NUMBER.pattern})$", re.IGNORECASE),
}
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


def _shape(text: str) -> str | None:
    """The running-header shape a line has (see _MARGIN_SHAPES), if any."""
    return next((name for name, pattern in _MARGIN_SHAPES.items() if pattern.search(text)), None)


_CAPTION = re.compile(r"(?:fig(?:ure)?|table|tab|scheme|chart|plate|exhibit)\.?\s*[\dIVXA-Z]", re.IGNORECASE)


def _single_page_margins(lines: list[_Line], page: _Page) -> dict[int, str]:
    """Running headers and footers told on one page (rule 2 of the module docstring): line id -> the cue.
    The rows nearest each edge that lie in the band are candidates; the margin is the smallest run of them from
    the edge that is followed by a gap of HEADER_GAP body sizes (a footer below two footnote lines is found,
    the footnotes stay). Tables count as body."""
    items = [(line.y0, line.y1, line) for line in lines]
    items += [(b.y0, b.y1, None) for b in page.blocks if b.table is not None]
    rows = _text_rows(items)  # rows of (y0, y1, line or None for a table)
    body_lines = [line for line in lines if _zone(line, page) is None]
    if len(body_lines) < MIN_BODY_LINES:
        return {}
    size = _body_size(body_lines)
    width = statistics.median(line.x1 - line.x0 for line in body_lines)
    font = Counter({line.font: len(line.text) for line in body_lines}).most_common(1)[0][0]
    found: dict[int, str] = {}
    for ordered, top in ((rows, True), (rows[::-1], False)):
        zone = "top" if top else "bottom"
        group: list[_Line] = []
        for k, row in enumerate(ordered[: EDGE_ROWS + 1]):
            if k + 1 >= len(ordered) or any(item[2] is None or _zone(item[2], page) != zone for item in row):
                break
            group += [item[2] for item in row]
            if top:
                gap = min(item[0] for item in ordered[k + 1]) - max(item[1] for item in row)
            else:
                gap = min(item[0] for item in row) - max(item[1] for item in ordered[k + 1])
            if gap >= HEADER_GAP * size:
                found.update(_margin_cues(group, size, width, font))
                break
    return found


def _margin_cues(lines: list[_Line], size: float, width: float, font: str) -> dict[int, str]:
    """The lines of a margin run that look like running headers or footers, with the cue that says so."""
    found = {}
    for line in lines:
        if len(line.text) > MAX_HEADER_CHARS or _CAPTION.match(line.text):
            continue
        short = line.x1 - line.x0 < SHORT * width
        cue = _shape(line.text) if short or len(line.text) <= 80 else None
        if cue is None and short:
            if line.size <= SMALLER * size:
                cue = "smaller"
            elif line.font != font and line.size <= size + 0.5 and not _bold(line):
                cue = "font"
        if cue is not None:
            found[id(line)] = cue
    return found


def _bold(line: _Line) -> bool:
    """Set in bold: a heading or a title in the body's size, not a running header (those are set apart by size,
    italics or another typeface)."""
    name, _, flags = line.font.rpartition("/")
    return "bold" in name.lower() or bool(int(flags or 0) & 16)


def _body_size(lines: list[_Line]) -> float:
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0]


def _remove_margins(pages: list[_Page]) -> tuple[int, int, Counter[str]]:
    """Drop running headers and footers (the three rules of the module docstring). Returns (lines removed by
    repetition or on their own page, numbers removed, the single-page rule's cues counted)."""
    texts = [p for p in pages if p.blocks]
    edges = [
        _edges([line for b in page.blocks for line in b.lines], page, EDGE_ROWS, 2 * EDGE_ROWS + 2) for page in texts
    ]
    seen: Counter[str] = Counter()
    for page, edge in zip(texts, edges):
        seen.update({_margin_key(line, edge[id(line)]) for b in page.blocks for line in b.lines if id(line) in edge})
    need = max(REPEATED_PAGES, math.ceil(REPEATED_SHARE * len(texts)))
    removed = numbers = 0
    cues: Counter[str] = Counter()
    for page, edge in zip(texts, edges):
        lines = [line for b in page.blocks for line in b.lines]
        drop = {id(line) for line in lines if id(line) in edge and seen[_margin_key(line, edge[id(line)])] >= need}
        if page.text is None:  # pages from the layout model had their headers removed by it
            single = _single_page_margins([line for line in lines if id(line) not in drop], page)
            cues.update(single.values())
            drop.update(single)
        removed += len(drop)
        kept = [line for line in lines if id(line) not in drop]
        last = _edges(kept, page, 1, 2)
        for line in kept:
            if id(line) in last and _PAGE_NUMBER.fullmatch(line.text) and _alone(line, kept):
                drop.add(id(line))
                numbers += 1
        if drop:
            page.removed = [line.text for line in lines if id(line) in drop]
            for block in page.blocks:
                block.lines = [line for line in block.lines if id(line) not in drop]
            page.blocks = [b for b in page.blocks if b.lines or b.table]
    return removed, numbers, cues


def _alone(line: _Line, lines: list[_Line]) -> bool:
    """No other line shares this line's row."""
    return not any(o is not line and o.y0 < line.y1 and line.y0 < o.y1 for o in lines)
