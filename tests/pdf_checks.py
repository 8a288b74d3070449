"""Page-level checks for extracted PDF text, in the spirit of olmOCR-bench's unit tests (present, absent, order,
table), run against the hand annotations in tests/pdf_annotations.json. Shared by tests/test_pdf.py and
scripts/bench_pdf.py, so the extractor and the methods it is compared with are scored by the same rules.

A check is one dict:
- {"type": "present", "text": s}: s occurs in the page's text.
- {"type": "absent", "text": s}: s does not occur (running headers, footers, page numbers, margin stamps).
- {"type": "order", "text": [s1, s2, ...]}: each snippet occurs after the previous one (reading order).
- {"type": "table", "cell": c, "right": r, "left": l, "up": u, "down": d, "top_heading": h, "left_heading": lh}:
  a cell of a Markdown table on the page equals c, and its neighbours equal the given ones (any subset of them);
  `top_heading` is the first row's cell of the same column, `left_heading` the first cell of the same row.

Matching is exact, at word boundaries ("50" is not found in "150"), after a light normalization applied to both
sides: Markdown emphasis markers removed (`*_`#`, so "FUNCTION_ID" is compared as "FUNCTIONID"), table pipes and
`<br>` as spaces, typographic quotes and dashes folded, whitespace collapsed, and no space kept before closing
punctuation, after an opening bracket or before a hyphen that starts a word (the spaces pymupdf4llm leaves around
emphasis: "_trees_ ." or "( _n_ + 1)"). Nothing else is forgiven: a hyphenated line break left in ("al- ternative"),
an unexpanded ligature ("ﬁ") or a wrong column order fails.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ANNOTATIONS = Path(__file__).resolve().parent / "pdf_annotations.json"
RELATIONS = ("left", "right", "up", "down", "top_heading", "left_heading")  # a table check's neighbour keys

_FOLD = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-", "‐": "-"})
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#]+")
_PIPES = re.compile(r"\|+")
_SPACE = re.compile(r"\s+")
# spaces that emphasis markers leave behind ("_trees_ ." -> "trees ."; "( _n_ + 1)"; "_n_ -cube")
_LOOSE = re.compile(r"\s+(?=[.,;:!?)\]}])|(?<=[(\[{])\s+|(?<=\w)\s+(?=-\w)")
_SEPARATOR = re.compile(r"^:?-{3,}:?$")


def normalize(text: str) -> str:
    """The form both the extracted text and the annotation are compared in."""
    text = _BR.sub(" ", text).translate(_FOLD).replace("\u00a0", " ")
    text = _SPACE.sub(" ", _PIPES.sub(" ", _MARKUP.sub("", text)))
    return _LOOSE.sub("", text).strip()


SPLITS = ("tune", "test")  # in-sample (written and tuned on together) and held-out (never tuned on)


def load_annotations(path: Path = ANNOTATIONS, split: str | None = None) -> list[dict[str, Any]]:
    """The annotated pages: {"pdf": path under the shared pdf folder, "page": 0-based index, "split": "tune" or
    "test", "why": ..., "checks"}; only those of `split` if given."""
    pages = json.loads(path.read_text(encoding="utf-8"))["pages"]
    return [page for page in pages if split is None or page["split"] == split]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of `hypothesis` against `reference`: Levenshtein distance over the reference's length,
    both with whitespace collapsed to single spaces."""
    from rapidfuzz.distance import Levenshtein

    reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())
    return Levenshtein.distance(reference, hypothesis) / max(1, len(reference))


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Markdown tables in a text: runs of lines starting with `|`, split into normalized cells, separator rows
    (`|---|---|`) dropped."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            body = stripped[1:-1] if stripped.endswith("|") and len(stripped) > 1 else stripped[1:]
            cells = [normalize(c.replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", body)]
            if not all(_SEPARATOR.match(c.replace(" ", "")) for c in cells if c) or not any(cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _pattern(snippet: str) -> re.Pattern[str]:
    """A normalized snippet as a regex that does not match inside a longer word or number ("50" not in "150")."""
    snippet = normalize(snippet)
    before = r"(?<!\w)" if snippet[:1].isalnum() else ""
    after = r"(?!\w)" if snippet[-1:].isalnum() else ""
    return re.compile(before + re.escape(snippet) + after)


def _table_check(text: str, check: dict[str, Any]) -> bool:
    unknown = set(check) - {*RELATIONS, "type", "cell", "xfail", "why"}
    if unknown:
        raise ValueError(f"unknown table check keys {sorted(unknown)}")
    want = {k: normalize(v) for k, v in check.items() if k in RELATIONS}
    cell = normalize(check["cell"])
    for table in markdown_tables(text):
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                if value != cell:
                    continue
                found = {
                    "left": row[c - 1] if c > 0 else None,
                    "right": row[c + 1] if c + 1 < len(row) else None,
                    "up": table[r - 1][c] if r > 0 and c < len(table[r - 1]) else None,
                    "down": table[r + 1][c] if r + 1 < len(table) and c < len(table[r + 1]) else None,
                    "top_heading": table[0][c] if c < len(table[0]) else None,
                    "left_heading": row[0],
                }
                if all(found.get(k) == v for k, v in want.items()):
                    return True
    return False


def run_check(page_text: str, check: dict[str, Any]) -> bool:
    """Whether one check holds on one page's extracted text."""
    kind = check["type"]
    if kind == "table":
        return _table_check(page_text, check)
    text = normalize(page_text)
    if kind == "present":
        return _pattern(check["text"]).search(text) is not None
    if kind == "absent":
        return _pattern(check["text"]).search(text) is None
    if kind == "order":
        position = 0
        for snippet in check["text"]:
            found = _pattern(snippet).search(text, position)
            if found is None:
                return False
            position = found.start() + 1
        return True
    raise ValueError(f"unknown check type {kind!r}")


def describe(check: dict[str, Any]) -> str:
    """A short label for reports."""
    if check["type"] == "table":
        relations = ", ".join(f"{k}={v!r}" for k, v in check.items() if k in RELATIONS)
        return f"table {check['cell']!r} ({relations})"
    text = check["text"]
    if isinstance(text, list):
        return f"order {' < '.join(repr(s[:30]) for s in text)}"
    return f"{check['type']} {text[:60]!r}"
