"""Tokenize stage: documents -> token ids in Parquet, the training-ready output.

    corpus tokenize input=PARQUET... output=OUT       # any Parquet with `id` and `text`
    spark-submit jobs/tokens.py --config CONF input=... output=...

1. Order: the input's order (shard, row), or with `tokenize.shuffle` a seeded permutation of the whole dataset
   (documents sorted by xxhash64(seed, id)). Same input and seed, same order, whatever the partitioning.
2. Tokens, in Python workers (`mapInArrow`, one tokenizer per worker): each document's ids plus the
   end-of-document token, written by the worker itself to a staging Parquet file (pyarrow, uint32). Spark
   only sees one small row per document (its key, token count and place in the staging file), so the
   tokens never pass through the JVM. With `shuffle`, the staging rows are then range-partitioned by the
   permutation in Spark (a shuffle cannot avoid moving the data).
3. Shards: a running total of token counts over the order cuts shards of about `tokenize.shard_tokens` tokens,
   never splitting a document. The driver gets, per shard, which rows of which staging files it holds.
4. Write: one task per shard reads its rows from the staging files and writes them with pyarrow: list<uint32>
   tokens (Spark has no unsigned integers), zstd, row groups of about `tokenize.row_group_tokens` tokens, under
   a name unique to the task attempt. The driver publishes only the files the successful attempts returned,
   so retried or speculative attempts leave no duplicates and a rerun rewrites the same shards. A task holds
   one shard in memory: about 5 bytes per token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict
from corpus.io import storage
from corpus.jobs.common import finish_stage, read_shards, running_total
from corpus.schema import TOKENIZED_SCHEMA
from corpus.tokenizer import load_tokenizer

KEY = ("_order", "_tiebreak", "id")
STAGING_SCHEMA = pa.schema([pa.field("_order", pa.int64()), pa.field("_tiebreak", pa.string()), *TOKENIZED_SCHEMA])
#: What Spark sees of a tokenized document: its key, size and place in a staging file.
PLACES = pa.schema(
    [
        *(STAGING_SCHEMA.field(name).with_nullable(True) for name in ("_order", "_tiebreak", "id", "token_count")),
        pa.field("language", pa.string()),
        pa.field("_file", pa.string()),  # the staging file
        pa.field("_file_row", pa.int64()),  # the row in it
    ]
)


def tokenize_function(
    config_dict: dict, staging: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Tokenize a partition into one staging file named for this task attempt; yield each document's place."""

    def tokenize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        settings = config_from_dict(config_dict).tokenize
        tokenizer = load_tokenizer(settings.tokenizer, settings.eos)
        context = TaskContext.get()
        name = f"tokens-{context.partitionId() if context else 0:05d}-{context.taskAttemptId() if context else 0}"
        path = storage.join(staging, f"{name}.parquet")
        fs, local = storage.filesystem(path)
        fs.makedirs(local.rsplit("/", 1)[0], exist_ok=True)
        writer = None
        written = 0
        for batch in batches:
            ids = tokenizer.encode_batch([t or "" for t in batch.column("text").to_pylist()])
            for doc in ids:
                doc.append(tokenizer.eos_id)
            counts = pa.array([len(doc) for doc in ids], pa.int64())
            tokens = pa.array(ids, pa.list_(pa.uint32()))
            rows = pa.RecordBatch.from_arrays(
                [batch.column("_order"), batch.column("_tiebreak"), batch.column("id"), tokens, counts,
                 batch.column("url"), batch.column("language")],
                schema=STAGING_SCHEMA,
            )  # fmt: skip
            if writer is None:
                writer = pq.ParquetWriter(fs.open(local, "wb"), STAGING_SCHEMA, compression="none")  # read once, soon
            writer.write_batch(rows)
            yield pa.RecordBatch.from_arrays(
                [batch.column("_order"), batch.column("_tiebreak"), batch.column("id"), counts,
                 batch.column("language"), pa.array([path] * rows.num_rows, pa.string()),
                 pa.array(np.arange(written, written + rows.num_rows, dtype=np.int64))],
                schema=PLACES,
            )  # fmt: skip
            written += rows.num_rows
        if writer is not None:
            writer.close()

    return tokenize


