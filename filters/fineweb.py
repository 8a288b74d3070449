"""FineWeb's own line-level quality rules (Penedo et al. 2024)."""

from __future__ import annotations

from typing import ClassVar

from datatrove.utils.text import TERMINAL_PUNCTUATION

from corpus.document import Document
from corpus.filters.base import KEEP, Filter, FilterResult
from corpus.filters.gopher import find_duplicates
from corpus.text import Splitter, splitter

#: What FineWeb's 2024 code counted as a line ending in punctuation (datatrove now uses TERMINAL_PUNCTUATION).
FINEWEB_2024_STOP_CHARS = (".", "'", '"', "!", "?")


class FineWebQualityFilter(Filter):
    name = "fineweb_quality"
    THRESHOLDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "line_punct_ratio": ("line_punct_thr",),
        "short_line_ratio": ("short_line_thr",),
        "char_dup_ratio": ("char_duplicates_ratio",),
        "list_ratio": ("new_line_ratio",),
    }

    def __init__(
        self,
        line_punct_thr: float = 0.12,
        line_punct_exclude_zero: bool = False,
        stop_chars: tuple[str, ...] | None = None,
        short_line_thr: float = 0.67,
        short_line_length: int = 30,
        char_duplicates_ratio: float = 0.01,
        new_line_ratio: float = 0.3,
        skip_empty_lines: bool = True,
        strict_comparisons: bool = True,
        words: Splitter | None = None,
    ) -> None:
        """`stop_chars` defaults to datatrove's Unicode terminal punctuation. `skip_empty_lines` and
        `strict_comparisons` are datatrove's current behaviour; FineWeb (2024) counted empty lines and dropped
        documents at the threshold itself (`compat: fineweb-2024` turns both off and uses its stop chars)."""
        self.line_punct_thr = line_punct_thr
        self.line_punct_exclude_zero = line_punct_exclude_zero
        self.stop_chars = tuple(stop_chars) if stop_chars is not None else tuple(TERMINAL_PUNCTUATION)
        self.short_line_thr = short_line_thr
        self.short_line_length = short_line_length
        self.char_duplicates_ratio = char_duplicates_ratio
        self.new_line_ratio = new_line_ratio
        self.skip_empty_lines = skip_empty_lines
        self.strict_comparisons = strict_comparisons
        self.splitter = words or splitter()

    def filter(self, doc: Document) -> FilterResult:
        text = doc.text or ""
        if not text.strip():
            return False, "empty"
        lines = text.split("\n")
        if self.skip_empty_lines:
            lines = [line for line in lines if line.strip() != ""]
        strict = self.strict_comparisons

        ratio = sum(1 for line in lines if line.endswith(self.stop_chars)) / len(lines)
        self.signal(doc, "line_punct_ratio", ratio)
        below = ratio < self.line_punct_thr if strict else ratio <= self.line_punct_thr
        if below and not (ratio == 0 and self.line_punct_exclude_zero):
            return False, "line_punct_ratio"

        ratio = sum(1 for line in lines if len(line) <= self.short_line_length) / len(lines)
        self.signal(doc, "short_line_ratio", ratio)
        if ratio > self.short_line_thr if strict else ratio >= self.short_line_thr:
            return False, "short_line_ratio"

        ratio = find_duplicates(lines)[1] / len(text.replace("\n", ""))
        self.signal(doc, "char_dup_ratio", ratio)
        if ratio > self.char_duplicates_ratio if strict else ratio >= self.char_duplicates_ratio:
            return False, "char_dup_ratio"

        ratio = text.count("\n") / len(self.splitter.words(text))
        self.signal(doc, "list_ratio", ratio)
        if ratio > self.new_line_ratio:
            return False, "list_ratio"
        return KEEP
