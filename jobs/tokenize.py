"""Tokenize stage: documents -> token ids in Parquet, the training-ready output.

    corpus tokenize input=PARQUET... output=OUT       # any Parquet with `id` and `text`
    spark-submit jobs/tokenize.py --config CONF input=... output=...

1. Tokens, in Python workers (`mapInArrow`, one tokenizer per worker): each document's ids plus the
   end-of-document token.
2. Order: the input's order (shard, row), or with `tokenize.shuffle` a seeded permutation of the whole dataset
   (documents sorted by xxhash64(seed, id)). Same input and seed, same order, whatever the partitioning.
3. Shards: a running total of tokens over that order cuts shards of about `tokenize.shard_tokens` tokens
   (never splitting a document); each shard is one Spark task.
4. Write: each task writes its shard with pyarrow (Spark has no unsigned integers, the contract is
   list<uint32>): zstd, row groups of about `tokenize.row_group_tokens` tokens, under a name unique to the task
   attempt. The driver publishes only the files that the job's successful attempts returned, so retried or
   speculative attempts never leave duplicates, and a rerun rewrites the same shards.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from corpus import manifest, storage
from corpus.config import Config, config_from_dict
from corpus.jobs.common import describe_outputs, running_total

TOKENIZED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.uint32()), nullable=False),  # the document's ids, then the EOS id
        pa.field("token_count", pa.int64(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("language", pa.string()),
    ]
)
TOKENS_SPARK = T.StructType(
    [
        T.StructField("_order", T.LongType()),
        T.StructField("_tiebreak", T.StringType()),
        T.StructField("id", T.StringType()),
        T.StructField("tokens", T.ArrayType(T.IntegerType())),  # carried as int32 inside Spark (ids < 2**31)
        T.StructField("token_count", T.LongType()),
        T.StructField("url", T.StringType()),
        T.StructField("language", T.StringType()),
    ]
)
WRITTEN = T.StructType(
    [
        T.StructField("shard", T.IntegerType()),
        T.StructField("path", T.StringType()),
        T.StructField("rows", T.LongType()),
        T.StructField("tokens", T.LongType()),
    ]
)


def tokenize_function(config_dict: dict) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def tokenize(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from corpus.tokenizer import load_tokenizer

        settings = config_from_dict(config_dict).tokenize
        tokenizer = load_tokenizer(settings.tokenizer, settings.eos)
        eos = tokenizer.eos_id
        for batch in batches:
            texts = [t or "" for t in batch.column("text").to_pylist()]
            ids = tokenizer.encode_batch(texts)
            for doc in ids:
                doc.append(eos)
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("_order"),
                    batch.column("_tiebreak"),
                    batch.column("id"),
                    pa.array(ids, pa.list_(pa.int32())),
                    pa.array([len(doc) for doc in ids], pa.int64()),
                    batch.column("url"),
                    batch.column("language"),
                ],
                names=[f.name for f in TOKENS_SPARK],
            )

    return tokenize


class _ShardWriter:
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
            # the first row at which this row group reaches its size, if any in this batch
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


def write_shards_function(
    staging: str, row_group_tokens: int
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Rows arrive sorted by shard then position; write each shard to a file named for this task attempt and
    yield (shard, path, rows, tokens) for the driver to publish."""

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        attempt = context.taskAttemptId() if context else 0
        current: tuple[int, _ShardWriter] | None = None
        done: list[tuple[int, _ShardWriter]] = []
        for batch in batches:
            shards = batch.column("_shard").to_numpy()
            for value in np.unique(shards):  # sorted, as the rows are
                rows = batch.filter(pa.array(shards == value))
                if current is None or current[0] != value:
                    if current is not None:
                        current[1].close()
                        done.append(current)
                    path = storage.join(staging, f"shard-{int(value):05d}-attempt-{attempt}.parquet")
                    current = (int(value), _ShardWriter(path, row_group_tokens))
                out = pa.RecordBatch.from_arrays(
                    [rows.column(f.name).cast(f.type) for f in TOKENIZED_SCHEMA], schema=TOKENIZED_SCHEMA
                )
                current[1].write(out)
        if current is not None:
            current[1].close()
            done.append(current)
        for shard, writer in done:
            yield pa.RecordBatch.from_pydict(
                {"shard": [shard], "path": [writer.path], "rows": [writer.rows], "tokens": [writer.tokens]},
                schema=pa.schema(
                    [("shard", pa.int32()), ("path", pa.string()), ("rows", pa.int64()), ("tokens", pa.int64())]
                ),
            )

    return write


