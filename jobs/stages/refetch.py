"""Refetch stage: truncated PDFs of the input WARCs fetched again from their origin into new WARC files.

1. The refetch list: one task per input file runs the PDF recipe up to extraction (corpus.recipes.finepdfs) and
   lists the PDF records it would remove as truncated (url, record id, reason); the extract stage later
   removes the same records with `removed_by=refetch`.
2. The list is partitioned by host (`corpus.refetch.host_key`), so one task owns each host and the per-host
   politeness of corpus.refetch (one connection at a time, delay, robots.txt, Retry-After) holds cluster-wide.
3. Each task fetches its hosts and writes OUT/refetched/refetch-<task>.warc.gz (request/response pairs, the
   response with WARC-Refers-To the truncated record); every URL's outcome goes to OUT/refetch/ (Parquet) and
   the counts per outcome to stats/refetch.json.

The PDF recipe's extract stage then reads OUT/refetched/*.warc.gz along with the inputs.

    spark-submit jobs/refetch.py --config conf/finepdfs.yaml input=... output=...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict
from corpus.io import storage
from corpus.jobs.common import finish_stage, log
from corpus.refetch import OUTCOMES
from corpus.schema import REFETCH_ITEM_SCHEMA, REFETCH_RESULT_SCHEMA

RESULT_COLUMNS = REFETCH_RESULT_SCHEMA.names
REFETCHED = "refetched"  # the WARC files
RESULTS = "refetch"  # one row per URL: its outcome


def list_truncated(config_dict: dict) -> Callable[[str], Iterator[tuple[str, str, str, str]]]:
    def items(path: str) -> Iterator[tuple[str, str, str, str]]:
        from corpus.io import remote
        from corpus.recipes import FinePdfsRecipe, recipe_for
        from corpus.refetch import host_key

        config = config_from_dict(config_dict)
        remote.use(config.storage)
        recipe = recipe_for(config)
        assert isinstance(recipe, FinePdfsRecipe)
        for doc in recipe.truncated(path):
            yield doc.url, doc.id, doc.reason or "truncated", host_key(doc.url)

    return items


def fetch_partition(config_dict: dict, folder: str) -> Callable[[int, Iterator], Iterator[tuple]]:
    def fetch(index: int, rows: Iterator) -> Iterator[tuple]:
        from corpus.refetch import RefetchItem, refetch_to_warc

        config = config_from_dict(config_dict)
        items = [RefetchItem(row.url, row.record_id, row.reason) for row in rows]
        if not items:
            return
        items.sort(key=lambda i: (i.url, i.record_id))  # the same order whatever the shuffle delivered
        report = refetch_to_warc(items, storage.join(folder, f"refetch-{index:05d}.warc.gz"), config.refetch)
        for result in report.results:
            row = result.to_dict()
            yield tuple(row[column] for column in RESULT_COLUMNS)

    return fetch


def run_refetch(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    started = manifest.now()
    output = storage.absolute(output)
    folder, results_folder = storage.join(output, REFETCHED), storage.join(output, RESULTS)
    for old in (folder, results_folder):
        storage.remove(old)
    storage.makedirs(folder)
    sc = spark.sparkContext
    items = spark.createDataFrame(
        sc.parallelize(inputs, max(1, len(inputs))).flatMap(list_truncated(config.to_dict())),
        from_arrow_schema(REFETCH_ITEM_SCHEMA),
    ).localCheckpoint()  # listed once: the fetch below must not re-read the inputs
    hosts = items.select("host").distinct().count()
    total = items.count()
    log(f"refetch: {total} truncated PDF(s) on {hosts} host(s)")
    partitions = max(1, min(hosts, sc.defaultParallelism * 4))
    by_host = items.repartition(partitions, F.crc32("host") % partitions).rdd  # one task per host
    results = spark.createDataFrame(
        by_host.mapPartitionsWithIndex(fetch_partition(config.to_dict(), folder)),
        from_arrow_schema(REFETCH_RESULT_SCHEMA),
    )
    results.coalesce(1).write.mode("overwrite").parquet(storage.join(output, "_tmp", "refetch"))
    storage.makedirs(results_folder)
    written = storage.list_files(storage.join(output, "_tmp", "refetch"), ".parquet")
    for i, src in enumerate(written):
        storage.move(src, storage.join(results_folder, f"part-{i:05d}.parquet"))
    storage.remove(storage.join(output, "_tmp", "refetch"))
    counts = (
        {
            row["outcome"]: row["count"]
            for row in spark.read.parquet(results_folder).groupBy("outcome").count().collect()
        }
        if written
        else {}
    )
    stats = {"truncated_pdfs": total, "hosts": hosts, "outcomes": {o: counts.get(o, 0) for o in OUTCOMES}}
    log(f"refetch: {json.dumps(stats['outcomes'])}")
    outputs = {
        REFETCHED: storage.list_files(folder, ".warc.gz"),
        RESULTS: storage.list_files(results_folder, ".parquet"),
    }
    finish_stage(spark, run, output, "refetch", started, outputs, stats, stats=stats)