class ShardWriter:
    """Writes one shard's rows to Parquet, cutting row groups at document boundaries every ~`row_group_tokens`."""

    def __init__(self, path: str, row_group_tokens: int) -> None:
        import pyarrow.parquet as pq

        fs, local = storage.filesystem(path)
        fs.makedirs(local.rsplit("/", 1)[0], exist_ok=True)
        self.path = path
        self.writer = pq.ParquetWriter(fs.open(local, "wb"), TOKENIZED_SCHEMA, compression="zstd")
        self.row_group_tokens = row_group_tokens
        self.pending: list[pa.RecordBatch] = []
        self.pending_tokens = 0
        self.rows = self.tokens = 0

    def write(self, batch: pa.RecordBatch) -> None:
        counts = batch.column("token_count").to_numpy()
        self.rows += batch.num_rows
        self.tokens += int(counts.sum())
        start = 0
        while start < batch.num_rows:
            # the row at which the pending row group reaches its size, if it does in this batch
            reach = np.searchsorted(np.cumsum(counts[start:]), self.row_group_tokens - self.pending_tokens)
            end = min(batch.num_rows, start + int(reach) + 1)
            self.pending.append(batch.slice(start, end - start))
            self.pending_tokens += int(counts[start:end].sum())
            if self.pending_tokens >= self.row_group_tokens:
                self.flush()
            start = end

    def flush(self) -> None:
        if self.pending:
            table = pa.Table.from_batches(self.pending)
            self.writer.write_table(table, row_group_size=table.num_rows)  # exactly one row group
            self.pending, self.pending_tokens = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _read_rows(path: str, first: int, last: int) -> pa.Table:
    """Rows first..last (inclusive) of a Parquet file, reading only the row groups that hold them."""
    import pyarrow.parquet as pq

    fs, local = storage.filesystem(path)
    with fs.open(local, "rb") as fh:
        parquet = pq.ParquetFile(fh)
        groups, start, offset = [], None, 0
        for i in range(parquet.num_row_groups):
            size = parquet.metadata.row_group(i).num_rows
            if offset + size > first and offset <= last:
                groups.append(i)
                start = offset if start is None else start
            offset += size
        table = parquet.read_row_groups(groups)
    return table.slice(first - start, last - first + 1)


def write_shard(
    pieces: list[tuple[str, int, int]], first: tuple, last: tuple, target: str, row_group_tokens: int
) -> tuple:
    """Gather a shard's rows (row ranges of staging files), keep the keys first..last in order, write them."""
    import pyarrow.compute as pc

    rows = pa.concat_tables([_read_rows(path, lo, hi) for path, lo, hi in pieces])
    rows = rows.sort_by([(k, "ascending") for k in KEY])
    # A staging file may hold rows of a neighbouring shard inside a piece's row range; the key range is exact.
    keys = zip(*(rows.column(k).to_pylist() for k in KEY))
    inside = pa.array([first <= key <= last for key in keys], pa.bool_())
    if not pc.all(inside).as_py():
        rows = rows.filter(inside)
    out = pa.Table.from_arrays([rows.column(f.name).cast(f.type) for f in TOKENIZED_SCHEMA], schema=TOKENIZED_SCHEMA)
    writer = ShardWriter(target, row_group_tokens)
    for batch in out.to_batches(max_chunksize=4096):
        writer.write(batch)
    writer.close()
    return writer.path, writer.rows, writer.tokens


def _shuffled_staging(spark: SparkSession, places: DataFrame, permuted: str) -> DataFrame:
    """With `shuffle`: move the staged documents into files range-partitioned by the permutation (Spark reads
    the staging files, shuffles, writes), and return their places in the new files."""
    staged = spark.read.parquet(*sorted(r[0] for r in places.select("_file").distinct().collect()))
    staged.repartitionByRange(*KEY).sortWithinPartitions(*KEY).write.parquet(permuted)
    return spark.read.parquet(permuted).select(
        *KEY,
        "token_count",
        "language",
        F.regexp_replace(F.col("_metadata.file_path"), "^file:", "").alias("_file"),  # Spark names local files file:
        F.col("_metadata.row_index").alias("_file_row"),
    )


