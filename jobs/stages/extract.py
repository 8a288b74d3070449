"""Extraction stage: WARC files -> filtered/ (kept), removed/ (dropped, with the step and the reason) and
skipped/ (records outside the recipe: images, PDFs, revisits), in one pass and one write.

One Spark task per input file; the task streams its file through the config's recipe (`corpus.recipes`) and
writes the documents of each status to its own Parquet file with pyarrow (`corpus.io.shards`), in input order.
The text never enters the JVM: Spark's own writer would convert every row from Arrow and sort the rows by status
before a partitioned write, which cost more CPU per page than everything else but trafilatura on long pages. A
task returns the names of the files it wrote (named by its attempt, so a failed or duplicate attempt's files are
never published); the driver moves the files of the attempts Spark kept to their contract folders with stable
names (part-<file index>).

    spark-submit jobs/extract.py --config conf/fineweb.yaml input=... output=...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pyarrow.compute as pc
from pyspark.sql import SparkSession

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict
from corpus.io import storage
from corpus.io.shards import ShardOutput, aborting
from corpus.jobs.common import discard_staging, finish_stage, log
from corpus.jobs.progress import Progress, TaskCounter, read_counts
from corpus.schema import DOCUMENT_SCHEMA, STATUS_COLUMN, STATUS_DIRS


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def extract_files(
    paths: list[str], config_dict: dict, staging: str, counts: str
) -> Callable[[Iterator[int]], Iterator[tuple[int, str, str]]]:
    """The function Spark runs on each partition: input file indexes in, (index, status, written file) out, for
    each status the file has documents of (and the running count of each file's documents in `counts`, for the
    progress line)."""

    def process(indexes: Iterator[int]) -> Iterator[tuple[int, str, str]]:
        from pyspark import TaskContext

        from corpus.document import batched
        from corpus.io import remote
        from corpus.recipes import recipe_for

        config = config_from_dict(config_dict)
        remote.use(config.storage)  # fsspec options and retries for remote inputs, in this worker process
        recipe = recipe_for(config)
        context = TaskContext.get()
        attempt = context.taskAttemptId() if context else 0
        compression = config.output_options.compression
        for index in indexes:
            counter = TaskCounter(counts, index)
            outputs = {
                status: ShardOutput(
                    storage.join(staging, f"{status}-{index:05d}-attempt-{attempt}.parquet"),
                    DOCUMENT_SCHEMA,
                    compression,
                )
                for status in STATUS_DIRS
            }
            with aborting(list(outputs.values())):
                for batch in batched(recipe.process_file(paths[index]), max_rows=config.output_options.batch_rows):
                    counter.add(batch.num_rows)
                    statuses = batch.column(STATUS_COLUMN)
                    rows = batch.drop_columns([STATUS_COLUMN])
                    for status, output in outputs.items():
                        output.write(rows.filter(pc.equal(statuses, status)))
                written = {status: output.close() for status, output in outputs.items()}
            counter.flush()  # the file's count, once its shards are written
            for status, path in written.items():
                if path is not None:
                    yield index, status, path

    return process


def publish(written: list[tuple[int, str, str]], output: str) -> None:
    """Move each written file to `output/<status folder>/part-<input index>.parquet`."""
    for folder in STATUS_DIRS.values():
        storage.makedirs(storage.join(output, folder))
    for index, status, path in written:
        storage.move(path, storage.join(output, STATUS_DIRS[status], shard_name(index)))


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
    counts = storage.join(output, "_progress", "counts")
    with Progress(spark.sparkContext, "extract", len(inputs), len(done), lambda: read_counts(counts)):
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            staging = storage.join(output, "_tmp", f"extract-{run.run_id}-{chunk[0]:05d}")
            process = extract_files(inputs, config.to_dict(), staging, counts)
            publish(spark.sparkContext.parallelize(chunk, len(chunk)).mapPartitions(process).collect(), output)
            discard_staging("extract", staging)  # what failed or duplicate attempts wrote
            done += chunk
            storage.write_text(progress_url, json.dumps({"fingerprint": fingerprint, "done": sorted(done)}))
    discard_staging("extract", storage.join(output, "_tmp"))
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
