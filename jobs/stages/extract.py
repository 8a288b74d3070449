"""Extraction stage: WARC files -> filtered/ (kept), removed/ (dropped, with the step and the reason) and
skipped/ (records outside the recipe: images, PDFs, revisits), in one pass and one write.

One Spark task per input file (`mapInArrow` over the file indexes); the task streams its file through
the config's recipe (`corpus.recipes`) and hands Arrow batches to Spark's Parquet writer, partitioned on the status.
The committed partitions are then moved to their contract folders with stable names (part-<file index>).

    spark-submit jobs/extract.py --config conf/fineweb.yaml input=... output=...
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict
from corpus.io import storage
from corpus.jobs.common import finish_stage, log
from corpus.jobs.progress import Progress, TaskCounter, read_counts
from corpus.schema import EXTRACT_SCHEMA, STATUS_COLUMN, STATUS_DIRS

_PART = re.compile(r"part-(\d{5})")


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def extract_batches(
    paths: list[str], chunk: list[int], config_dict: dict, counts: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function Spark runs on each partition: positions in `chunk` in, document batches out (and the
    running count of each file's documents in `counts`, for the progress line)."""

    def process(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from corpus.document import batched
        from corpus.io import remote
        from corpus.recipes import recipe_for

        config = config_from_dict(config_dict)
        remote.use(config.storage)  # fsspec options and retries for remote inputs, in this worker process
        recipe = recipe_for(config)
        rows = config_dict["output_options"]["batch_rows"]
        for batch in batches:
            for position in batch.column(0).to_pylist():
                counter = TaskCounter(counts, chunk[position])
                for out in batched(recipe.process_file(paths[chunk[position]]), max_rows=rows):
                    counter.add(out.num_rows)
                    yield out
                counter.flush()

    return process


def publish(tmp: str, output: str, chunk: list[int]) -> None:
    """Move `tmp/_status=<s>/part-<position>-*.parquet` to `output/<folder>/part-<input index>.parquet`."""
    for status, folder in STATUS_DIRS.items():
        target = storage.join(output, folder)
        storage.makedirs(target)
        for src in storage.list_files(storage.join(tmp, f"{STATUS_COLUMN}={status}"), ".parquet"):
            m = _PART.search(src.rsplit("/", 1)[-1])
            if m is None:
                raise RuntimeError(f"unexpected file written by Spark: {src}")
            storage.move(src, storage.join(target, shard_name(chunk[int(m.group(1))])))
    storage.remove(tmp)


def _progress_path(output: str) -> str:
    return storage.join(output, "_progress", "extract.json")


def _clear(output: str) -> None:
    """Remove the stage's shards (removed/ also holds dedup's files: only part-*)."""
    for folder in STATUS_DIRS.values():
        for path in storage.list_files(storage.join(output, folder), ".parquet"):
            if path.rsplit("/", 1)[-1].startswith("part-"):
                storage.remove(path)


#: Files per job when `extract.files_per_job` is 0: per core of the application, and at least.
FILES_PER_CORE, MIN_FILES_PER_JOB = 4, 64


def files_per_job(spark: SparkSession, config: Config) -> int:
    """Input files per Spark job: the setting, or with 0 enough files to keep every core busy while a job's
    slowest files finish (a job of fewer files than cores would leave cores idle)."""
    if config.extract.files_per_job > 0:
        return config.extract.files_per_job
    return max(MIN_FILES_PER_JOB, FILES_PER_CORE * spark.sparkContext.defaultParallelism)


def run_extract(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    """Run the stage in jobs of `extract.files_per_job` input files, each committed and published as it ends
    (with the list of finished files in _progress/extract.json): an interrupted run resumes where it stopped,
    and the manifest lists the stage only once every file is done."""
    started = manifest.now()
    output = storage.absolute(output)
    fingerprint = run.fingerprints.get("extract")
    progress_url = _progress_path(output)
    done: list[int] = []
    if storage.exists(progress_url):
        previous = json.loads(storage.read_text(progress_url))
        if previous.get("fingerprint") == fingerprint:
            done = previous["done"]
    if not done:
        _clear(output)
        storage.remove(storage.join(output, "_progress", "counts"))
    todo = [i for i in range(len(inputs)) if i not in set(done)]
    if done:
        log(f"extract: resuming, {len(done)} of {len(inputs)} files were done")
    size = files_per_job(spark, config)
    schema = from_arrow_schema(EXTRACT_SCHEMA)
    counts = storage.join(output, "_progress", "counts")
    with Progress(spark.sparkContext, "extract", len(inputs), len(done), lambda: read_counts(counts)):
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            tmp = storage.join(output, "_tmp", f"extract-{run.run_id}-{chunk[0]:05d}")
            df = spark.range(len(chunk), numPartitions=len(chunk)).mapInArrow(
                extract_batches(inputs, chunk, config.to_dict(), counts), schema
            )
            df.write.mode("overwrite").partitionBy(STATUS_COLUMN).parquet(tmp)
            publish(tmp, output, chunk)
            done += chunk
            storage.write_text(progress_url, json.dumps({"fingerprint": fingerprint, "done": sorted(done)}))
    storage.remove(storage.join(output, "_tmp"))
    published = {
        folder: [
            p
            for p in storage.list_files(storage.join(output, folder), ".parquet")
            if p.rsplit("/", 1)[-1].startswith("part-")
        ]
        for folder in STATUS_DIRS.values()
    }
    finish_stage(spark, run, output, "extract", started, published)
    storage.remove(storage.join(output, "_progress"))
