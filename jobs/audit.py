"""The Spark side of the auditors' tools: everything they need from an output folder, computed from its written
Parquet with bounded results (nothing proportional to the data reaches the driver). corpus.audit renders and
compares what this returns; it never imports pyspark.

- `profile`: fixed-size histograms of every filter signal (kept / removed by this filter / removed by another
  step), of document lengths, token counts and quality scores; a per-shard table (documents, removals and
  languages per input file); a few documents per removal reason; and the drift inputs: per numeric signal a
  bounded seeded sample (the documents with the smallest xxhash64(seed, id), so two runs over the same input
  sample the same documents), exact categorical counts (language, outcome, top-level domain) and rates.
- `stratified_sample`: a spot-check sample in one pass: within each stratum the rows with the smallest
  xxhash64(seed, id) (ties by id), so the same seed picks the same rows whatever the partitioning.
"""

from __future__ import annotations

import math
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from corpus.audit.manifest import Run
from corpus.config import Config
from corpus.filters import configured_thresholds
from corpus.schema import STATUS_KEPT, STATUS_REMOVED

#: Status of a document within the profile: kept by the filters, or removed (by extraction or by dedup).
KEPT, REMOVED = STATUS_KEPT, STATUS_REMOVED
#: Removal reasons that name one duplicate cluster each are grouped as this (one sample row per step, not per cluster).
CLUSTER_REASON = "cluster"
QUALITY_COLUMN = "quality_score"
#: Histograms of at least this many values span the 0.5-99.5 % quantiles; smaller ones their whole range.
QUANTILE_RANGE_FROM = 2000


def _read(spark: SparkSession, files: list[str] | None) -> DataFrame | None:
    return spark.read.parquet(*files) if files else None


