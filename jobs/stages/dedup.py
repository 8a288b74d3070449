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
   Steps 2-4 move only narrow rows (ids, ranks, hashes, band keys): the text is never shuffled.
5. Apply, where the text lives: the outcome of every row (removed by, reason, cluster size) is written per input
   shard, sorted by row (a few bytes per document); one task per input shard reads its shard a second time with
   its outcome beside it, masks PII in the kept rows and writes deduped/part-<shard> (kept documents in input
   order, `minhash_cluster_size`) and removed/dedup-<shard> (removed_by `exact` or `minhash`, reason
   `cluster=<kept id> size=<n>`). The text is read twice (keys, then apply) and written once. Then
   minhash_index/ and stats/dedup.json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict, minhash_params
from corpus.filters.pii import IPV4, PIIMasker
from corpus.io import storage
from corpus.jobs.common import (
    Split,
    apply_per_shard,
    discard_staging,
    finish_stage,
    publish_per_shard,
    read_shards,
    running_total,
    signal,
    write_outcome,
)
from corpus.jobs.components import connected_components
from corpus.schema import concat_signals, signals_dict

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


def pii_masker(config: Config) -> PIIMasker:
    pii = config.dedup.pii
    return PIIMasker(
        remove_emails=pii.emails,
        remove_ips=pii.ip_addresses,
        only_remove_public_ips=pii.only_public_ips,
        lowercase_emails_only=config.compat == "fineweb-2024",
    )


#: The signals `mask_pii` gives every row: how many addresses it replaced.
PII_SIGNALS = ("pii.emails", "pii.ip_addresses")


def pii_candidates(masker: PIIMasker, text: pa.Array) -> np.ndarray:
    """Rows whose text may hold something to mask: an '@' (emails) or an IPv4 address, found by Arrow's C++
    (RE2) scans. Every other row comes out of `PIIMasker.mask` unchanged with zero counts, so only these rows
    go through Python's regexes."""
    found = pa.array(np.zeros(len(text), dtype=bool))
    if masker.remove_emails:
        found = pc.or_(found, pc.match_substring(text, "@"))
    if masker.remove_ips:
        found = pc.or_(found, pc.match_substring_regex(text, IPV4.pattern))
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def append_signals(signals: pa.Array, values: dict[str, np.ndarray]) -> pa.Array | None:
    """`signals` (list<struct<key, value>>) with one entry per name of `values` appended to every row, built in
    Arrow; None when a row already has one of these keys, or the column is a map (then the caller merges the
    dicts in Python, as `signals_dict` does)."""
    if not pa.types.is_list(signals.type):
        return None
    flat = signals.flatten()
    if len(flat) and pc.any(pc.is_in(flat.field("key"), pa.array(list(values)))).as_py():
        return None
    n, extra = len(signals), len(values)
    names = np.tile(np.array(list(values), dtype=object), n)
    numbers = np.stack([values[name] for name in values], axis=1).reshape(-1)
    entry = signals.type.value_type
    new = pa.StructArray.from_arrays(
        [pa.array(names, entry.field("key").type), pa.array(numbers, entry.field("value").type)], fields=list(entry)
    )
    added = pa.ListArray.from_arrays(pa.array(np.arange(n + 1) * extra, pa.int32()), new, type=signals.type)
    return concat_signals(signals, added, signals.type)


