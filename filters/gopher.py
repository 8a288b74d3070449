"""Gopher repetition and quality rules (Rae et al. 2021, Table A1), as datatrove implements them for FineWeb."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from functools import lru_cache
from typing import ClassVar

import numpy as np
from datatrove.utils.text import PUNCTUATION_SET

from corpus.document import Document
from corpus.filters.base import KEEP, Filter, FilterResult
from corpus.text import Splitter, splitter

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile("\n+")


@lru_cache(maxsize=1 << 18)
def _token_kind(token: str) -> tuple[bool, bool]:
    """(has a character outside PUNCTUATION_SET, has an alphabetic character)."""
    return any(ch not in PUNCTUATION_SET for ch in token), any(ch.isalpha() for ch in token)


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated items, characters in repeated items), counting each repeat after the first."""
    seen: set[str] = set()
    dup_items = dup_chars = 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_items, dup_chars


_BASE = 0x100000001B3  # odd, so invertible modulo 2**64
_BASE_INV = pow(_BASE, -1, 2**64)
_powers = np.ones(1, dtype=np.uint64)  # _powers[i] = _BASE**i, grown on demand
_inv_powers = np.ones(1, dtype=np.uint64)  # _inv_powers[i] = _BASE_INV**i


def _ensure_powers(length: int) -> None:
    global _powers, _inv_powers
    if len(_powers) > length:
        return
    size = max(length + 1, 2 * len(_powers))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64, which is the point
        _powers = np.concatenate(([np.uint64(1)], np.cumprod(np.full(size - 1, _BASE, dtype=np.uint64))))
        _inv_powers = np.concatenate(([np.uint64(1)], np.cumprod(np.full(size - 1, _BASE_INV, dtype=np.uint64))))


class _Substrings:
    """Position-independent polynomial hashes (mod 2**64) of any substring of `text`, in O(1) each after an
    O(len) numpy pass. Equal substrings always hash equal; unequal ones may collide, so callers compare the
    strings themselves before counting a match."""

    def __init__(self, text: str) -> None:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        _ensure_powers(len(codes) + 1)
        self.prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            np.cumsum((codes + np.uint64(1)) * _inv_powers[1 : len(codes) + 1], out=self.prefix[1:])

    def hashes(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (self.prefix[ends] - self.prefix[starts]) * _powers[starts]


class NGrams:
    """The n-gram statistics of Gopher's repetition rules over one word list, exactly as datatrove computes them
    (n-grams `" ".join(words[i:i+n])` for the top n-gram, `"".join(words[i:i+n])` for the duplicate scan).

    Building every n-gram string for n = 2..10 dominates the filter in plain Python. Here n-grams are slices of
    one joined string, hashed all at once with numpy; only n-grams whose hash occurs more than once are ever
    materialized and compared, so the results are the same strings' counts, at a fraction of the cost."""

    def __init__(self, words: list[str]) -> None:
        self.n_words = n = len(words)
        self.packed = "".join(words)
        self.spaced = " ".join(words)
        self.packed_at = np.zeros(n + 1, dtype=np.int64)  # start of word i in `packed`; [n] is its length
        np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=n), out=self.packed_at[1:])
        self.spaced_at = self.packed_at + np.arange(n + 1, dtype=np.int64)  # start of word i in `spaced`
        self._packed_hashes: _Substrings | None = None
        self._spaced_hashes: _Substrings | None = None

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram (the first seen wins ties), 0 if there is none."""
        m = self.n_words - n + 1
        if m <= 0:
            return 0
        if self._spaced_hashes is None:
            self._spaced_hashes = _Substrings(self.spaced)
        starts, ends = self.spaced_at[:m], self.spaced_at[n : n + m] - 1
        order, group_at, sizes = _hash_groups(self._spaced_hashes.hashes(starts, ends))
        first = order[group_at]  # each group's first position (the sort is stable)
        best_count, best_first, best_len = 0, m, 0
        # Groups by decreasing size, then first seen; a group's strings are counted exactly (hashes may collide),
        # so smaller groups are visited only while they could still beat or tie the best count found.
        size = int(sizes.max())
        while size >= best_count and size > 0:
            groups = np.flatnonzero(sizes == size)
            for group in groups[np.argsort(first[groups])].tolist():
                if size == best_count and first[group] > best_first:
                    continue
                exact: dict[str, list[int]] = {}  # the group's strings: [count, first position]
                for pos in order[group_at[group] : group_at[group] + size].tolist():
                    entry = exact.setdefault(self.spaced[starts[pos] : ends[pos]], [0, pos])
                    entry[0] += 1
                for gram, (count, pos) in exact.items():
                    if count > best_count or (count == best_count and pos < best_first):
                        best_count, best_first, best_len = count, pos, len(gram)
            smaller = sizes[sizes < size]
            size = int(smaller.max()) if len(smaller) else 0
        return best_len * best_count

    def duplicated_chars(self, n: int) -> int:
        """Gopher's greedy scan: a repeated n-gram (words joined without spaces) adds its length, skips n words."""
        m = self.n_words - n + 1
        if m <= 0:
            return 0
        if self._packed_hashes is None:
            self._packed_hashes = _Substrings(self.packed)
        starts, ends = self.packed_at[:m], self.packed_at[n : n + m]
        hashes = self._packed_hashes.hashes(starts, ends)
        # An n-gram whose hash is unique cannot repeat, and the scan only ever steps over it: visit the others.
        order = np.argsort(hashes)
        same = hashes[order[1:]] == hashes[order[:-1]]
        shared = np.zeros(m, dtype=bool)  # in sorted order: the hash equals a neighbour's
        shared[1:] = same
        shared[:-1] |= same
        seen: set[str] = set()
        repeated = idx = 0
        packed = self.packed
        for pos in np.sort(order[shared]).tolist():
            if pos < idx:
                continue
            gram = packed[starts[pos] : ends[pos]]
            if gram in seen:
                repeated += len(gram)
                idx = pos + n
            else:
                seen.add(gram)
                idx = pos + 1
        return repeated


