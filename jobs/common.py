"""Spark helpers shared by the stages."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.io import storage

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


def log(message: str) -> None:
    print(f"corpus: {message}", file=sys.stderr, flush=True)


def write_json(url: str, data: Any) -> str:
    """Write a statistics file (indented JSON), atomically; return its URL."""
    storage.write_text(url, json.dumps(data, indent=2) + "\n")
    return url


def finish_stage(
    spark: SparkSession,
    run: Run,
    output: str,
    stage: str,
    started: str,
    written: dict[str, list[str]],
    statistics: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    """The end of every stage: its `statistics` to stats/<stage>.json (when it has any), then rows, size and
    sha256 of everything it wrote into its manifest entry (with `extra` fields), and the manifest written."""
    if statistics is not None:
        written = {**written, "stats": [write_json(storage.join(output, "stats", f"{stage}.json"), statistics)]}
    manifest.record_stage(run, output, stage, started, describe_outputs(spark, written, output), **extra)


def read_shards(spark: SparkSession, files: list[str], stage: str) -> tuple[DataFrame, list[str]]:
    """Parquet shards (any with `id` and `text`) with each row's place: `_shard` (the file's index in `files`)
    and `_row` (its row in that file). Returns the frame and the input's own columns."""
    raw = spark.read.parquet(*files)
    if missing := {"id", "text"} - set(raw.columns):
        raise ValueError(f"{stage} input needs columns id and text; {', '.join(sorted(missing))} missing in {files[0]}")
    shard_of = F.broadcast(
        spark.createDataFrame([(storage.spark_path(f), i) for i, f in enumerate(files)], "_file string, _shard int")
    )
    base = (
        raw.withColumn("_file", F.col("_metadata.file_path"))
        .withColumn("_row", F.col("_metadata.row_index"))
        .join(shard_of, "_file")
        .drop("_file")
    )
    return base, raw.columns


def signal(df: DataFrame, key: str, column: str = "signals") -> Column:
    """One signal of each row (null where the row lacks it), from a `signals` column that is a list of
    (key, value) structs (corpus.schema.SIGNALS_TYPE) or, in outputs written before, a map."""
    if isinstance(df.schema[column].dataType, MapType):
        return F.col(column)[key]
    return F.map_from_entries(F.col(column))[key]


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


def running_total(df: DataFrame, order: list[Column], value: Column | None = None, name: str = "_before") -> DataFrame:
    """Add column `name`: the sum of `value` over all rows before this one in the total order `order` (with
    value 1, a dense rank from 0). Computed as zipWithIndex does, without leaving the JVM: range-partition by
    the order, total each partition (one small row per partition to the driver), then offsets plus running
    sums within partitions. `order` must be a total order (end it with unique columns)."""
    value = F.lit(1).cast("long") if value is None else value.cast("long")
    ordered = df.withColumn("_value", value).repartitionByRange(*order).withColumn("_pid", F.spark_partition_id())
    ordered = ordered.localCheckpoint()  # partition ids must not change between the two passes below
    totals = sorted(ordered.groupBy("_pid").agg(F.sum("_value")).collect())
    offsets, running = [], 0
    for pid, total in totals:
        offsets.append((pid, running))
        running += total or 0
    offsets_df = F.broadcast(df.sparkSession.createDataFrame(offsets, "_pid int, _offset long"))
    within = Window.partitionBy("_pid").orderBy(*order).rowsBetween(Window.unboundedPreceding, -1)
    return (
        ordered.withColumn("_within", F.coalesce(F.sum("_value").over(within), F.lit(0).cast("long")))
        .join(offsets_df, "_pid")
        .withColumn(name, F.col("_offset") + F.col("_within"))
        .drop("_pid", "_value", "_within", "_offset")
    )
