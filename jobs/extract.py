"""Extraction stage: WARC files -> filtered/ (kept), removed/ (dropped, with the step and the reason) and
skipped/ (records outside the recipe: images, PDFs, revisits), in one pass and one write.

One Spark task per input file (`mapInArrow` over the file indexes); the task streams its file through
`corpus.pipeline.HtmlPipeline` and hands Arrow batches to Spark's Parquet writer, partitioned on the status.
The committed partitions are then moved to their contract folders with stable names (part-<file index>).

    spark-submit jobs/extract.py --config conf/fineweb.yaml input=... output=...
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from corpus import manifest, storage
from corpus.config import Config, config_from_dict
from corpus.jobs.common import describe_outputs
from corpus.schema import EXTRACT_SCHEMA, STATUS_COLUMN, STATUS_DIRS

_PART = re.compile(r"part-(\d{5})")


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def extract_batches(paths: list[str], config_dict: dict) -> callable:
    """The function Spark runs on each partition: file indexes in, document batches out."""

    def process(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from corpus.document import batched
        from corpus.pipeline import pipeline_for

        pipeline = pipeline_for(config_from_dict(config_dict))
        rows = config_dict["output_options"]["batch_rows"]
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield from batched(pipeline.process_file(paths[index]), max_rows=rows)

    return process


def publish(tmp: str, output: str) -> dict[str, list[str]]:
    """Move `tmp/_status=<s>/part-NNNNN-*.parquet` to `output/<folder>/part-NNNNN.parquet`."""
    moved: dict[str, list[str]] = {}
    for status, folder in STATUS_DIRS.items():
        target = storage.join(output, folder)
        storage.remove(target)
        storage.makedirs(target)
        moved[folder] = []
        for src in storage.list_files(storage.join(tmp, f"{STATUS_COLUMN}={status}"), ".parquet"):
            m = _PART.search(src.rsplit("/", 1)[-1])
            if m is None:
                raise RuntimeError(f"unexpected file written by Spark: {src}")
            dst = storage.join(target, shard_name(int(m.group(1))))
            storage.move(src, dst)
            moved[folder].append(dst)
    storage.remove(tmp)
    return {folder: sorted(paths) for folder, paths in moved.items()}


def run_extract(spark: SparkSession, config: Config, inputs: list[str], output: str, run: dict) -> dict:
    """Run the stage and record it in the manifest `run` (written to `output`)."""
    started = manifest.now()
    output = storage.absolute(output)
    tmp = storage.join(output, "_tmp", f"extract-{run['run_id']}")
    df = spark.range(len(inputs), numPartitions=max(1, len(inputs))).mapInArrow(
        extract_batches(inputs, config.to_dict()), from_arrow_schema(EXTRACT_SCHEMA)
    )
    df.write.mode("overwrite").partitionBy(STATUS_COLUMN).parquet(tmp)
    published = publish(tmp, output)
    storage.remove(storage.join(output, "_tmp"))
    shards = describe_outputs(spark, published, output)
    manifest.record_stage(run, output, "extract", started, shards)
    return run


def main(argv: list[str] | None = None) -> int:
    from corpus.jobs.run import submit_main

    return submit_main(argv, ["extract", "stats"], __doc__)


if __name__ == "__main__":
    sys.exit(main())