def _hash_groups(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions sorted by hash, stably (a group's positions ascend); where each group of equal hashes starts in
    that order; each group's size. (np.unique with its index, inverse and counts does more work for the same.)"""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    group_at = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return order, group_at, np.diff(np.append(group_at, len(hashes)))


class GopherRepetitionFilter(Filter):
    """Drops documents whose lines, paragraphs or n-grams repeat too much (a ratio strictly above its limit)."""

    name = "gopher_repetition"
    THRESHOLDS: ClassVar[dict[str, tuple[str, ...]]] = {
        key: (key,) for key in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac")
    }

    @classmethod
    def thresholds(cls, params: dict) -> dict[str, list[float]]:
        out = super().thresholds(params)
        defaults = inspect.signature(cls.__init__).parameters
        for option, pattern in (("top_n_grams", "top_{}_gram"), ("dup_n_grams", "duplicated_{}_n_grams")):
            for n, limit in params.get(option, defaults[option].default):
                out[f"{cls.name}.{pattern.format(int(n))}"] = [float(limit)]
        return out

    def __init__(
        self,
        dup_line_frac: float | None = 0.3,
        dup_para_frac: float | None = 0.3,
        dup_line_char_frac: float | None = 0.2,
        dup_para_char_frac: float | None = 0.2,
        top_n_grams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16)),
        dup_n_grams: tuple[tuple[int, float], ...] = (
            (5, 0.15),
            (6, 0.14),
            (7, 0.13),
            (8, 0.12),
            (9, 0.11),
            (10, 0.10),
        ),
        words: Splitter | None = None,
    ) -> None:
        self.dup_line_frac = dup_line_frac
        self.dup_para_frac = dup_para_frac
        self.dup_line_char_frac = dup_line_char_frac
        self.dup_para_char_frac = dup_para_char_frac
        self.top_n_grams = tuple((int(n), float(f)) for n, f in top_n_grams)
        self.dup_n_grams = tuple((int(n), float(f)) for n, f in dup_n_grams)
        self.splitter = words or splitter()

    def filter(self, doc: Document) -> FilterResult:
        text = doc.text
        if not text:
            return False, "empty"
        n_chars = len(text)

        paragraphs = _PARAGRAPHS.split(text.strip())
        dup_paras, dup_para_chars = find_duplicates(paragraphs)
        for key, value, limit in (
            ("dup_para_frac", dup_paras / len(paragraphs), self.dup_para_frac),
            ("dup_para_char_frac", dup_para_chars / n_chars, self.dup_para_char_frac),
        ):
            self.signal(doc, key, value)
            if limit and value > limit:
                return False, key

        lines = _LINES.split(text)
        dup_lines, dup_line_chars = find_duplicates(lines)
        for key, value, limit in (
            ("dup_line_frac", dup_lines / len(lines), self.dup_line_frac),
            ("dup_line_char_frac", dup_line_chars / n_chars, self.dup_line_char_frac),
        ):
            self.signal(doc, key, value)
            if limit and value > limit:
                return False, key

        grams = NGrams(self.splitter.words(text))
        for n, limit in self.top_n_grams:
            if grams.n_words < n:
                continue
            value = grams.top_chars(n) / n_chars
            self.signal(doc, f"top_{n}_gram", value)
            if value > limit:
                return False, f"top_{n}_gram"
        for n, limit in self.dup_n_grams:
            value = grams.duplicated_chars(n) / n_chars
            self.signal(doc, f"duplicated_{n}_n_grams", value)
            if value > limit:
                return False, f"duplicated_{n}_n_grams"
        return KEEP


