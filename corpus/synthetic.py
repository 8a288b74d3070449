"""Synthetic corpora with known duplicates, for the dedup tests and benchmarks.

Words are random lowercase strings drawn from a Zipf(1.1) vocabulary (so common words repeat as in real text,
and two unrelated documents share almost no 5-gram); a near duplicate is a copy with a fraction of its words
replaced. `jaccard` gives the exact 5-gram Jaccard similarity of two texts, as MinHash sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticCorpus:
    vocabulary: list[str]
    probabilities: np.ndarray
    rng: np.random.Generator

    @classmethod
    def create(cls, seed: int = 0, vocabulary_size: int = 20_000) -> SyntheticCorpus:
        rng = np.random.default_rng(seed)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        words = {"".join(rng.choice(letters, rng.integers(2, 11))) for _ in range(vocabulary_size * 2)}
        vocabulary = sorted(words)[:vocabulary_size]
        rng.shuffle(vocabulary)
        weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.1
        return cls(vocabulary, weights / weights.sum(), rng)

    def words(self, n: int) -> list[str]:
        return [self.vocabulary[i] for i in self.rng.choice(len(self.vocabulary), n, p=self.probabilities)]

    def document(self, min_words: int = 200, max_words: int = 800) -> str:
        return " ".join(self.words(int(self.rng.integers(min_words, max_words + 1)))) + "."

    def variant(self, text: str, substitution_rate: float) -> str:
        """`text` with about `substitution_rate` of its words replaced by random vocabulary words."""
        words = text.rstrip(".").split(" ")
        positions = np.flatnonzero(self.rng.random(len(words)) < substitution_rate)
        for pos, word in zip(positions, self.words(len(positions))):
            words[pos] = word
        return " ".join(words) + "."

    def documents(self, n: int) -> Iterator[str]:
        for _ in range(n):
            yield self.document()


def shingle_set(text: str, n: int = 5) -> set[tuple[str, ...]]:
    from corpus.minhash import simplified_chunks
    from corpus.text import splitter

    words = splitter().words(" ".join(simplified_chunks(text)))
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = shingle_set(a, n), shingle_set(b, n)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def detection_probability(similarity: float, bands: int = 14, rows: int = 8) -> float:
    """The chance that LSH with `bands` bands of `rows` hashes makes two documents of this Jaccard similarity
    candidates: 1 - (1 - s^rows)^bands (0.924 at s = 0.8 for FineWeb's 14 x 8)."""
    return 1 - (1 - similarity**rows) ** bands
