"""Running headers and footers (lines near the top or bottom of the page that repeat on enough pages) and bare
page numbers, removed from the pages before their text is joined."""

from __future__ import annotations

import math
import re
from collections import Counter

from corpus.pdf.layout import _Line, _Page, _text_rows

MARGIN_ZONE = 0.12  # running headers and footers live in the top and bottom 12% of the page
REPEATED_SHARE = 0.05  # ... and repeat on at least this share of the pages (and at least twice)
EDGE_ROWS = 2  # ... or are among the first or last two rows of text of a page
MAX_HEADER_CHARS = 120  # longer lines are never taken for running headers or footers


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