class GopherQualityFilter(Filter):
    """Gopher's quality heuristics: document length, word length, symbols, bullets, ellipses, alphabetic words
    and stop words. Reasons are datatrove's (``gopher_short_doc``, ``gopher_below_alpha_threshold``, ...)."""

    name = "gopher_quality"
    THRESHOLDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "words": ("min_doc_words", "max_doc_words"),
        "avg_word_length": ("min_avg_word_length", "max_avg_word_length"),
        "hash_word_ratio": ("max_symbol_word_ratio",),
        "ellipsis_word_ratio": ("max_symbol_word_ratio",),
        "bullet_lines_ratio": ("max_bullet_lines_ratio",),
        "end_ellipsis_lines_ratio": ("max_ellipsis_lines_ratio",),
        "alpha_words_ratio": ("min_alpha_words_ratio",),
        "stop_words": ("min_stop_words",),
    }

    def __init__(
        self,
        min_doc_words: int | None = 50,
        max_doc_words: int | None = 100_000,
        min_avg_word_length: float | None = 3,
        max_avg_word_length: float | None = 10,
        max_symbol_word_ratio: float | None = 0.1,
        max_bullet_lines_ratio: float | None = 0.9,
        max_ellipsis_lines_ratio: float | None = 0.3,
        min_alpha_words_ratio: float | None = 0.8,
        min_stop_words: int | None = 2,
        stop_words: tuple[str, ...] = STOP_WORDS,
        count_distinct_stop_words: bool = True,
        words: Splitter | None = None,
    ) -> None:
        """`min_alpha_words_ratio` is datatrove's `max_non_alpha_words_ratio` (a minimum despite that name).
        `count_distinct_stop_words`: datatrove counts distinct stop words since 2025; FineWeb (2024) counted
        occurrences."""
        self.min_doc_words = min_doc_words
        self.max_doc_words = max_doc_words
        self.min_avg_word_length = min_avg_word_length
        self.max_avg_word_length = max_avg_word_length
        self.max_symbol_word_ratio = max_symbol_word_ratio
        self.max_bullet_lines_ratio = max_bullet_lines_ratio
        self.max_ellipsis_lines_ratio = max_ellipsis_lines_ratio
        self.min_alpha_words_ratio = min_alpha_words_ratio
        self.min_stop_words = min_stop_words
        self.stop_words = frozenset(stop_words)
        self.count_distinct_stop_words = count_distinct_stop_words
        self.splitter = words or splitter()

    def filter(self, doc: Document) -> FilterResult:
        text = doc.text or ""
        words = self.splitter.words(text)
        n_words = len(words)
        # Per distinct token (a few hundred per page) rather than per token: the same sums, much less Python.
        counts = Counter(words)
        n_non_symbol = total_length = n_alpha = 0
        for word, count in counts.items():
            is_word, has_alpha = _token_kind(word)
            if is_word:
                n_non_symbol += count
                total_length += len(word) * count
            if has_alpha:
                n_alpha += count
        self.signal(doc, "words", n_non_symbol)
        if self.min_doc_words and n_non_symbol < self.min_doc_words:
            return False, "gopher_short_doc"
        if self.max_doc_words and n_non_symbol > self.max_doc_words:
            return False, "gopher_long_doc"

        avg_word_length = total_length / n_non_symbol
        self.signal(doc, "avg_word_length", avg_word_length)
        if self.min_avg_word_length and avg_word_length < self.min_avg_word_length:
            return False, "gopher_below_avg_threshold"
        if self.max_avg_word_length and avg_word_length > self.max_avg_word_length:
            return False, "gopher_above_avg_threshold"

        hash_ratio = text.count("#") / n_words
        ellipsis_ratio = (text.count("...") + text.count("…")) / n_words
        self.signal(doc, "hash_word_ratio", hash_ratio)
        self.signal(doc, "ellipsis_word_ratio", ellipsis_ratio)
        if self.max_symbol_word_ratio and hash_ratio > self.max_symbol_word_ratio:
            return False, "gopher_too_many_hashes"
        if self.max_symbol_word_ratio and ellipsis_ratio > self.max_symbol_word_ratio:
            return False, "gopher_too_many_ellipsis"

        lines = text.splitlines()
        bullet_ratio = sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines)
        end_ellipsis_ratio = sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines)
        self.signal(doc, "bullet_lines_ratio", bullet_ratio)
        self.signal(doc, "end_ellipsis_lines_ratio", end_ellipsis_ratio)
        if self.max_bullet_lines_ratio and bullet_ratio > self.max_bullet_lines_ratio:
            return False, "gopher_too_many_bullets"
        if self.max_ellipsis_lines_ratio and end_ellipsis_ratio > self.max_ellipsis_lines_ratio:
            return False, "gopher_too_many_end_ellipsis"

        alpha_ratio = n_alpha / n_words
        self.signal(doc, "alpha_words_ratio", alpha_ratio)
        if self.min_alpha_words_ratio and alpha_ratio < self.min_alpha_words_ratio:
            return False, "gopher_below_alpha_threshold"

        if self.count_distinct_stop_words:
            stop_words = sum(1 for w in self.stop_words if w in counts)
        else:
            stop_words = sum(counts[w] for w in self.stop_words)
        self.signal(doc, "stop_words", stop_words)
        if self.min_stop_words and stop_words < self.min_stop_words:
            return False, "gopher_enough_stop_words"
        return KEEP
