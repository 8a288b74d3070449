"""Classify stage: quality classifiers over documents, between extraction and dedup (DCLM / FineWeb-Edu style).

    corpus classify input=PARQUET... output=OUT classifier.model=MODEL_DIR     # any Parquet with `id`, `text`
    corpus run CONF.yaml stages=[extract,classify,stats,dedup,tokenize,report] classifier.model=...

1. Scores, in Python workers (`mapInArrow`, models loaded once per worker, `classifier.batch_rows` documents
   per model call): each document's `quality_score`, the classifiers' signals and the threshold decision,
   written once to a small staging table (no text), so the models run once whatever follows.
2. `classifier.top_fraction`: the cut is the (1 - fraction) quantile of quality_score over the whole run
   (Spark's approxQuantile with relative error `classifier.quantile_error`: the kept share is within that
   of the target; the same input and Spark settings give the same cut). Documents scoring >= the cut are kept.
3. Write: classified/ (kept documents with `quality_score`, signals appended), removed/classify-*.parquet
   (removed_by `classifier`, reason `<name>_below_threshold` or `<name>_below_top_fraction`),
   stats/classify.json; the manifest entry lists each model's name, kind, sha256 and card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import MapType

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, ConfigError, config_from_dict
from corpus.io import storage
from corpus.jobs.common import finish_stage, log, read_shards, write_sharded
from corpus.quality.apply import SCORE_FIELDS, Scorer, top_fraction_reason
from corpus.quality.models import model_sha256, read_card

REMOVED_BY = "classifier"
KEYS = [pa.field("_shard", pa.int32()), pa.field("_row", pa.int64())]


def score_function(config_dict: dict) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = Scorer(config_from_dict(config_dict).classifier)
        for out in scorer.score_batches(batches, ["_shard", "_row"]):
            yield out.cast(pa.schema([*KEYS, *SCORE_FIELDS]))

    return score


def models_record(config: Config) -> list[dict]:
    """What the manifest says of each model: name, where it is, kind, sha256, its card."""
    out = []
    for name, spec in config.classifier.models().items():
        card = read_card(spec.model or "")
        out.append(
            {"name": name, "model": spec.model, "kind": card.get("kind", "fasttext"),
             "sha256": model_sha256(spec.model or ""), "card": card or None}
        )  # fmt: skip
    return out


def run_classify(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    started = manifest.now()
    output = storage.absolute(output)
    settings = config.classifier
    if not settings.models():
        raise ConfigError(
            "classifier.model: no classifier configured (a model folder, or classifier.classifiers.<name>.model)"
        )
    models = models_record(config)  # on the driver, before any task: a missing model fails here
    tmp = storage.join(output, "_tmp", f"classify-{run.run_id}")
    files = sorted(inputs)
    base, columns = read_shards(spark, files, "classify")
    scores_path = storage.join(tmp, "scores")
    base.select("_shard", "_row", "text").mapInArrow(
        score_function(config.to_dict()), from_arrow_schema(pa.schema([*KEYS, *SCORE_FIELDS]))
    ).write.parquet(scores_path)
    scores = spark.read.parquet(scores_path)

    selection: dict = {"decide": settings.decide or next(iter(settings.models()))}
    if settings.top_fraction is not None:
        cut = scores.approxQuantile("quality_score", [1 - settings.top_fraction], settings.quantile_error)
        cutoff = cut[0] if cut else float("inf")
        reason = F.when(F.col("quality_score") < F.lit(cutoff), F.lit(top_fraction_reason(selection["decide"])))
        scores = scores.withColumn("_quality_reason", reason)
        selection.update(top_fraction=settings.top_fraction, quantile_error=settings.quantile_error, cutoff=cutoff)
        log(f"classify: top {settings.top_fraction:.2%} by quality_score: cut at {cutoff:.6g}")
    else:
        selection["thresholds"] = {m["name"]: _threshold(config, m) for m in models}

    full = base.join(scores, ["_shard", "_row"])
    if "signals" in columns:
        old = F.col("signals")
        if isinstance(base.schema["signals"].dataType, MapType):
            old = F.map_entries(old)
        merged = F.concat(F.coalesce(old, F.array().cast(full.schema["_quality_signals"].dataType)), "_quality_signals")
    else:
        merged = F.col("_quality_signals")
    full = full.withColumn("signals", merged).drop("_quality_signals")
    kept = full.where(F.col("_quality_reason").isNull()).drop("_quality_reason")
    removed = (
        full.where(F.col("_quality_reason").isNotNull())
        .withColumn("removed_by", F.lit(REMOVED_BY))
        .withColumn("reason", F.col("_quality_reason"))
        .drop("_quality_reason")
    )
    written = {
        "classified": write_sharded(kept, "_shard", "_row", tmp, output, "classified", "part"),
        "removed": write_sharded(removed, "_shard", "_row", tmp, output, "removed", "classify", replace=False),
    }
    stats = classify_stats(spark, written, selection)
    storage.remove(tmp)
    storage.remove(storage.join(output, "_tmp"))
    finish_stage(spark, run, output, "classify", started, written, stats, inputs=files, models=models)


def _threshold(config: Config, model: dict) -> float:
    spec = config.classifier.models()[model["name"]]
    if spec.threshold is not None:
        return spec.threshold
    return float(((model["card"] or {}).get("metrics") or {}).get("threshold", 0.5))


def classify_stats(spark: SparkSession, written: dict[str, list[str]], selection: dict) -> dict:
    """Counts from the written shards: kept, removed by reason, the score distribution's quantiles."""
    kept = spark.read.parquet(*written["classified"]) if written["classified"] else None
    removed = spark.read.parquet(*written["removed"]) if written["removed"] else None
    stats: dict = {"selection": selection}
    stats["kept"] = kept.count() if kept is not None else 0
    stats["removed"] = dict(removed.groupBy("reason").count().collect()) if removed is not None else {}
    stats["documents"] = stats["kept"] + sum(stats["removed"].values())
    stats["kept_fraction"] = stats["kept"] / stats["documents"] if stats["documents"] else None
    frames = [f.select("quality_score") for f in (kept, removed) if f is not None]
    if frames:
        both = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
        probabilities = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
        values = both.approxQuantile("quality_score", probabilities, 0.001)
        stats["quality_score_quantiles"] = dict(zip([str(p) for p in probabilities], values))
    return stats