def _union(frames: list[DataFrame | None]) -> DataFrame | None:
    present = [f for f in frames if f is not None]
    if not present:
        return None
    out = present[0]
    for frame in present[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def signal_entries(df: DataFrame, column: str = "signals") -> DataFrame:
    """One row per (document, signal): the frame's other columns plus `key` and `value`, whether `signals`
    is a list of (key, value) structs or (in older outputs) a map."""
    others = [c for c in df.columns if c != column]
    if isinstance(df.schema[column].dataType, MapType):
        return df.select(*others, F.explode(column).alias("key", "value"))
    return df.select(*others, F.explode(column).alias("_s")).select(*others, "_s.key", "_s.value")


def documents(spark: SparkSession, output: str, run: Run) -> dict[str, DataFrame | None]:
    """The output's document frames: `extract` (kept and removed rows of the extract stage, with `status`),
    `removed` (every removed row: extract's and dedup's), `final` (the kept documents at the end: deduped/,
    else filtered/, else the dedup input), `skipped`, `tokenized`."""
    kept = _read(spark, run.shard_urls(output, "extract", "filtered"))
    removed = _read(spark, run.shard_urls(output, "extract", "removed"))
    extract = _union(
        [
            kept.withColumn("status", F.lit(KEPT)) if kept is not None else None,
            removed.withColumn("status", F.lit(REMOVED)) if removed is not None else None,
        ]
    )
    dedup_info = run.stages.get("dedup") or {}
    dedup_removed = _read(spark, run.shard_urls(output, "dedup", "removed"))
    deduped = _read(spark, run.shard_urls(output, "dedup", "deduped"))
    if extract is None and dedup_info.get("inputs"):  # a dedup of the user's own Parquet: its input is the population
        source = _read(spark, dedup_info["inputs"])
        extract = source.withColumn("status", F.lit(KEPT)) if source is not None else None
    final = deduped if deduped is not None else kept
    return {
        "extract": extract,
        "removed": _union([removed, dedup_removed]),
        "final": final,
        "skipped": _read(spark, run.shard_urls(output, "extract", "skipped")),
        "tokenized": _read(spark, run.shard_urls(output, "tokenize", "tokenized")),
    }


def _bounds(values: DataFrame, log: bool) -> dict[str, tuple[float, float, float, float, int]]:
    """Per key: (min, p0.5, p99.5, max, count) of `value` (log10(1 + value) when `log`)."""
    value = F.log10(F.lit(1.0) + F.col("value")) if log else F.col("value")
    rows = (
        values.where(F.col("value").isNotNull() & ~F.isnan("value"))
        .groupBy("key")
        .agg(F.percentile_approx(value, [0.0, 0.005, 0.995, 1.0], 1000).alias("q"), F.count(F.lit(1)).alias("n"))
        .collect()
    )
    return {r["key"]: (*(float(q) for q in r["q"]), int(r["n"])) for r in rows}


def histograms(
    spark: SparkSession,
    values: DataFrame,
    bins: int,
    thresholds: dict[str, list[float]] | None = None,
    log: bool = False,
) -> dict[str, dict[str, Any]]:
    """Fixed-size histograms of `values` (columns key, group, value), one per key, with a series per group.
    The range is the 0.5-99.5 % quantiles (the whole range under QUANTILE_RANGE_FROM values), widened to any
    threshold near the data; values beyond it are counted in the end bins (`clipped` says how many). With `log`
    the bins are even in log10(1 + value)."""
    thresholds = thresholds or {}
    bounds = _bounds(values, log)
    if not bounds:
        return {}
    edges: dict[str, tuple[float, float]] = {}
    for key, (lowest, low, high, highest, n) in bounds.items():
        if n < QUANTILE_RANGE_FROM:  # few values: the whole range (the tails are the interesting part)
            low, high = lowest, highest
        span = highest - lowest
        for t in thresholds.get(key, []):
            t = math.log10(1 + t) if log and t > -1 else t
            # a threshold near the data widens the range to show it; a far one (max_doc_words=100000) does not
            if max(highest, t) - min(lowest, t) <= max(4 * span, 1.0 if span == 0 else 0.0):
                low, high = min(low, t), max(high, t)
        if high <= low:
            high = low + max(abs(low) * 0.1, 1e-3)
        edges[key] = (low, high)
    edge_df = F.broadcast(
        spark.createDataFrame([(k, lo, hi) for k, (lo, hi) in edges.items()], "key string, lo double, hi double")
    )
    value = F.log10(F.lit(1.0) + F.col("value")) if log else F.col("value")
    raw_bin = F.floor((value - F.col("lo")) / (F.col("hi") - F.col("lo")) * bins)
    counted = (
        values.where(F.col("value").isNotNull() & ~F.isnan("value"))
        .join(edge_df, "key")
        .withColumn("below", (raw_bin < 0).cast("int"))
        .withColumn("above", (raw_bin >= bins).cast("int"))
        .withColumn("bin", F.greatest(F.lit(0), F.least(F.lit(bins - 1), raw_bin)).cast("int"))
        .groupBy("key", "group", "bin")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("below").alias("below"), F.sum("above").alias("above"))
        .collect()
    )
    out: dict[str, dict[str, Any]] = {}
    for key, (low, high) in edges.items():
        step = (high - low) / bins
        points = [low + i * step for i in range(bins + 1)]
        out[key] = {
            "edges": [10**p - 1 for p in points] if log else points,
            "log": log,
            "counts": {},
            "clipped": [0, 0],
            "values": bounds[key][4],
            "thresholds": thresholds.get(key, []),
        }
    for row in counted:
        entry = out[row["key"]]
        series = entry["counts"].setdefault(row["group"], [0] * bins)
        series[row["bin"]] += int(row["n"])
        entry["clipped"][0] += int(row["below"])
        entry["clipped"][1] += int(row["above"])
    return out


def _hash_rank(seed: int) -> Column:
    return F.xxhash64(F.lit(seed), F.col("id"))


