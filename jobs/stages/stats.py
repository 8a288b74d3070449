"""Statistics stage: group the written extract output with Spark and write stats/ (merged and per shard).

spark-submit jobs/stats.py --config CONF output=OUT
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.audit.stats import build
from corpus.config import Config
from corpus.io import storage
from corpus.jobs.common import finish_stage, write_json
from corpus.schema import STATUS_DIRS

SAMPLES_PER_REASON = 3


def read_extract_output(spark: SparkSession, output: str, run: Run) -> DataFrame:
    """The extract stage's shards (as its manifest entry lists them: removed/ also holds dedup's files)."""
    frames = []
    for status, folder in STATUS_DIRS.items():
        files = run.shard_urls(output, "extract", folder) or []
        if files:
            frames.append(spark.read.parquet(*files).withColumn("status", F.lit(status)))
    if not frames:
        raise RuntimeError(f"{output} has no extract output (filtered/, removed/, skipped/)")
    df = frames[0]
    for frame in frames[1:]:
        df = df.unionByName(frame)
    return df


def run_stats(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    started = manifest.now()
    output = storage.absolute(output)
    df = read_extract_output(spark, output, run)
    charset_source = F.regexp_extract(F.col("charset"), r"/(\w+)$", 1)
    counts = (
        df.groupBy("source_path", "status", "removed_by", "reason", "language", charset_source.alias("charset"))
        .agg(F.count(F.lit(1)).alias("docs"), F.sum(F.length("text")).alias("chars"))
        .collect()
    )
    rows = [r.asDict() for r in counts]
    for row in rows:
        row["charset"] = row["charset"] or None
    merged, shards = build(rows, run.inputs)

    # A few examples of every removal reason, for auditors (deterministic: the smallest ids).
    window = Window.partitionBy("removed_by", "reason").orderBy("id", "source_path", "source_offset")
    samples = (
        df.where(F.col("status") == "removed")
        .withColumn("n", F.row_number().over(window))
        .where(F.col("n") <= SAMPLES_PER_REASON)
        .select(
            "removed_by",
            "reason",
            "id",
            "url",
            "source_path",
            "source_offset",
            F.substring("text", 1, 300).alias("text"),
        )
        .orderBy("removed_by", "reason", "id", "source_path", "source_offset")
        .collect()
    )
    merged["samples"] = [s.asDict() for s in samples]

    stats_dir = storage.join(output, "stats")
    storage.remove(storage.join(stats_dir, "shards"))  # stats/ also holds other stages' files
    written = {
        "stats": [write_json(storage.join(stats_dir, "stats.json"), merged)],
        "stats/shards": [
            write_json(storage.join(stats_dir, "shards", f"{name}.json"), v) for name, v in shards.items()
        ],
    }
    finish_stage(spark, run, output, "stats", started, written)
