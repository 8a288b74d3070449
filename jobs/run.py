"""Run a recipe's stages in order (`corpus run`), or some of them (`corpus extract`, spark-submit jobs/*.py)."""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession

from corpus import manifest, storage
from corpus.assets import AssetError
from corpus.config import Config, ConfigError, load_config
from corpus.inputs import InputError, expand_inputs, expand_parquet
from corpus.jobs.session import spark_session, ui_url


def log(message: str) -> None:
    print(f"corpus: {message}", file=sys.stderr, flush=True)


def resolve_inputs(config: Config) -> list[str]:
    if not config.input:
        raise ConfigError("input: no input given; pass input=PATH (files, folders, globs or URLs; comma-separated)")
    inputs = expand_inputs(config.input)
    return inputs[: config.limit] if config.limit else inputs


def run_stages(config: Config, spark: SparkSession | None = None) -> dict:
    """Run `config.stages` into `config.output`; return the manifest.

    A run that includes `extract` starts a manifest (or continues the one of an identical earlier run);
    later stages run alone (`corpus dedup output=OUT`) add themselves to the existing manifest. `dedup` reads
    this output's filtered/ when it has one, else `input=` (any Parquet with `id` and `text`)."""
    if not config.output:
        raise ConfigError("output: no output folder given; pass output=PATH")
    from corpus.jobs.dedup import run_dedup
    from corpus.jobs.extract import run_extract
    from corpus.jobs.stats import run_stats
    from corpus.jobs.tokenize import run_tokenize
    from corpus.report import write_report

    output = storage.absolute(config.output)
    existing = manifest.load(output)
    if "extract" in config.stages:
        run = manifest.start(output, config, resolve_inputs(config))
    elif existing is not None and "extract" in existing["stages"]:
        if config.input:
            log(f"input= is ignored: {output} has extracted documents (filtered/), which are the input")
        run = existing
    elif config.input:  # a later stage alone, over the user's own Parquet
        run = manifest.start(output, config, expand_parquet(config.input))
    elif existing is not None:
        run = existing
    else:
        raise ConfigError(f"output: {output} has no manifest.json; run the extract stage first or give input=")
    run["_current_config_sha256"] = config.sha256()
    spark = spark or spark_session(config)
    if ui_url(spark):
        log(f"Spark UI: {ui_url(spark)}")
    for stage in config.stages:
        if stage == "extract":
            log(f"extract: {len(run['inputs'])} input file(s) -> {output}")
            run_extract(spark, config, run["inputs"], output, run)
        elif stage == "stats":
            log("stats: counting the written shards")
            run_stats(spark, output, run)
        elif stage == "dedup":
            inputs = stage_inputs(run, output, config, "extract", "filtered", "dedup")
            if not inputs:
                log("dedup: nothing to deduplicate (no kept documents)")
                continue
            log(f"dedup: {len(inputs)} shard(s), scope {config.dedup.scope}")
            run_dedup(spark, config, inputs, output, run)
        elif stage == "tokenize":
            inputs = stage_inputs(run, output, config, "dedup", "deduped", "tokenize")
            if not inputs:
                inputs = stage_inputs(run, output, config, "extract", "filtered", "tokenize")
            if not inputs:
                log("tokenize: nothing to tokenize (no documents)")
                continue
            log(f"tokenize: {len(inputs)} shard(s) with {config.tokenize.tokenizer}")
            run_tokenize(spark, config, inputs, output, run)
        elif stage == "report":
            path = write_report(output)
            log(f"report: {path}")
    log(f"done: {output} (manifest.json lists every shard; `corpus verify {output}` re-checks them)")
    return run


def stage_inputs(run: dict, output: str, config: Config, previous: str, folder: str, stage: str) -> list[str]:
    """The shards a stage reads: what `previous` wrote to `folder` in this output, else `input=` Parquet."""
    written = run["stages"].get(previous, {}).get("outputs", {}).get(folder)
    if written is not None:
        return [storage.join(output, shard["path"]) for shard in written]
    if config.input and not run["stages"].get("extract"):
        return expand_parquet(config.input)
    if previous == "dedup":
        return []  # tokenize falls back to filtered/
    raise ConfigError(f"{stage}: no input; give input=PARQUET or run the earlier stages into this output first")


def submit_main(argv: list[str] | None, stages: list[str], description: str | None) -> int:
    """Entry point of `spark-submit jobs/<stage>.py --config CONF key=value ...`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="recipe YAML (default: the built-in FineWeb settings)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. input=... output=...")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        config.stages = stages
        run_stages(config)
    except ConfigError as exc:
        print(f"corpus: configuration error: {exc}", file=sys.stderr)
        return 2
    except (InputError, AssetError) as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return 2
    return 0
