"""Report stage: the profile of the output folder (histograms, per-shard table, samples per removal reason,
drift inputs; corpus.jobs.audit, in Spark from the written Parquet) to stats/profile.json, the drift from a
baseline run when `report.baseline` names one (stats/drift.json), then report.html (corpus.audit.report).

    corpus report OUT [baseline=OUT_B]
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from corpus.audit import manifest
from corpus.audit.drift import compare, manifest_differences
from corpus.audit.manifest import Run
from corpus.audit.report import PROFILE, load_json, write_report
from corpus.config import Config, ConfigError
from corpus.io import storage
from corpus.jobs.audit import profile
from corpus.jobs.common import finish_stage, log, write_json

DRIFT = "drift.json"


def output_profile(spark: SparkSession, config: Config, output: str) -> tuple[Run, dict[str, Any]]:
    """An output folder's run and profile: its stats/profile.json, else computed now (nothing is written)."""
    output = storage.absolute(output)
    run = manifest.load(output)
    if run is None:
        raise ConfigError(f"{output} has no manifest.json: not an output folder (or its run did not finish)")
    return run, load_json(output, "stats", PROFILE) or profile(spark, config, output, run)


def drift_between(spark: SparkSession, config: Config, baseline: str, output: str) -> dict[str, Any]:
    """The drift from `baseline` (A) to `output` (B), with what differs between their manifests."""
    run_a, profile_a = output_profile(spark, config, baseline)
    run_b, profile_b = output_profile(spark, config, output)
    drift = compare(profile_a, profile_b, config.drift)
    drift["runs"] = {"a": storage.absolute(baseline), "b": storage.absolute(output)}
    drift["manifests"] = manifest_differences(run_a, run_b)
    return drift


def run_report(spark: SparkSession, config: Config, inputs: list[str], output: str, run: Run) -> None:
    started = manifest.now()
    output = storage.absolute(output)
    stats_dir = storage.join(output, "stats")
    written: dict[str, list[str]] = {
        "stats": [write_json(storage.join(stats_dir, PROFILE), profile(spark, config, output, run))]
    }
    drift = None
    baseline = config.report.baseline
    if baseline:
        drift = drift_between(spark, config, baseline, output)
        written["stats"].append(write_json(storage.join(stats_dir, DRIFT), drift))
        log(
            f"report: drift from {baseline}: "
            + (f"{len(drift['crossed'])} threshold(s) crossed" if drift["crossed"] else "within thresholds")
        )
    path = write_report(output, drift=drift, baseline=baseline)
    written["report.html"] = [path]
    finish_stage(spark, run, output, "report", started, written)
    log(f"report: {path}")
