"""Spark helpers shared by the stages."""

from __future__ import annotations

import re

from pyspark.sql import DataFrame, SparkSession

from corpus import storage

_PARTITION_DIR = re.compile(r"=(\d+)$")


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


def write_sharded(
    df: DataFrame, shard_col: str, order_col: str, tmp: str, output: str, folder: str, prefix: str, replace: bool = True
) -> list[str]:
    """Write `df` as one Parquet file per value of `shard_col` (rows ordered by `order_col`), then move them to
    `output/folder/<prefix>-<shard:05d>.parquet`. Files of `folder` with that prefix are replaced; other files
    stay (`replace=False` keeps the folder, e.g. removed/ shared by two stages)."""
    staging = storage.join(tmp, f"{folder}-{prefix}")
    (
        df.repartition(shard_col)
        .sortWithinPartitions(shard_col, order_col)
        .drop(order_col)
        .write.mode("overwrite")
        .partitionBy(shard_col)
        .parquet(staging)
    )
    target = storage.join(output, folder)
    if replace:
        storage.remove(target)
    else:
        for old in storage.list_files(target, ".parquet"):
            if old.rsplit("/", 1)[-1].startswith(f"{prefix}-"):
                storage.remove(old)
    storage.makedirs(target)
    written = []
    for directory in storage.list_dirs(staging):
        m = _PARTITION_DIR.search(directory.rstrip("/"))
        if m is None:
            continue
        files = storage.list_files(directory, ".parquet")
        if len(files) != 1:
            raise RuntimeError(f"expected one file in {directory}, found {len(files)}")
        dst = storage.join(target, f"{prefix}-{int(m.group(1)):05d}.parquet")
        storage.move(files[0], dst)
        written.append(dst)
    storage.remove(staging)
    return sorted(written)
