"""Connected components on Spark agree exactly with an in-memory union-find, including on long chains."""

from __future__ import annotations

import itertools
import random

import pytest

from corpus.jobs.components import connected_components

pytestmark = pytest.mark.spark


def union_find_roots(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the smallest node is the root
    return {x: find(x) for x in parent}


def run(spark, edges: list[tuple[int, int]]):
    df = spark.createDataFrame(edges, "src long, dst long")
    result, rounds = connected_components(df, checkpoint=False)
    return {r.node: r.root for r in result.collect()}, rounds


def graph(seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    ids = rng.sample(range(10**12), 20000)  # random, sparse node ids
    edges = []
    pos = 0
    while pos < 15000:  # random trees of 2..60 nodes
        size = rng.randint(2, 60)
        nodes = ids[pos : pos + size]
        edges += [(nodes[i], nodes[rng.randrange(i)]) for i in range(1, len(nodes))]
        pos += size
    for start in (15000, 17000):  # two chains of 1000 nodes in random id order
        chain = ids[start : start + 1000]
        edges += list(itertools.pairwise(chain))
    edges += [(b, a) for a, b in edges[:50]]  # duplicates in both directions
    rng.shuffle(edges)
    return edges


@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_union_find(spark, seed):
    edges = graph(seed)
    got, rounds = run(spark, edges)
    assert got == union_find_roots(edges)
    assert rounds <= 12  # logarithmic: label propagation would need ~1000 rounds for the chains


def test_worst_case_chain_in_order(spark):
    chain = [(i, i + 1) for i in range(4096)]  # ids increasing along the chain
    got, rounds = run(spark, chain)
    assert set(got.values()) == {0} and len(got) == 4097
    assert rounds <= 16


def test_star_and_isolated_pairs(spark):
    edges = [(0, i) for i in range(1, 50)] + [(100, 101), (103, 102)]
    got, _ = run(spark, edges)
    assert got == union_find_roots(edges)
