"""Tables as Markdown blocks in the page's reading order: grids rebuilt from the page's line art, tables ruled only
across (booktabs), and rule-less tables of aligned short cells."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any

from corpus.pdf.layout import COLUMN_GAP, TABLES, _Block, _bounds, _Line, _Page, _text_rows

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