def run_tokenize(spark: SparkSession, config: Config, inputs: list[str], output: str, run: dict) -> dict:
    started = manifest.now()
    output = storage.absolute(output)
    tmp = storage.join(output, "_tmp", f"tokenize-{run['run_id']}")
    settings = config.tokenize
    from corpus.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(settings.tokenizer, settings.eos)  # fail early, on the driver, on a bad name
    files = sorted(inputs)
    raw = spark.read.parquet(*files)
    if missing := {"id", "text"} - set(raw.columns):
        raise ValueError(
            f"tokenize input needs columns id and text; {', '.join(sorted(missing))} missing in {files[0]}"
        )
    shard_of = F.broadcast(
        spark.createDataFrame([(storage.spark_path(f), i) for i, f in enumerate(files)], "_file string, _shard int")
    )
    base = (
        raw.withColumn("_file", F.col("_metadata.file_path"))
        .withColumn("_row", F.col("_metadata.row_index"))
        .join(shard_of, "_file")
    )
    if settings.shuffle:
        order = F.xxhash64(F.lit(settings.seed), F.col("id"))
        tiebreak = F.col("id")
    else:  # the input's own order: shard, then row (fits in one long: 2**24 shards of 2**39 rows)
        order = F.col("_shard").cast("long") * F.lit(1 << 39) + F.col("_row")
        tiebreak = F.lit("")
    docs = base.select(
        order.alias("_order"),
        tiebreak.alias("_tiebreak"),
        "id",
        "text",
        (F.col("url") if "url" in raw.columns else F.lit(None).cast("string")).alias("url"),
        (F.col("language") if "language" in raw.columns else F.lit(None).cast("string")).alias("language"),
    )
    tokens_path = storage.join(tmp, "tokens")
    docs.mapInArrow(tokenize_function(config.to_dict()), TOKENS_SPARK).write.parquet(tokens_path)
    tokens = spark.read.parquet(tokens_path)
    ordered = running_total(tokens, [F.col("_order"), F.col("_tiebreak"), F.col("id")], F.col("token_count"))
    sharded = ordered.withColumn("_shard", F.floor(F.col("_before") / F.lit(settings.shard_tokens)).cast("int"))
    shard_count = sharded.agg(F.max("_shard")).first()[0]
    shard_count = 0 if shard_count is None else shard_count + 1
    staging = storage.join(tmp, "shards")
    results = (
        sharded.repartition(max(min(shard_count, spark.sparkContext.defaultParallelism * 4), 1), "_shard")
        .sortWithinPartitions("_shard", "_before")
        .select("_shard", *[f.name for f in TOKENIZED_SCHEMA])
        .mapInArrow(write_shards_function(staging, settings.row_group_tokens), WRITTEN)
        .collect()
    )
    target = storage.join(output, "tokenized")
    storage.remove(target)
    storage.makedirs(target)
    published, shard_tokens = [], {}
    for result in sorted(results, key=lambda r: r.shard):
        dst = storage.join(target, f"part-{result.shard:05d}.parquet")
        storage.move(result.path, dst)
        published.append(dst)
        shard_tokens[storage.describe_relative(dst, output)] = result.tokens
    total = sum(shard_tokens.values())
    stats = {
        "tokenizer": tokenizer.name,
        "eos_id": tokenizer.eos_id,
        "vocab_size": tokenizer.vocab_size,
        "documents": sum(r.rows for r in results),
        "tokens": total,
        "shards": len(published),
        "tokens_per_shard": shard_tokens,
        "shuffled": settings.shuffle,
        "seed": settings.seed if settings.shuffle else None,
        "tokens_by_language": {
            (lang or "unknown"): n
            for lang, n in tokens.groupBy("language")
            .agg(F.sum("token_count"))
            .orderBy(F.desc(F.sum("token_count")))
            .collect()
        },
    }
    stats_path = storage.join(output, "stats", "tokenize.json")
    storage.write_text(stats_path, json.dumps(stats, indent=2) + "\n")
    storage.remove(tmp)
    storage.remove(storage.join(output, "_tmp"))
    outputs = describe_outputs(spark, {"tokenized": published, "stats": [stats_path]}, output)
    manifest.record_stage(
        run, output, "tokenize", started, outputs, inputs=files, tokenizer=tokenizer.name, total_tokens=total,
        tokens_per_shard=shard_tokens,
    )  # fmt: skip
    return run


def main(argv: list[str] | None = None) -> int:
    from corpus.jobs.run import submit_main

    return submit_main(argv, ["tokenize"], __doc__)


if __name__ == "__main__":
    sys.exit(main())
