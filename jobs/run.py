"""Run a recipe's stages in order (`corpus run`), or some of them (`corpus extract`, spark-submit jobs/*.py)."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from corpus.assets import AssetError, cache_dir, is_url
from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.audit.stats import funnel_text, read_stats
from corpus.config import STAGES as STAGE_NAMES
from corpus.config import Config, ConfigError, load_config
from corpus.io import remote, storage
from corpus.io.documents import check_inputs
from corpus.io.inputs import InputError, expand_inputs, expand_parquet, refuse_output
from corpus.jobs.common import log
from corpus.jobs.progress import Progress
from corpus.jobs.session import hadoop_has_filesystem, ship_user_modules, spark_session, storage_failure, ui_url
from corpus.jobs.stages import STAGES

REPORT = "report.html"


def resolve_inputs(config: Config, exclude: str | None = None) -> list[str]:
    """The input WARC files; none from under `exclude` (the output)."""
    if not config.input:
        raise ConfigError("input: no input given; pass input=PATH (files, folders, globs or URLs; comma-separated)")
    inputs = expand_inputs(config.input, config.storage, config.input_format, exclude=exclude)
    inputs = inputs[: config.limit] if config.limit else inputs
    check_inputs(inputs, config.input_format)
    return inputs


def _describe_inputs(files: list[str], output: str) -> list[tuple[str, int | None]]:
    """Inputs as fingerprinted: local files with their size; remote ones by name (a HEAD request per file
    would cost minutes for a whole crawl, and published crawl files do not change). Shards of the output itself
    are named relative to it, so a run resumed in another staging folder finds its stages current."""
    inside = output.rstrip("/") + "/"
    return [
        (f"./{f[len(inside) :]}" if f.startswith(inside) else f, None if is_url(f) else storage.size(f)) for f in files
    ]


def run_stages(config: Config, spark: SparkSession | None = None) -> Run:
    """Run `config.stages` into `config.output`; return the run record (what manifest.json holds).

    Each stage (jobs/stages: the stage table) has a fingerprint (its settings and its inputs); a stage whose
    fingerprint matches what the manifest recorded, with its files in place, is skipped, so rerunning a finished
    recipe is a no-op and a changed setting redoes only what depends on it. Before a stage runs, it and
    everything downstream of it leave the manifest (and their files are deleted), so an interrupted run never
    passes `corpus verify`. `dedup` reads this output's filtered/ when it has one, else `input=` (any Parquet
    with `id` and `text`); `tokenize` reads deduped/, else filtered/, else `input=`."""
    if not config.output:
        raise ConfigError("output: no output folder given; pass output=PATH")
    if "refetch" in config.stages and config.recipe != "finepdfs":
        raise ConfigError("stages: refetch is a stage of the PDF recipe (recipe: finepdfs, conf/finepdfs.yaml)")
    remote.use(config.storage)
    target = storage.absolute(config.output)
    reads_warcs = "extract" in config.stages or "refetch" in config.stages
    refuse_output(target, config.input if reads_warcs else [])  # not /, ~, or a folder holding the input
    extract_inputs = resolve_inputs(config, exclude=target) if reads_warcs else None  # before Spark: fail fast
    existing = check_output(target, config, extract_inputs)
    if _run_inputs(config, existing, extract_inputs) is not None and extract_inputs is None:
        check_parquet_input(config)  # a later stage alone over the user's own Parquet
    spark = spark or spark_session(config)
    if ui_url(spark):
        log(f"Spark UI: {ui_url(spark)}")
    for shipped in ship_user_modules(spark, config):
        log(f"your filter's code goes to the executors: {shipped}")
    output = working_folder(spark, config, target)
    run = _open_run(config, output, extract_inputs)
    run.current_config_sha256 = config.sha256()
    run.plan(config.stages, STAGE_NAMES)
    try:
        with quiet_interrupt(spark):
            _run_loop(spark, config, run, output, target)
    except KeyboardInterrupt:
        done = [s for s in run.planned_stages if s in run.stages]
        log(
            f"interrupted. Finished: {', '.join(done) or 'nothing yet'}; pending: {', '.join(run.pending()) or '-'}. "
            "Run the same command again to resume (finished work is kept)."
        )
        raise
    _publish(output, target, "run")
    found = read_stats(output)
    if funnel := funnel_text(found["stats"], found["dedup"], found["tokenize"]):
        log("the funnel:\n" + funnel)
    log(f"done: {target} (manifest.json lists every shard; `corpus verify {target}` re-checks them)")
    return run


@contextmanager
def quiet_interrupt(spark: SparkSession) -> Iterator[None]:
    """Ctrl-C cancels the Spark jobs quietly: the JVM's logging is switched off before the jobs are cancelled
    (else every killed task logs a stack trace) and KeyboardInterrupt is raised for the caller to report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def cancel() -> None:  # from another thread: the main thread's py4j connection is mid-call
        with contextlib.suppress(Exception):
            spark.sparkContext.setLogLevel("OFF")
            spark.sparkContext.cancelAllJobs()

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        logging.disable(logging.CRITICAL)  # py4j logs the interrupted call's traceback on the root logger
        threading.Thread(target=cancel, daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        logging.disable(logging.NOTSET)


def _run_loop(spark: SparkSession, config: Config, run: Run, output: str, target: str) -> None:
    writable = False
    for name in config.stages:
        stage = STAGES[name]
        inputs = stage.inputs(run, output, config)
        if stage.settings is not None:
            fingerprint = manifest.fingerprint(name, stage.settings(config), _describe_inputs(inputs, output))
            run.fingerprints[name] = fingerprint
            if run.stages.get(name, {}).get("fingerprint") == fingerprint:
                # same settings and inputs: skip it if its shards are as it wrote them (output_options.check_shards)
                stale = manifest.stale_shard(run, output, name, config.output_options.check_shards)
                if stale is None:
                    log(f"{name}: up to date (same settings and inputs), skipped")
                    continue
                log(f"{name}: {stale}; redoing the stage")
            if not writable:  # before the first write: read-only storage fails here, in one line, not in Spark
                storage.check_writable(output)
                writable = True
            manifest.drop_stages(run, output, [name, *stage.downstream])
            storage.remove(storage.join(output, REPORT))  # it shows what is being redone: stale until rendered
        if stage.reads_parquet and not inputs:
            log(f"{name}: nothing to do (no documents)")
            if stage.settings is not None:  # recorded as done, so that verify sees the run complete
                manifest.record_stage(run, output, name, manifest.now(), {})
        elif stage.reads_parquet and (unreadable := [f for f in inputs if not hadoop_has_filesystem(spark, f)][:1]):
            raise ConfigError(
                f"input: Spark cannot read {unreadable[0]}: it has no Hadoop filesystem for that scheme (the pip "
                'pyspark has no S3A connector; see docs/CLUSTER.md, "Object storage"), so copy the Parquet '
                "to a local or hdfs:// folder, or add the connector"
            )
        else:
            if stage.settings is not None:
                log(f"{name}: {stage.describe(config, inputs)}")
            # extraction draws its own progress line (files and documents); the others show their Spark stages
            own_line = name == "extract"
            with contextlib.nullcontext() if own_line else Progress(spark.sparkContext, name):
                stage.runner(spark, config, inputs, output, run)
        _publish(output, target, name)


def _publish(output: str, target: str, stage: str) -> None:
    if output != target:
        copied = storage.mirror(output, target)
        log(f"{stage}: copied to {target} ({copied['copied']} file(s) copied, {copied['kept']} unchanged)")


def working_folder(spark: SparkSession, config: Config, target: str) -> str:
    """Where the stages write: `target` itself when Spark's Hadoop layer can write it, else a staging folder
    (storage.staging) that is copied to `target` after every stage. A staging folder without a manifest is
    first filled from `target`, so finished stages of an earlier run (on another machine) are not redone."""
    if hadoop_has_filesystem(spark, target):
        return target
    staging = storage.absolute(
        config.storage.staging or str(cache_dir() / "staging" / hashlib.sha256(target.encode()).hexdigest()[:16])
    )
    log(
        f"output: this Spark has no Hadoop filesystem for {target.split('://', 1)[0]}://, so stages write to "
        f"{staging} and each finished stage is copied to {target} (manifest.json last)"
    )
    if manifest.load(staging) is None and manifest.load(target) is not None:
        copied = storage.mirror(target, staging, state=storage.join(staging, storage.MIRROR_STATE))
        log(f"output: resuming from {target} ({copied['copied']} file(s) fetched)")
    return staging


#: What our runs leave in an output folder besides their shards while they work (an interrupted first run has
#: no manifest yet, but its _progress/ says whose files these are).
WORK_FILES = ("_progress/", "_tmp/", storage.MIRROR_STATE)


def _run_inputs(config: Config, existing: Run | None, extract_inputs: list[str] | None) -> list[str] | None:
    """The inputs that identify the run this command makes: the input files when extracting, the input=
    Parquet when a later stage runs alone over the user's own data, else None (the output's run continues)."""
    if extract_inputs is not None:
        return extract_inputs
    if existing is not None and "extract" in existing.stages:
        return None
    return expand_parquet(config.input) if config.input else None


def check_output(target: str, config: Config, extract_inputs: list[str] | None) -> Run | None:
    """Refuse an output folder that holds something else, unless `overwrite=true`: files of no run (no
    manifest.json), or a run of another recipe or of other inputs (writing there would delete its shards).
    Returns the run the folder holds, if any."""
    existing = manifest.load(target)
    if config.overwrite:
        return existing
    if existing is None:
        files = list(storage.list_tree(target))
        if any(f.startswith("_progress/") for f in files):
            return None  # our own run, interrupted before its first stage finished: it resumes
        foreign = [f for f in files if not f.startswith(WORK_FILES)]
        if foreign:
            raise ConfigError(
                f"output: {target} is not empty ({len(foreign)} file(s), e.g. {foreign[0]}) and holds no corpus "
                "run (no manifest.json): choose another output=, or pass overwrite=true to write into it"
            )
        return None
    if existing.config.get("recipe") != config.recipe:
        raise ConfigError(
            f"output: {target} holds a run of recipe {existing.config.get('recipe')!r}, not {config.recipe!r}: "
            "choose another output=, or pass overwrite=true to replace that run"
        )
    inputs = _run_inputs(config, existing, extract_inputs)
    if inputs is not None and existing.inputs and existing.inputs != inputs:
        other = sorted(set(existing.inputs) ^ set(inputs))
        raise ConfigError(
            f"output: {target} holds a run over other inputs ({len(existing.inputs)} file(s); differing: "
            f"{other[0]}{f' and {len(other) - 1} more' if len(other) > 1 else ''}): choose another output=, or "
            "pass overwrite=true to replace that run"
        )
    return existing


def check_parquet_input(config: Config) -> None:
    """A later stage alone over the user's own data (`input=`): Parquet with `id` and `text`, checked on the
    first file's footer before Spark starts."""
    import pyarrow.parquet as pq

    files = expand_parquet(config.input)
    fs, path = storage.filesystem(files[0])
    with fs.open(path, "rb") as fh:
        names = pq.ParquetFile(fh).schema_arrow.names
    if missing := [c for c in ("id", "text") if c not in names]:
        raise ConfigError(
            f"input: {files[0]} has no {' and no '.join(missing)} column ({', '.join(config.stages)} need id and "
            f"text; it has {', '.join(names[:12])})"
        )


def _open_run(config: Config, output: str, extract_inputs: list[str] | None) -> Run:
    """The run record: a new or continued one when extracting, else the output's (or one over input=). With
    `overwrite`, a run of other inputs or another recipe is deleted first (its shards and its manifest)."""
    existing = manifest.load(output)
    inputs = _run_inputs(config, existing, extract_inputs)
    if existing is not None and config.overwrite:
        replaced = existing.config.get("recipe") != config.recipe or (inputs is not None and existing.inputs != inputs)
        if replaced:
            log(f"output: overwrite=true: deleting the earlier run in {output}")
            manifest.drop_stages(existing, output, list(existing.stages))
            storage.remove(storage.join(output, manifest.MANIFEST))
            storage.remove(storage.join(output, REPORT))
            existing = None
    if inputs is not None:
        return manifest.start(output, config, inputs)
    if existing is not None:
        if config.input and "extract" in existing.stages:
            log(f"input= is ignored: {output} has extracted documents (filtered/), which are the input")
        return existing
    raise ConfigError(f"output: {output} has no manifest.json; run the extract stage first or give input=")


def submit_main(stage: str, argv: list[str] | None = None) -> int:
    """Entry point of `spark-submit jobs/<stage>.py --config CONF key=value ...`: what `corpus <stage>` runs, but
    the report (a batch job leaves the report to `corpus report OUT`, and a finished output untouched)."""
    command = STAGES[stage].command
    runs = [name for name in (command.runs if command else [stage]) if name != "report"]
    parser = argparse.ArgumentParser(
        prog=f"spark-submit jobs/{stage}.py",
        description=f"The {stage} stage ({', '.join(runs)}) of a recipe. {command.help if command else ''}",
    )
    parser.add_argument("--config", help="recipe YAML (default: the built-in FineWeb settings)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. input=... output=...")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        config.stages = runs
        run_stages(config)
    except ConfigError as exc:
        print(f"corpus: configuration error: {exc}", file=sys.stderr)
        return 2
    except (InputError, AssetError) as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a full disk or read-only storage: one line, not Spark's stack traces
        if (line := storage_failure(exc)) is None:
            raise
        print(f"corpus: {line}", file=sys.stderr)
        return 1
    return 0