def bottom_k(values: DataFrame, k: int, seed: int, sizes: dict[str, int]) -> dict[str, list[float]]:
    """Per key, the values of the (at most) k rows with the smallest xxhash64(seed, id), sorted: a bounded
    sample that picks the same documents in any run over the same ids. `sizes` (rows per key) sets a hash cut-off
    per key that lets about 1.5 k + 100 rows through, in parallel; only those are ranked (one small shuffle),
    never a key's whole column in one task."""
    limit = {key: _hash_cutoff((1.5 * k + 100) / n) for key, n in sizes.items() if n}
    if not limit:
        return {}
    cutoffs = F.broadcast(values.sparkSession.createDataFrame(list(limit.items()), "key string, _cutoff long"))
    window = Window.partitionBy("key").orderBy("_h", "id")
    rows = (
        values.where(F.col("value").isNotNull() & ~F.isnan("value"))
        .withColumn("_h", _hash_rank(seed))
        .join(cutoffs, "key")
        .where(F.col("_h") <= F.col("_cutoff"))
        .withColumn("_n", F.row_number().over(window))
        .where(F.col("_n") <= k)
        .groupBy("key")
        .agg(F.sort_array(F.collect_list("value")).alias("values"))
        .collect()
    )
    return {r["key"]: [float(v) for v in r["values"]] for r in rows}


def _hash_cutoff(share: float) -> int:
    """The xxhash64 value below which about `share` of uniformly spread 64-bit hashes fall."""
    if share >= 1:
        return 2**63 - 1
    return int(-(2**63) + share * 2**64)


