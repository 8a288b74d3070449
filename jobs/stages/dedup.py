"""Dedup stage: exact then near-duplicate (MinHash) removal across all shards, then PII masking (FineWeb stages 1-4,
all in Spark, nothing proportional to the data on the driver).

    corpus dedup input=PARQUET... output=OUT         # any Parquet with `id` and `text`
    spark-submit jobs/dedup.py --config CONF input=... output=...

1. Keys, in Python workers (`mapInArrow`, one MinHasher per worker): per document the hash of its normalized
   text and its MinHash band keys.
2. Survivor order: every document gets a rank from one total order, earliest `fetch_time` first, then the
   shortest `url`, then the smallest `url`, then the smallest `id` (columns a dataset lacks are skipped). The
   document kept of a duplicate cluster is its lowest-ranked one: the first crawled copy, the canonical-looking
   URL on ties. Ranks depend on the data alone, so the same input keeps the same ids whatever the partitioning.
3. Exact: documents with the same normalized text (within a scope: a crawl, or everything) keep the lowest rank.
4. Near: band keys are grouped (a shuffle); every member of a bucket is linked to the bucket's lowest rank (k-1
   edges, not k^2); connected components (jobs/components.py) give each document its cluster's lowest rank.
   Documents matching an earlier run's minhash_index/ join a component whose root is the index: removed.
5. Write: deduped/ (kept documents, text PII-masked, `minhash_cluster_size`), removed/dedup-*.parquet (with
   removed_by `exact` or `minhash`, reason `cluster=<kept id> size=<n>`), minhash_index/, stats/dedup.json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict, minhash_params
from corpus.io import storage
from corpus.jobs.common import finish_stage, read_shards, running_total, signal, write_sharded
from corpus.jobs.components import connected_components

INDEX_NODE = -1  # the one node that stands for every earlier run's index: its component is removed

KEYS_SCHEMA = pa.schema(
    [
        pa.field("_shard", pa.int32()),
        pa.field("_row", pa.int64()),
        pa.field("_exact", pa.binary()),  # 128-bit hash of the normalized text
        pa.field("_bands", pa.list_(pa.binary())),  # MinHash band keys
    ]
)


def keys_function(config_dict: dict) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Per document: the 128-bit hash of its normalized text and its band keys (null when it has fewer words
    than an n-gram, as datatrove leaves such documents alone)."""

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from corpus.minhash import minhasher

        config = config_from_dict(config_dict)
        hasher = minhasher(minhash_params(config), config.compat)
        for batch in batches:
            texts = [t or "" for t in batch.column("text").to_pylist()]
            keys = hasher.keys(texts)
            exact = [k[0] for k in keys]
            bands = [k[1] for k in keys]
            yield pa.RecordBatch.from_arrays(
                [batch.column("_shard"), batch.column("_row"), pa.array(exact, pa.binary()),
                 pa.array(bands, pa.list_(pa.binary()))],
                schema=KEYS_SCHEMA,
            )  # fmt: skip

    return compute


