"""Classify stage: quality classifiers over documents, between extraction and dedup (DCLM / FineWeb-Edu style).

    corpus classify input=PARQUET... output=OUT classifier.model=MODEL_DIR     # any Parquet with `id`, `text`
    corpus run CONF.yaml stages=[extract,classify,stats,dedup,tokenize,report] classifier.model=...

1. Scores, in Python workers (`mapInArrow`, models loaded once per worker, `classifier.batch_rows` documents
   per model call): each document's `quality_score`, the classifiers' signals and the threshold decision,
   written once to a small staging table (no text), so the models run once whatever follows.
2. `classifier.top_fraction`: the cut is the (1 - fraction) quantile of quality_score over the whole run
   (Spark's approxQuantile with relative error `classifier.quantile_error`: the kept share is within that
   of the target; the same input and Spark settings give the same cut). Documents scoring >= the cut are kept.
3. Apply, where the text lives (as dedup's apply: the text is never shuffled): the scores are written per input
   shard, sorted by row; one task per input shard reads the shard beside them and writes classified/part-<shard>
   (kept documents with `quality_score`, signals appended) and removed/classify-<shard>.parquet (removed_by
   `classifier`, reason `<name>_below_threshold` or `<name>_below_top_fraction`), in input order. Then
   stats/classify.json; the manifest entry lists each model's name, kind, sha256 and card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.config import Config, ConfigError, config_from_dict
from corpus.io import storage
from corpus.io.inputs import InputError
from corpus.jobs.common import (
    apply_per_shard,
    discard_staging,
    finish_stage,
    log,
    publish_per_shard,
    read_shards,
    write_outcome,
)
from corpus.quality.apply import SCORE_FIELDS, Scorer, top_fraction_reason
from corpus.quality.models import model_sha256, read_card
from corpus.schema import SIGNALS_TYPE, concat_signals

REMOVED_BY = "classifier"
KEYS = [pa.field("_shard", pa.int32()), pa.field("_row", pa.int64())]


def score_function(config_dict: dict) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = Scorer(config_from_dict(config_dict).classifier)
        for out in scorer.score_batches(batches, ["_shard", "_row"]):
            yield out.cast(pa.schema([*KEYS, *SCORE_FIELDS]))

    return score


#: What the apply step sets: on kept rows, on removed rows (as Spark's withColumn: in place, or at the end).
APPLY_FIELDS = (
    [pa.field("quality_score", pa.float64()), pa.field("signals", SIGNALS_TYPE)],
    [
        pa.field("quality_score", pa.float64()),
        pa.field("signals", SIGNALS_TYPE),
        pa.field("removed_by", pa.string()),
        pa.field("reason", pa.string()),
    ],
)


def classify_split(batch: pa.RecordBatch, part: pa.Table) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """A batch of an input shard and its scores -> the kept rows (with `quality_score`, signals merged) and the
    removed ones (also `removed_by`, `reason`)."""
    names = batch.schema.names
    columns = dict(zip(names, batch.columns))
    old = batch.column("signals") if "signals" in names else None
    columns["signals"] = concat_signals(old, part.column("_quality_signals").combine_chunks())
    columns["quality_score"] = part.column("quality_score").combine_chunks()
    reason = part.column("_quality_reason").combine_chunks()
    keep = pc.is_null(reason)
    drop = pc.invert(keep)
    kept = {name: column.filter(keep) for name, column in columns.items()}
    removed = {name: column.filter(drop) for name, column in columns.items()}
    removed["removed_by"] = pa.array([REMOVED_BY] * len(removed["quality_score"]), pa.string())
    removed["reason"] = reason.filter(drop)
    return kept, removed


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
    if "quality_score" in columns:  # its signals would hold the classifiers' twice
        raise InputError(
            f"input: {files[0]} already has quality_score (classified/ of an earlier run?): classify documents that "
            "were not classified, e.g. the run's filtered/"
        )
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

    # apply where the text lives: one task per input shard reads it beside its scores (nothing is shuffled)
    outcome_path = storage.join(tmp, "outcome")
    write_outcome(scores.select("_shard", "_row", *(f.name for f in SCORE_FIELDS)), outcome_path)
    staging = storage.join(tmp, "apply")
    compression = config.output_options.compression
    results = apply_per_shard(spark, files, outcome_path, staging, APPLY_FIELDS, lambda: classify_split, compression)
    written = publish_per_shard(results, output, "classified", "classify")
    stats = classify_stats(spark, written, selection)
    discard_staging("classify", tmp, storage.join(output, "_tmp"))
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