def mask_pii(masker: PIIMasker, batch: pa.RecordBatch) -> pa.RecordBatch:
    """Mask emails and public IPs in `text` (and count them in `signals`, when the data has that column). Only
    the rows `pii_candidates` finds go through Python; the result is what `PIIMasker.mask_pages` gives per row."""
    names = batch.schema.names
    text = batch.column("text")
    rows = np.flatnonzero(pii_candidates(masker, text))
    counts = {name: np.zeros(batch.num_rows) for name in PII_SIGNALS}
    columns = [batch.column(name) for name in names]
    if len(rows):
        page_ends = batch.column("page_ends").to_pylist() if "page_ends" in names else None
        masked_texts = []
        for row, value in zip(rows, text.take(pa.array(rows)).to_pylist()):
            masked, emails, ips, ends = masker.mask_pages(value, page_ends[row] if page_ends is not None else None)
            masked_texts.append(masked)
            counts["pii.emails"][row], counts["pii.ip_addresses"][row] = emails, ips
            if page_ends is not None:
                page_ends[row] = ends
        mask = np.zeros(batch.num_rows, dtype=bool)
        mask[rows] = True
        columns[names.index("text")] = pc.replace_with_mask(text, pa.array(mask), pa.array(masked_texts, text.type))
        if page_ends is not None:  # masks change lengths: page boundaries move with them
            columns[names.index("page_ends")] = pa.array(page_ends, batch.schema.field("page_ends").type)
    if "signals" in names:
        signals = append_signals(batch.column("signals"), counts)
        if signals is None:
            merged = []
            for row, old in enumerate(batch.column("signals").to_pylist()):
                entries = signals_dict(old)
                entries.update({name: float(counts[name][row]) for name in PII_SIGNALS})
                merged.append(list(entries.items()))
            signals = pa.array(merged, batch.schema.field("signals").type)
        columns[names.index("signals")] = signals
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


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
    # 2. ranks, on the ordering columns only
    order_columns = [c for c in ("fetch_time", "url") if c in columns]
    meta = base.select("_shard", "_row", "id", scope.alias("_scope"), *order_columns)
    ranked = running_total(meta, survivor_order(columns), name="_rank").select(
        "_rank", "_shard", "_row", "id", "_scope"
    )
    ranked = ranked.checkpoint()
    keys = spark.read.parquet(keys_path)

    # 3. exact duplicates: the lowest rank of each (scope, normalized text) survives (hashes only, no band keys)
    docs = keys.select("_shard", "_row", "_exact").join(ranked.drop("id"), ["_shard", "_row"])
    if settings.exact:
        docs = docs.withColumn("_exact_root", F.min("_rank").over(Window.partitionBy("_scope", "_exact")))
    else:
        docs = docs.withColumn("_exact_root", F.col("_rank"))
    docs = docs.select("_rank", "_shard", "_row", "_scope", "_exact_root").checkpoint()

    # 4. near duplicates among exact survivors: bucket edges, index edges, connected components. The band keys
    # are shuffled once (to meet their ranks), their exploded rows once (buckets).
    node_root = None
    rounds = 0
    edge_count = 0
    if settings.near:
        survivors = docs.where(F.col("_rank") == F.col("_exact_root")).select("_shard", "_row", "_rank", "_scope")
        bands = (
            keys.where(F.col("_bands").isNotNull())
            .select("_shard", "_row", "_bands")
            .join(survivors, ["_shard", "_row"])
            .select("_rank", "_scope", F.posexplode("_bands").alias("_band", "_key"))
        )
        bucket = Window.partitionBy("_scope", "_band", "_key")
        edges = (
            bands.withColumn("_first", F.min("_rank").over(bucket))
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
    outcome = docs.select("_rank", "_shard", "_row", "_exact_root")
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
        .withColumn(
            "_by",
            F.when(F.col("_root") == INDEX_NODE, F.lit("minhash"))
            .when(F.col("_rank") != F.col("_exact_root"), F.lit("exact"))
            .when(F.col("_rank") != F.col("_root"), F.lit("minhash")),
        )
        .withColumn(
            "_reason",
            F.when(F.col("_by").isNull(), F.lit(None).cast("string"))
            .when(F.col("_root") == INDEX_NODE, F.lit("index"))
            .otherwise(F.format_string("cluster=%s size=%d", F.col("_root_id"), F.col("_size"))),
        )
        .select("_rank", "_shard", "_row", "_by", "_reason", "_size")
        .checkpoint()
    )

    # 6. apply the outcome where the text lives: per input shard, rows in their input order
    outcome_path = storage.join(tmp, "outcome")
    write_outcome(outcome.select("_shard", "_row", "_by", "_reason", "_size"), outcome_path)
    written = apply_outcomes(spark, config, files, outcome_path, tmp, output)
    if settings.write_index:
        index_path = storage.join(output, "minhash_index")
        storage.remove(index_path)
        (
            keys.where(F.col("_bands").isNotNull())
            .join(outcome.where(F.col("_by").isNull()).select("_shard", "_row"), ["_shard", "_row"])
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
    discard_staging("dedup", tmp, storage.join(output, "_tmp"))
    finish_stage(spark, run, output, "dedup", started, written, stats, inputs=files)


#: Columns of removed/ rows, from the outcome's.
RENAMES = {"removed_by": "_by", "reason": "_reason"}
#: What the apply step sets: on kept rows, on removed rows.
APPLY_FIELDS = (
    [pa.field("minhash_cluster_size", pa.int64())],
    [pa.field("removed_by", pa.string()), pa.field("reason", pa.string())],
)


def dedup_split(masker: PIIMasker | None) -> Split:
    """How the apply step splits a batch by its outcome: kept rows (PII-masked, with `minhash_cluster_size`),
    removed rows (with `removed_by`, `reason`)."""

    def split(batch: pa.RecordBatch, part: pa.Table) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
        names = batch.schema.names
        keep = pc.is_null(part.column("_by")).combine_chunks()
        mine = batch.filter(keep)
        if masker is not None and mine.num_rows:
            mine = mask_pii(masker, mine)
        sizes = part.column("_size").filter(keep).combine_chunks()
        kept = {**dict(zip(names, mine.columns)), "minhash_cluster_size": sizes}
        drop = pc.invert(keep)
        removed = {name: part.column(c).filter(drop).combine_chunks() for name, c in RENAMES.items()}
        return kept, {**dict(zip(names, batch.filter(drop).columns)), **removed}

    return split


def apply_outcomes(
    spark: SparkSession, config: Config, files: list[str], outcome_path: str, tmp: str, output: str
) -> dict[str, list[str]]:
    """One task per input shard rewrites it by its outcome (nothing of the text is shuffled); the driver then
    moves the files to deduped/part-<shard>.parquet and removed/dedup-<shard>.parquet."""
    config_dict = config.to_dict()

    def splitter() -> Split:
        task_config = config_from_dict(config_dict)
        return dedup_split(pii_masker(task_config) if task_config.dedup.pii.enabled else None)

    staging = storage.join(tmp, "apply")
    compression = config.output_options.compression
    results = apply_per_shard(spark, files, outcome_path, staging, APPLY_FIELDS, splitter, compression)
    written = publish_per_shard(results, output, "deduped", "dedup")
    discard_staging("dedup", staging)
    return written


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