def pii_function(config_dict: dict) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Mask emails and public IPs in `text` (and count them in `signals`, when the data has that column)."""

    def mask(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from corpus.filters.pii import PIIMasker
        from corpus.schema import signals_dict

        config = config_from_dict(config_dict)
        pii = config.dedup.pii
        masker = PIIMasker(
            remove_emails=pii.emails,
            remove_ips=pii.ip_addresses,
            only_remove_public_ips=pii.only_public_ips,
            lowercase_emails_only=config.compat == "fineweb-2024",
        )
        for batch in batches:
            names = batch.schema.names
            texts, counts, all_ends = [], [], []
            page_ends = batch.column("page_ends").to_pylist() if "page_ends" in names else None
            for row, text in enumerate(batch.column("text").to_pylist()):
                ends = page_ends[row] if page_ends is not None else None
                masked, emails, ips, ends = masker.mask_pages(text, ends)
                texts.append(masked)
                counts.append((emails, ips))
                all_ends.append(ends)
            columns = [batch.column(name) for name in names]
            columns[names.index("text")] = pa.array(texts, pa.string())
            if page_ends is not None:  # masks change lengths: page boundaries move with them
                columns[names.index("page_ends")] = pa.array(all_ends, batch.schema.field("page_ends").type)
            if "signals" in names:
                signals = []
                for old, (emails, ips) in zip(batch.column("signals").to_pylist(), counts):
                    entries = signals_dict(old)
                    entries.update({"pii.emails": float(emails), "pii.ip_addresses": float(ips)})
                    signals.append(list(entries.items()))
                columns[names.index("signals")] = pa.array(signals, batch.schema.field("signals").type)
            yield pa.RecordBatch.from_arrays(columns, schema=batch.schema)

    return mask


def survivor_order(columns: list[str]) -> list:
    order = []
    if "fetch_time" in columns:
        order.append(F.col("fetch_time").asc_nulls_last())
    if "url" in columns:
        order += [F.length("url").asc_nulls_last(), F.col("url").asc_nulls_last()]
    return [*order, F.col("id").asc(), F.col("_shard").asc(), F.col("_row").asc()]


def run_dedup(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    started = manifest.now()
    output = storage.absolute(output)
    tmp = storage.join(output, "_tmp", f"dedup-{run.run_id}")
    spark.sparkContext.setCheckpointDir(storage.join(tmp, "checkpoints"))
    settings = config.dedup
    files = sorted(inputs)
    base, columns = read_shards(spark, files, "dedup")
    scope = F.col("crawl") if settings.scope == "crawl" and "crawl" in columns else F.lit("")

    # 1. keys, written once (the expensive part) and read back by every later step.
    keys_path = storage.join(tmp, "keys")
    base.select("_shard", "_row", "text").mapInArrow(
        keys_function(config.to_dict()), from_arrow_schema(KEYS_SCHEMA)
    ).write.parquet(keys_path)
    order_columns = [c for c in ("fetch_time", "url") if c in columns]
    meta = base.select("_shard", "_row", "id", scope.alias("_scope"), *order_columns)
    keys = spark.read.parquet(keys_path).join(meta, ["_shard", "_row"])
    # 2. ranks
    ranked = running_total(keys, survivor_order(columns), name="_rank").checkpoint()
    docs = ranked.select("_rank", "_scope", "_exact", "_bands")

    # 3. exact duplicates: the lowest rank of each (scope, normalized text) survives
    if settings.exact:
        exact = docs.groupBy("_scope", "_exact").agg(F.min("_rank").alias("_exact_root"))
        docs = docs.join(exact, ["_scope", "_exact"])
    else:
        docs = docs.withColumn("_exact_root", F.col("_rank"))

    # 4. near duplicates among exact survivors: bucket edges, index edges, connected components
    node_root = None
    rounds = 0
    edge_count = 0
    if settings.near:
        bands = docs.where((F.col("_rank") == F.col("_exact_root")) & F.col("_bands").isNotNull()).select(
            "_rank", "_scope", F.posexplode("_bands").alias("_band", "_key")
        )
        buckets = bands.groupBy("_scope", "_band", "_key").agg(F.min("_rank").alias("_first"), F.count("*").alias("n"))
        edges = (
            bands.join(buckets.where("n > 1"), ["_scope", "_band", "_key"])
            .where(F.col("_rank") != F.col("_first"))
            .select(F.col("_rank").alias("src"), F.col("_first").alias("dst"))
        )
        for index in settings.index:
            held = spark.read.parquet(index).select(F.col("band").alias("_band"), F.col("key").alias("_key"))
            edges = edges.unionByName(
                bands.join(held.distinct(), ["_band", "_key"]).select(
                    F.col("_rank").alias("src"), F.lit(INDEX_NODE).cast("long").alias("dst")
                )
            )
        edges = edges.distinct().checkpoint()
        edge_count = edges.count()
        if edge_count:
            node_root, rounds = connected_components(edges, settings.max_iterations, checkpoint=True)

    # 5. every document's final root: its exact root's component root
    outcome = docs.select("_rank", "_exact_root")
    if node_root is not None:
        roots = node_root.select(F.col("node").alias("_exact_root"), F.col("root").alias("_near_root"))
        outcome = outcome.join(roots, "_exact_root", "left")
    else:
        outcome = outcome.withColumn("_near_root", F.lit(None).cast("long"))
    outcome = outcome.withColumn("_root", F.coalesce("_near_root", "_exact_root"))
    sizes = outcome.groupBy("_root").agg(F.count("*").alias("_size"))
    root_ids = ranked.select(F.col("_rank").alias("_root"), F.col("id").alias("_root_id"))
    outcome = (
        outcome.join(sizes, "_root")
        .join(root_ids, "_root", "left")
        .join(ranked.select("_rank", "_shard", "_row"), "_rank")
        .withColumn(
            "_by",
            F.when(F.col("_root") == INDEX_NODE, F.lit("minhash"))
            .when(F.col("_rank") != F.col("_exact_root"), F.lit("exact"))
            .when(F.col("_rank") != F.col("_root"), F.lit("minhash")),
        )
        .withColumn(
            "_reason",
            F.when(F.col("_root") == INDEX_NODE, F.lit("index")).otherwise(
                F.format_string("cluster=%s size=%d", F.col("_root_id"), F.col("_size"))
            ),
        )
        .checkpoint()
    )

    full = base.join(outcome.select("_shard", "_row", "_by", "_reason", "_size"), ["_shard", "_row"])
    kept = full.where(F.col("_by").isNull()).withColumn("minhash_cluster_size", F.col("_size").cast("long"))
    kept = kept.drop("_by", "_reason", "_size")
    written: dict[str, list[str]] = {}
    if settings.pii.enabled:
        kept = kept.mapInArrow(pii_function(config.to_dict()), kept.schema)
    written["deduped"] = write_sharded(kept, "_shard", "_row", tmp, output, "deduped", "part")
    removed = full.where(F.col("_by").isNotNull())
    removed = removed.withColumn("removed_by", F.col("_by")).withColumn("reason", F.col("_reason"))
    removed = removed.drop("_by", "_reason", "_size")
    written["removed"] = write_sharded(removed, "_shard", "_row", tmp, output, "removed", "dedup", replace=False)
    if settings.write_index:
        index_path = storage.join(output, "minhash_index")
        storage.remove(index_path)
        (
            ranked.join(outcome.where(F.col("_by").isNull()).select("_rank"), "_rank")
            .where(F.col("_bands").isNotNull())
            .select(F.posexplode("_bands").alias("band", "key"))
            .distinct()
            .repartition(max(1, len(files)), "band", "key")
            .sortWithinPartitions("band", "key")
            .write.parquet(index_path)
        )
        written["minhash_index"] = []
        for i, path in enumerate(storage.list_files(index_path, ".parquet")):  # stable names, not Spark's UUIDs
            stable = storage.join(index_path, f"index-{i:05d}.parquet")
            storage.move(path, stable)
            written["minhash_index"].append(stable)

    stats = dedup_stats(spark, output, written, rounds, edge_count, len(files))
    storage.remove(tmp)
    storage.remove(storage.join(output, "_tmp"))
    finish_stage(spark, run, output, "dedup", started, written, stats, inputs=files)


def dedup_stats(
    spark: SparkSession, output: str, written: dict[str, list[str]], rounds: int, edges: int, shards: int
) -> dict:
    """Counts from the written shards: kept, removed by step, cluster sizes, PII replacements."""
    kept = spark.read.parquet(*written["deduped"]) if written["deduped"] else None
    removed = spark.read.parquet(*written["removed"]) if written["removed"] else None
    stats: dict = {"shards": shards, "components_rounds": rounds, "candidate_edges": edges}
    stats["kept"] = kept.count() if kept is not None else 0
    by_step = dict(removed.groupBy("removed_by").count().collect()) if removed is not None else {}
    stats["removed"] = {"exact": by_step.get("exact", 0), "minhash": by_step.get("minhash", 0)}
    stats["documents"] = stats["kept"] + sum(stats["removed"].values())
    if kept is not None:
        sizes = kept.groupBy("minhash_cluster_size").count().orderBy("minhash_cluster_size").collect()
        stats["kept_by_cluster_size"] = {str(size): n for size, n in sizes}
        if "signals" in kept.columns:
            row = kept.agg(
                F.sum(signal(kept, "pii.emails")).alias("emails"),
                F.sum(signal(kept, "pii.ip_addresses")).alias("ips"),
            ).first()
            stats["pii"] = {"emails": int(row["emails"] or 0), "ip_addresses": int(row["ips"] or 0)}
    return stats