def _sizes(histos: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {key: h["values"] for key, h in histos.items()}


def _reason_group(column: str = "reason") -> Column:
    return F.when(F.col(column).startswith("cluster="), F.lit(CLUSTER_REASON)).otherwise(F.col(column))


def _tld() -> Column:
    """The last label of the URL's host (com, de, ...)."""
    host = F.regexp_extract(F.col("url"), r"^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#]+)", 1)
    return F.regexp_extract(F.lower(host), r"\.([a-z0-9-]+)\.?$", 1)


def profile(spark: SparkSession, config: Config, output: str, run: Run) -> dict[str, Any]:
    """What the report and `corpus drift` need from an output folder (see the module docstring)."""
    frames = documents(spark, output, run)
    bins, seed, k = config.report.bins, config.drift.seed, config.drift.sample_size
    thresholds = configured_thresholds(run.config.get("filters") or {})  # what the run used
    out: dict[str, Any] = {"bins": bins, "seed": seed, "sample_size": k, "thresholds": thresholds}
    histo: dict[str, Any] = {}
    numeric: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    extract = frames["extract"]

    if extract is not None:
        extract = extract.persist()
        if "signals" in extract.columns:
            entries = signal_entries(extract.select("id", "status", "removed_by", "signals"))
            filter_name = F.substring_index(F.col("key"), ".", 1)
            group = (
                F.when(F.col("status") == KEPT, F.lit("kept"))
                .when(F.col("removed_by") == filter_name, F.lit("removed by this filter"))
                .otherwise(F.lit("removed by another step"))
            )
            entries = entries.withColumn("group", group).select("id", "key", "group", "value").persist()
            histo["signals"] = histograms(spark, entries, bins, thresholds)
            numeric.update(bottom_k(entries, k, seed, _sizes(histo["signals"])))
            entries.unpersist()
        if QUALITY_COLUMN in extract.columns:
            quality = extract.select("id", F.lit(QUALITY_COLUMN).alias("key"), F.col("status").alias("group"),
                                     F.col(QUALITY_COLUMN).cast("double").alias("value"))  # fmt: skip
            histo["quality"] = histograms(spark, quality, bins)
            numeric.update(bottom_k(quality, k, seed, _sizes(histo["quality"])))

        # Per shard (input file): documents by status, removals by step, languages. Bounded by files x languages.
        shard_rows = (
            extract.groupBy("source_path", "status", "removed_by", "language")
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
            if "source_path" in extract.columns
            else []
        )
        shards: dict[str, dict[str, Any]] = {}
        for r in shard_rows:
            shard = shards.setdefault(
                r["source_path"] or "(unknown)", {"documents": 0, "kept": 0, "removed": {}, "languages": {}}
            )
            shard["documents"] += r["n"]
            if r["status"] == KEPT:
                shard["kept"] += r["n"]
            else:
                shard["removed"][r["removed_by"]] = shard["removed"].get(r["removed_by"], 0) + r["n"]
            language = r["language"] or "(none)"
            shard["languages"][language] = shard["languages"].get(language, 0) + r["n"]
        out["shards"] = [{"source_path": path, **info} for path, info in sorted(shards.items())]
        if frames["skipped"] is not None and "source_path" in frames["skipped"].columns:
            for path, n in frames["skipped"].groupBy("source_path").count().collect():
                for shard in out["shards"]:
                    if shard["source_path"] == path:
                        shard["skipped"] = n
        extract.unpersist()

    final = frames["final"]
    if final is not None:
        lengths = final.select("id", F.lit("characters").alias("key"), F.lit("kept").alias("group"),
                               F.length("text").cast("double").alias("value"))  # fmt: skip
        histo["length"] = histograms(spark, lengths, bins, log=True)
        numeric["length.characters"] = bottom_k(lengths, k, seed, _sizes(histo["length"])).get("characters", [])
        if "minhash_cluster_size" in final.columns:
            sizes = final.groupBy("minhash_cluster_size").count().orderBy("minhash_cluster_size").collect()
            out["cluster_sizes"] = {str(size): n for size, n in sizes}
        if "url" in final.columns:
            out["tlds"] = {tld or "(none)": n for tld, n in final.groupBy(_tld().alias("tld")).count().collect()}
        counts["kept"] = sum(out["tlds"].values()) if "tlds" in out else final.count()
        if QUALITY_COLUMN in final.columns and extract is None:
            quality = final.select("id", F.lit(QUALITY_COLUMN).alias("key"), F.lit("kept").alias("group"),
                                   F.col(QUALITY_COLUMN).cast("double").alias("value"))  # fmt: skip
            histo["quality"] = histograms(spark, quality, bins)
            numeric.update(bottom_k(quality, k, seed, _sizes(histo["quality"])))
    tokenized = frames["tokenized"]
    if tokenized is not None:
        tokens = tokenized.select("id", F.lit("tokens").alias("key"), F.lit("kept").alias("group"),
                                  F.col("token_count").cast("double").alias("value"))  # fmt: skip
        histo["tokens"] = histograms(spark, tokens, bins, log=True)
        numeric["tokens.count"] = bottom_k(tokens, k, seed, _sizes(histo["tokens"])).get("tokens", [])
        counts["kept_tokens"] = int(tokenized.agg(F.sum("token_count")).first()[0] or 0)

    removed = frames["removed"]
    outcomes: dict[str, int] = {}
    if removed is not None:
        n = config.report.samples_per_reason
        window = Window.partitionBy("removed_by", "_group").orderBy(_hash_rank(seed), F.col("id"))
        text = F.substring("text", 1, 300) if "text" in removed.columns else F.lit(None).cast("string")
        columns = [c if c in removed.columns else F.lit(None).alias(c) for c in ("url", "source_path", "source_offset")]
        picked = (
            removed.withColumn("_group", _reason_group())
            .withColumn("_n", F.row_number().over(window))
            .where(F.col("_n") <= n)
            .select("removed_by", "reason", "_group", "id", *columns, text.alias("text"))
            .orderBy("removed_by", "_group", "_n")
            .collect()
        )
        out["samples"] = [r.asDict() for r in picked]
        for by, group, count in removed.groupBy("removed_by", _reason_group().alias("g")).count().collect():
            outcomes[f"{by}:{group}"] = count
    if final is not None:
        outcomes["kept"] = counts["kept"]
    documents_in = sum(s["documents"] for s in out.get("shards", [])) if extract is not None else 0
    documents_in = documents_in or (extract.count() if extract is not None else sum(outcomes.values()))
    counts["documents"] = documents_in
    rates: dict[str, float] = {}
    for key, count in outcomes.items():
        if key != "kept":
            step = key.split(":", 1)[0]
            rates[step] = rates.get(step, 0.0) + count / max(documents_in, 1)
    languages: dict[str, int] = {}
    for shard in out.get("shards", []):
        for language, count in shard["languages"].items():
            languages[language] = languages.get(language, 0) + count
    out["histograms"] = histo
    out["drift"] = {
        "method": f"numeric signals: bounded seeded samples (at most {k} values per signal, the documents with "
        f"the smallest xxhash64({seed}, id)); categorical shares and rates: exact counts",
        "numeric": numeric,
        "categorical": {"language": languages, "outcome": outcomes, "tld": out.get("tlds", {})},
        "removal_rates": rates,
        "counts": counts,
    }
    return out


def stratified_sample(
    df: DataFrame,
    by: list[str],
    seed: int,
    per_stratum: int | None = None,
    fraction: float | None = None,
    cap: int | None = None,
) -> DataFrame:
    """Per stratum (the distinct values of the `by` columns) the rows with the smallest xxhash64(seed, id), ties by
    id: min(per_stratum, size) of them, or ceil(fraction x size), at most `cap`. One shuffle (a window over the
    strata); the choice depends on the data and the seed alone, not on the partitioning. Adds `_stratum_size`
    and `_stratum_rank`."""
    if (per_stratum is None) == (fraction is None):
        raise ValueError("give per_stratum or fraction")
    strata = Window.partitionBy(*by)
    ranked = Window.partitionBy(*by).orderBy(_hash_rank(seed), F.col("id"))
    quota = F.lit(per_stratum) if per_stratum is not None else F.ceil(F.col("_stratum_size") * F.lit(fraction))
    if cap is not None:
        quota = F.least(quota, F.lit(cap))
    return (
        df.withColumn("_stratum_size", F.count(F.lit(1)).over(strata))
        .withColumn("_stratum_rank", F.row_number().over(ranked))
        .where(F.col("_stratum_rank") <= quota)
    )


__all__ = ["bottom_k", "documents", "histograms", "profile", "signal_entries", "stratified_sample"]


def population(frames: dict[str, DataFrame | None]) -> DataFrame | None:
    """Every document once, for spot checks: the kept ones at the end (`status` kept) and every removed one
    (extraction's and dedup's, `status` removed), with the strata columns `shard` (the source file),
    `reason_group` (dedup's per-cluster reasons as one) and, when a classifier ran, `quality_bucket` (the
    quality score rounded down to a tenth)."""
    final, removed = frames["final"], frames["removed"]
    out = _union(
        [
            final.withColumn("status", F.lit(KEPT)) if final is not None else None,
            removed.withColumn("status", F.lit(REMOVED)) if removed is not None else None,
        ]
    )
    if out is None:
        return None
    for name in ("removed_by", "reason", "source_path"):
        if name not in out.columns:
            out = out.withColumn(name, F.lit(None).cast("string"))
    out = out.withColumn("shard", F.col("source_path")).withColumn("reason_group", _reason_group())
    if QUALITY_COLUMN in out.columns:
        out = out.withColumn("quality_bucket", F.floor(F.col(QUALITY_COLUMN) * 10) / 10)
    return out


def sample_documents(
    spark: SparkSession,
    output: str,
    run: Run,
    by: list[str],
    seed: int,
    per_stratum: int | None = None,
    fraction: float | None = None,
    cap: int | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The stratified spot-check sample of an output folder (`corpus sample`), as rows sorted by stratum and
    rank, and the columns the population has (to report a misspelt stratum column)."""
    docs = population(documents(spark, output, run))
    if docs is None:
        return [], []
    missing = [c for c in by if c not in docs.columns]
    if missing:
        return [], docs.columns
    picked = stratified_sample(docs, by, seed, per_stratum, fraction, cap)
    rows = picked.orderBy(*[F.col(c).asc_nulls_first() for c in by], "_stratum_rank").collect()
    return [r.asDict(recursive=True) for r in rows], docs.columns


__all__ += ["population", "sample_documents"]
