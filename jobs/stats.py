"""Statistics stage: group the written extract output with Spark and write stats/ (merged and per shard).

spark-submit jobs/stats.py --config CONF output=OUT
"""

from __future__ import annotations

# isort: off
import corpus.jobs.script  # noqa: F401  (first: fixes sys.path when run as a script)

# isort: on

import json
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from corpus import manifest, storage
from corpus.jobs.common import describe_outputs
from corpus.schema import STATUS_DIRS
from corpus.stats import build

SAMPLES_PER_REASON = 3


def read_extract_output(spark: SparkSession, output: str, run: dict) -> DataFrame:
    """The extract stage's shards (as its manifest entry lists them: removed/ also holds dedup's files)."""
    outputs = run["stages"].get("extract", {}).get("outputs", {})
    frames = []
    for status, folder in STATUS_DIRS.items():
        files = [storage.join(output, shard["path"]) for shard in outputs.get(folder, [])]
        if files:
            frames.append(spark.read.parquet(*files).withColumn("status", F.lit(status)))
    if not frames:
        raise RuntimeError(f"{output} has no extract output (filtered/, removed/, skipped/)")
    df = frames[0]
    for frame in frames[1:]:
        df = df.unionByName(frame)
    return df


def run_stats(spark: SparkSession, output: str, run: dict) -> dict:
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
    merged, shards = build(rows, run["inputs"])

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
    written = {"stats": [storage.join(stats_dir, "stats.json")], "stats/shards": []}
    storage.write_text(written["stats"][0], json.dumps(merged, indent=2) + "\n")
    for name, shard in shards.items():
        path = storage.join(stats_dir, "shards", f"{name}.json")
        storage.write_text(path, json.dumps(shard, indent=2) + "\n")
        written["stats/shards"].append(path)
    manifest.record_stage(run, output, "stats", started, describe_outputs(spark, written, output))
    return run


def main(argv: list[str] | None = None) -> int:
    from corpus.jobs.run import submit_main

    return submit_main(argv, ["stats"], __doc__)


if __name__ == "__main__":
    sys.exit(main())
