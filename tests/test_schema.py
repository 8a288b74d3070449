"""Helpers of the document schema: `signals` entries appended in Arrow (`concat_signals`)."""

from __future__ import annotations

import random

import pyarrow as pa

from corpus.schema import SIGNALS_TYPE, concat_signals

MAP_TYPE = pa.map_(pa.string(), pa.float64())  # signals as outputs written before they were a list hold them


def naive(first: pa.Array | None, second: pa.Array) -> list:
    """Spark's concat(coalesce(first, []), second), row by row in Python."""
    own = first.cast(SIGNALS_TYPE).to_pylist() if first is not None else [None] * len(second)
    return [None if extra is None else (mine or []) + extra for mine, extra in zip(own, second.to_pylist())]


def test_the_classifiers_signals_follow_a_rows_own_in_lists_and_maps():
    score = [{"key": "natural.score", "value": 0.25}]
    added = pa.array([score, score, score], SIGNALS_TYPE)
    own = [{"key": "a", "value": 1.0}, {"key": "a", "value": 2.0}]  # duplicates stay, as Spark's concat keeps them
    assert concat_signals(pa.array([own, None, []], SIGNALS_TYPE), added).to_pylist() == [own + score, score, score]
    as_map = pa.array([[("a", 1.0)], None, []], MAP_TYPE)
    assert concat_signals(as_map, added).to_pylist() == [[{"key": "a", "value": 1.0}, *score], score, score]
    assert concat_signals(None, added).to_pylist() == [score, score, score]
    assert concat_signals(pa.array([own], SIGNALS_TYPE), pa.array([None], SIGNALS_TYPE)).to_pylist() == [None]


def test_concat_signals_is_the_naive_concatenation_on_random_columns():
    rng = random.Random(7)

    def column(n: int) -> list:
        return [
            None
            if rng.random() < 0.1
            else [{"key": rng.choice("abcd"), "value": rng.random()} for _ in range(rng.randint(0, 4))]
            for _ in range(n)
        ]

    for _ in range(300):
        n = rng.randint(0, 12)
        first, second = pa.array(column(n), SIGNALS_TYPE), pa.array(column(n), SIGNALS_TYPE)
        if rng.random() < 0.3:
            rows = first.to_pylist()
            first = pa.array([None if r is None else [(e["key"], e["value"]) for e in r] for r in rows], MAP_TYPE)
        if n > 2 and rng.random() < 0.3:  # slices of a batch, as filters give
            first, second = first.slice(1, n - 2), second.slice(1, n - 2)
        if rng.random() < 0.15:
            first = None
        assert concat_signals(first, second).to_pylist() == naive(first, second)