def run_tokenize(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    started = manifest.now()
    output = storage.absolute(output)
    tmp = storage.join(output, "_tmp", f"tokenize-{run.run_id}")
    settings = config.tokenize
    tokenizer = load_tokenizer(settings.tokenizer, settings.eos)  # fail early, on the driver, on a bad name
    files = sorted(inputs)
    base, columns = read_shards(spark, files, "tokenize")
    if settings.shuffle:
        order, tiebreak = F.xxhash64(F.lit(settings.seed), F.col("id")), F.col("id")
    else:  # the input's own order: shard, then row (fits in one long: 2**24 shards of 2**39 rows)
        order, tiebreak = F.col("_shard").cast("long") * F.lit(1 << 39) + F.col("_row"), F.lit("")
    docs = base.select(
        order.alias("_order"),
        tiebreak.alias("_tiebreak"),
        "id",
        "text",
        (F.col("url") if "url" in columns else F.lit(None).cast("string")).alias("url"),
        (F.col("language") if "language" in columns else F.lit(None).cast("string")).alias("language"),
    )
    staging = storage.join(tmp, "staging")
    places_path = storage.join(tmp, "places")
    docs.mapInArrow(tokenize_function(config.to_dict(), staging), from_arrow_schema(PLACES)).write.parquet(places_path)
    places = spark.read.parquet(places_path)  # materialized once: a rerun of pass 1 would stage new files
    if settings.shuffle:
        places = _shuffled_staging(spark, places, storage.join(tmp, "permuted"))

    key = [F.col(k) for k in KEY]
    assigned = running_total(places, key, F.col("token_count"))
    assigned = assigned.withColumn("_shard", F.floor(F.col("_before") / F.lit(settings.shard_tokens)).cast("int"))
    # To the driver: per output shard its key range and which rows of which staging files hold it (a few rows
    # per shard, not per document).
    pieces: dict[int, list[tuple[str, int, int]]] = {}
    spans = assigned.groupBy("_shard", "_file").agg(F.min("_file_row").alias("lo"), F.max("_file_row").alias("hi"))
    for row in spans.collect():
        pieces.setdefault(row["_shard"], []).append((row["_file"], row["lo"], row["hi"]))
    bounds = assigned.groupBy("_shard").agg(F.min(F.struct(*key)).alias("first"), F.max(F.struct(*key)).alias("last"))
    work = [
        (row["_shard"], sorted(pieces[row["_shard"]]), tuple(row["first"]), tuple(row["last"]))
        for row in bounds.orderBy("_shard").collect()
    ]
    shards_dir, row_group_tokens = storage.join(tmp, "shards"), settings.row_group_tokens

    def write(items: Iterator[tuple]) -> Iterator[tuple]:
        from pyspark import TaskContext

        context = TaskContext.get()
        attempt = context.taskAttemptId() if context else 0
        for number, mine, first, last in items:
            target = storage.join(shards_dir, f"shard-{number:05d}-attempt-{attempt}.parquet")
            yield (number, *write_shard(mine, first, last, target, row_group_tokens))

    results = spark.sparkContext.parallelize(work, max(1, len(work))).mapPartitions(write).collect() if work else []
    by_language = places.groupBy("language").agg(F.sum("token_count").alias("n")).orderBy(F.desc("n")).collect()

    target = storage.join(output, "tokenized")
    storage.remove(target)
    storage.makedirs(target)
    published, shard_tokens = [], {}
    for number, path, _rows, count in sorted(results):
        dst = storage.join(target, f"part-{number:05d}.parquet")
        storage.move(path, dst)
        published.append(dst)
        shard_tokens[storage.describe_relative(dst, output)] = count
    total = sum(shard_tokens.values())
    stats = {
        "tokenizer": tokenizer.name,
        "eos_id": tokenizer.eos_id,
        "vocab_size": tokenizer.vocab_size,
        "documents": sum(r[2] for r in results),
        "tokens": total,
        "shards": len(published),
        "tokens_per_shard": shard_tokens,
        "shuffled": settings.shuffle,
        "seed": settings.seed if settings.shuffle else None,
        "tokens_by_language": {(lang or "unknown"): n for lang, n in by_language},
    }
    storage.remove(storage.join(output, "_tmp"))
    finish_stage(
        spark, run, output, "tokenize", started, {"tokenized": published}, stats, inputs=files,
        tokenizer=tokenizer.name, total_tokens=total, tokens_per_shard=shard_tokens,
    )  # fmt: skip
