"""Connected components of a large graph with Spark DataFrames: the alternating large-star / small-star algorithm
(Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014).

Every node ends up pointing at the smallest node of its component, in O(log^2 n) rounds at worst and a handful
in practice (a chain of a million nodes needs about 25): unlike label propagation, rounds do not grow with a
component's diameter. Nothing is collected to the driver; each round's edges are checkpointed so the lineage
(and the plan) stays small.

Edges are oriented from the larger to the smaller node, (u, v) with u > v:

- large-star: for each node u with neighbourhood N(u), m = min(N(u) + {u}); every neighbour v > u is linked to m;
- small-star: for each u with smaller neighbours S(u), m = min(S(u)); every s in S(u) other than m, and u
  itself, is linked to m.

A round that changes nothing means the graph is a forest of stars (every node linked to its component's
minimum): the loop stops when the edge set's fingerprint (count and two hash sums) repeats.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def _orient(df: DataFrame, a: str, b: str) -> DataFrame:
    return df.select(F.greatest(a, b).alias("u"), F.least(a, b).alias("v")).where(F.col("u") != F.col("v"))


def large_star(edges: DataFrame) -> DataFrame:
    both = edges.unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    smallest = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    linked = both.join(smallest, "u").where(F.col("v") > F.col("u"))
    return linked.select(F.col("v").alias("u"), F.col("m").alias("v"))  # duplicates go in small_star's distinct


def small_star(edges: DataFrame) -> DataFrame:
    smallest = edges.groupBy("u").agg(F.min("v").alias("m"))
    neighbours = edges.join(smallest, "u").select(F.col("v").alias("a"), F.col("m").alias("b"))
    selves = smallest.select(F.col("u").alias("a"), F.col("m").alias("b"))
    return _orient(neighbours.unionByName(selves), "a", "b").distinct()


def fingerprint(edges: DataFrame) -> tuple:
    """Count and two hash sums of the edge set: equal sets, equal fingerprints (and unequal sets practically
    never collide). Hashes are reduced before summing: Spark's ANSI mode fails on long overflow."""
    row = edges.agg(
        F.count(F.lit(1)),
        F.sum(F.pmod(F.xxhash64("u", "v"), F.lit(2_147_483_629))),
        F.sum(F.pmod(F.hash("v", "u"), F.lit(2_147_483_587))),
    ).first()
    return tuple(row)


def connected_components(edges: DataFrame, max_iterations: int = 40, checkpoint: bool = True) -> tuple[DataFrame, int]:
    """`edges` (src, dst) of int64 nodes -> (DataFrame(node, root), rounds) for every node that has an edge;
    `root` is the smallest node of the node's component (nodes without edges are their own components).
    `checkpoint=True` uses reliable checkpoints (SparkContext.setCheckpointDir must be set), which survive
    the loss of an executor; False keeps them on the executors (fine for local mode and tests)."""

    def materialize(df: DataFrame) -> DataFrame:
        return df.checkpoint() if checkpoint else df.localCheckpoint()

    current = materialize(_orient(edges, "src", "dst").distinct())
    previous = fingerprint(current)
    rounds = 0
    while True:
        if rounds >= max_iterations:
            raise RuntimeError(
                f"connected components did not converge in {max_iterations} rounds (dedup.max_iterations)"
            )
        current = materialize(small_star(large_star(current)))
        rounds += 1
        now = fingerprint(current)
        if now == previous:
            break
        previous = now
    roots = current.select(F.col("v").alias("node"), F.col("v").alias("root")).distinct()
    return current.select(F.col("u").alias("node"), F.col("v").alias("root")).unionByName(roots), rounds
