"""Spark helpers shared by the stages."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.io import storage
from corpus.io.shards import ShardOutput, aborting, discard, nullable


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


def discard_staging(stage: str, *folders: str) -> None:
    """Remove a stage's staging folders once its files are published; one that cannot be removed (a late attempt
    may still write into it) is logged, not raised (`corpus.io.shards.discard`)."""
    for folder in folders:
        if problem := discard(folder):
            log(f"{stage}: {problem}")


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


# -- rewriting input shards by an outcome, where their text lives (dedup's apply, classify) ---------------------

#: Rows read at a time from an input shard.
APPLY_BATCH_ROWS = 2048

#: How a stage splits one batch of an input shard by the batch's outcome rows: the kept rows' columns and the
#: removed rows' columns, by name (the columns of `with_columns(shard schema, kept/removed fields)`).
Split = Callable[[pa.RecordBatch, pa.Table], tuple[dict[str, pa.Array], dict[str, pa.Array]]]


def write_outcome(outcome: DataFrame, path: str) -> None:
    """`outcome` (`_shard`, `_row` and a few narrow columns per document, never the text) as one folder per input
    shard (`_shard=<i>`), sorted by row: what `split_shard` reads beside the shard."""
    outcome.repartition("_shard").sortWithinPartitions("_shard", "_row").write.partitionBy("_shard").parquet(path)


def read_outcome(folder: str, rows: int) -> pa.Table:
    """One input shard's outcome, one entry per row of the shard in row order (`_row` 0..rows-1)."""
    tables = []
    for path in storage.list_files(folder, ".parquet"):
        fs, local = storage.filesystem(path)
        with fs.open(local, "rb") as fh:
            tables.append(pq.read_table(fh))
    if not tables:
        table = pa.table({"_row": pa.array([], pa.int64())})
    else:
        table = pa.concat_tables(tables)
        table = table.take(pc.sort_indices(table, [("_row", "ascending")]))
    got = table.column("_row").to_numpy()
    if len(got) != rows or (rows and not (got == np.arange(rows)).all()):
        raise RuntimeError(
            f"outcome of {folder} has {len(got)} rows for a shard of {rows} (does the shard's path match the one "
            "Spark read, `_metadata.file_path`?)"
        )
    return table


def with_columns(schema: pa.Schema, fields: list[pa.Field]) -> pa.Schema:
    """`schema` with `fields` set as Spark's withColumn sets them: in place when the input has the column (e.g.
    `removed_by` and `reason` in filtered/), else at the end."""
    for field in fields:
        i = schema.get_field_index(field.name)
        schema = schema.set(i, field) if i >= 0 else schema.append(field)
    return schema


def split_shard(
    source: str,
    outcome_folder: str,
    paths: tuple[str, str],
    fields: tuple[list[pa.Field], list[pa.Field]],
    split: Split,
    compression: str,
) -> tuple[str | None, str | None]:
    """Split one input shard by its outcome, streaming: `split` gives each batch's kept and removed rows, written
    to `paths` (kept, removed) with the shard's columns and `fields` (kept's, removed's), both in input order.
    Returns the files written (None for one that got no rows)."""
    fs, local = storage.filesystem(source)
    with fs.open(local, "rb") as fh:
        shard = pq.ParquetFile(fh)
        # every field nullable (as Spark reads the shard back), no stale Spark schema in the footer
        schema = nullable(shard.schema_arrow)
        outcome = read_outcome(outcome_folder, shard.metadata.num_rows)
        schemas = [with_columns(schema, extra) for extra in fields]
        outputs = [ShardOutput(path, out_schema, compression) for path, out_schema in zip(paths, schemas)]
        with aborting(outputs):
            start = 0
            for batch in shard.iter_batches(batch_size=APPLY_BATCH_ROWS, use_threads=False):
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                part = outcome.slice(start, batch.num_rows)
                start += batch.num_rows
                for output, out_schema, columns in zip(outputs, schemas, split(batch, part)):
                    if columns.keys() != set(out_schema.names):  # from_pydict would drop a misnamed column
                        raise RuntimeError(f"split gave columns {sorted(columns)} for {out_schema.names}")
                    output.write(pa.RecordBatch.from_pydict(columns, out_schema))
            kept, removed = (output.close() for output in outputs)
    return kept, removed


def apply_per_shard(
    spark: SparkSession,
    files: list[str],
    outcome_path: str,
    staging: str,
    fields: tuple[list[pa.Field], list[pa.Field]],
    splitter: Callable[[], Split],
    compression: str,
) -> list[tuple[int, str | None, str | None]]:
    """One task per input shard splits it by its outcome (`split_shard`, nothing of the text is shuffled), into
    files named by the task's attempt in `staging`; `splitter()` makes the task's `Split` (its models or maskers,
    once per task). Returns (shard, kept file, removed file) for the attempts Spark kept, by shard."""

    def apply(shards: Iterator[int]) -> Iterator[tuple[int, str | None, str | None]]:
        from pyspark import TaskContext

        split = splitter()
        context = TaskContext.get()
        attempt = context.taskAttemptId() if context else 0
        for shard in shards:
            paths = tuple(
                storage.join(staging, f"{name}-{shard:05d}-attempt-{attempt}.parquet") for name in ("kept", "removed")
            )
            outcome = storage.join(outcome_path, f"_shard={shard}")
            yield (shard, *split_shard(files[shard], outcome, paths, fields, split, compression))

    shards = list(range(len(files)))
    return sorted(spark.sparkContext.parallelize(shards, max(1, len(shards))).mapPartitions(apply).collect())


def publish_per_shard(
    results: list[tuple[int, str | None, str | None]], output: str, kept_folder: str, removed_prefix: str
) -> dict[str, list[str]]:
    """Move `apply_per_shard`'s files to `<kept_folder>/part-<shard>.parquet` (the folder's old files go) and
    `removed/<removed_prefix>-<shard>.parquet` (removed/ is shared by stages: only that prefix's old files go)."""
    written: dict[str, list[str]] = {kept_folder: [], "removed": []}
    kept_dir, removed_dir = storage.join(output, kept_folder), storage.join(output, "removed")
    storage.remove(kept_dir)
    for old in storage.list_files(removed_dir, ".parquet"):
        if old.rsplit("/", 1)[-1].startswith(f"{removed_prefix}-"):
            storage.remove(old)
    storage.makedirs(kept_dir)
    storage.makedirs(removed_dir)
    for shard, kept_file, removed_file in results:
        if kept_file:
            written[kept_folder].append(storage.join(kept_dir, f"part-{shard:05d}.parquet"))
            storage.move(kept_file, written[kept_folder][-1])
        if removed_file:
            written["removed"].append(storage.join(removed_dir, f"{removed_prefix}-{shard:05d}.parquet"))
            storage.move(removed_file, written["removed"][-1])
    return written
