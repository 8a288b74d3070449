"""Spark helpers shared by the stages."""

from __future__ import annotations

from pyspark.sql import SparkSession

from corpus import storage


def describe_outputs(
    spark: SparkSession, outputs: dict[str, list[str]], root: str
) -> dict[str, list[storage.ShardInfo]]:
    """Rows, size and sha256 of every output file, computed in Spark tasks (shards can be large and many)."""
    urls = [url for paths in outputs.values() for url in paths]
    if not urls:
        return {folder: [] for folder in outputs}
    root = storage.absolute(root)
    slices = min(len(urls), max(1, spark.sparkContext.defaultParallelism * 4))
    infos = spark.sparkContext.parallelize(urls, slices).map(lambda url: storage.describe_file(url, root)).collect()
    by_path = {info.path: info for info in infos}
    return {
        folder: [by_path[storage.describe_relative(url, root)] for url in paths] for folder, paths in outputs.items()
    }
