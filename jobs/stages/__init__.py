"""The stage table: every stage of a run, in the order `corpus run` runs them, with what it reads and writes, the
settings its output depends on (its fingerprint), what lies downstream of it, its runner, and the command that
runs it alone. `jobs/run.py` loops over this table; the `corpus` command builds its stage commands from it.

A runner is `run(spark, config, inputs, output, run_record)`; it writes its folders and records itself in the
manifest (`corpus.jobs.common.finish_stage`). The report stage (profile, drift, report.html) is downstream of
every other stage, so redoing any of them drops the old report first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from corpus.audit.manifest import Run
from corpus.config import STAGES as STAGE_NAMES
from corpus.config import Config, ConfigError
from corpus.io.inputs import expand_parquet
from corpus.jobs.stages.classify import run_classify
from corpus.jobs.stages.dedup import run_dedup
from corpus.jobs.stages.extract import run_extract
from corpus.jobs.stages.refetch import run_refetch
from corpus.jobs.stages.report import run_report
from corpus.jobs.stages.stats import run_stats
from corpus.jobs.stages.tokens import run_tokenize

Runner = Callable[[SparkSession, Config, list[str], str, Run], None]


@dataclass(frozen=True)
class Command:
    """`corpus <stage> [CONF.yaml] [key=value ...]`: the stages it runs, and its help."""

    help: str
    runs: tuple[str, ...]
    example: str = "input=... output=out"  # settings shown in its --help
    recipe: str | None = None  # the recipe when no config file is given


@dataclass(frozen=True)
class Stage:
    name: str
    reads: str
    writes: tuple[str, ...]
    #: What the output depends on besides the inputs (None: not fingerprinted, always run).
    settings: Callable[[Config], tuple] | None
    downstream: tuple[str, ...]
    #: The files it reads: input WARCs, or the shards an earlier stage (or `input=`) provides.
    inputs: Callable[[Run, str, Config], list[str]]
    runner: Runner
    #: The progress line when it starts.
    describe: Callable[[Config, list[str]], str]
    #: Reads Parquet shards through Spark's Hadoop layer (nothing to do when there are none).
    reads_parquet: bool = False
    command: Command | None = None


def refetched_warcs(run: Run, output: str) -> list[str]:
    """The WARC files the refetch stage of this output wrote (none if it did not run)."""
    return run.shard_urls(output, "refetch", "refetched") or []


def stage_inputs(run: Run, output: str, config: Config, previous: str, folder: str, stage: str) -> list[str]:
    """The shards a stage reads: what `previous` wrote to `folder` in this output, else `input=` Parquet."""
    written = run.shard_urls(output, previous, folder)
    if written is not None:
        return written
    if config.input and "extract" not in run.stages and "extract" not in config.stages:
        return expand_parquet(config.input)
    if previous == "dedup" or stage == "stats":
        return []  # tokenize falls back to filtered/; stats has nothing to count
    raise ConfigError(f"{stage}: no input; give input=PARQUET or run the earlier stages into this output first")


def documents(run: Run, output: str, config: Config, stage: str) -> list[str]:
    """What a stage after extraction reads: classify's classified/ when it ran, else extract's filtered/ (else
    `input=` Parquet)."""
    classified = run.shard_urls(output, "classify", "classified")
    if classified is not None:
        return classified
    return stage_inputs(run, output, config, "extract", "filtered", stage)


def _classify_settings(config: Config) -> tuple:
    from corpus.quality.models import identity

    return (config.classifier, [identity(spec.model or "") for spec in config.classifier.models().values()])


def _report_inputs(run: Run, output: str, config: Config) -> list[str]:
    """Everything the earlier stages wrote: the report is current while none of it changed."""
    return sorted(
        url
        for name, info in run.stages.items()
        if name != "report"
        for folder in info.get("outputs", {})
        for url in run.shard_urls(output, name, folder) or []
    )


def _extract_settings(c: Config) -> tuple:
    settings = (c.recipe, c.compat, c.crawl, c.reader, c.extract.__dict__ | {"files_per_job": None}, c.filters,
                c.output_options.compression)  # fmt: skip
    documents = (c.input_format, c.text_column, c.id_column)
    return settings if documents == ("auto", "text", "id") else (*settings, documents)  # earlier runs stay current


def _tokenize_inputs(run: Run, output: str, config: Config) -> list[str]:
    return stage_inputs(run, output, config, "dedup", "deduped", "tokenize") or documents(
        run, output, config, "tokenize"
    )


_STAGES = [
    Stage(
        "refetch",
        reads="the input WARCs' truncated PDF records",
        writes=("refetched", "refetch", "stats"),
        settings=lambda c: (c.recipe, c.reader, c.pdf.max_bytes, c.filters.get("url"), c.refetch),
        downstream=("extract", "classify", "stats", "dedup", "tokenize", "report"),
        inputs=lambda run, output, config: run.inputs,
        runner=run_refetch,
        describe=lambda config, inputs: f"truncated PDFs of {len(inputs)} input file(s)",
        command=Command(
            "PDF recipe: fetch the truncated PDFs of the input WARCs again from their origin (politely; never a "
            "private address) -> OUT/refetched/*.warc.gz, outcomes in OUT/refetch/; `corpus extract` then reads them",
            runs=("refetch",),
            example="input=crawl/ output=out/pdfs refetch.user_agent='mybot/1.0 (+https://example.org/bot)'",
            recipe="finepdfs",
        ),
    ),
    Stage(
        "extract",
        reads="the input WARC/ARC files (and refetched/)",
        writes=("filtered", "removed", "skipped"),
        settings=_extract_settings,
        downstream=("classify", "stats", "dedup", "tokenize", "report"),
        inputs=lambda run, output, config: run.inputs + refetched_warcs(run, output),
        runner=run_extract,
        describe=lambda config, inputs: f"{len(inputs)} input file(s)",
        command=Command(
            "the extraction stage (WARC -> filtered/ removed/ skipped/) and its stats",
            ("extract", "stats", "report"),
            example="input=crawl/*.warc.gz output=out/run1",
        ),
    ),
    Stage(
        "classify",
        reads="filtered/ (or any Parquet with id and text: input=)",
        writes=("classified", "removed", "stats"),
        settings=_classify_settings,
        downstream=("dedup", "tokenize", "report"),
        inputs=lambda run, output, config: stage_inputs(run, output, config, "extract", "filtered", "classify"),
        runner=run_classify,
        describe=lambda config, inputs: f"{len(inputs)} shard(s), classifiers {', '.join(config.classifier.models())}",
        reads_parquet=True,
        command=Command(
            "quality classifiers (classifier.model=DIR or classifier.classifiers.<name>.model): OUT/filtered/ (or "
            "any Parquet with id and text: input=) -> classified/ with quality_score, removed/ by threshold or "
            "top_fraction",
            ("classify", "report"),
        ),
    ),
    Stage(
        "stats",
        reads="filtered/, removed/, skipped/",
        writes=("stats",),
        settings=lambda c: (),
        downstream=("report",),
        inputs=lambda run, output, config: stage_inputs(run, output, config, "extract", "filtered", "stats"),
        runner=run_stats,
        describe=lambda config, inputs: "counting the written shards",
    ),
    Stage(
        "dedup",
        reads="filtered/ (or any Parquet with id and text: input=)",
        writes=("deduped", "removed", "minhash_index", "stats"),
        settings=lambda c: (c.compat, c.dedup),
        downstream=("tokenize", "report"),
        inputs=lambda run, output, config: documents(run, output, config, "dedup"),
        runner=run_dedup,
        describe=lambda config, inputs: f"{len(inputs)} shard(s), scope {config.dedup.scope}",
        reads_parquet=True,
        command=Command(
            "exact + MinHash dedup across all shards, then PII masking: OUT/filtered/ (after extract) or any "
            "Parquet with id and text (input=) -> deduped/",
            ("dedup", "report"),
            example="output=out/run1   or   input=my/*.parquet output=out/mine",
        ),
    ),
    Stage(
        "tokenize",
        reads="deduped/, else filtered/ (or any Parquet with id and text: input=)",
        writes=("tokenized", "stats"),
        settings=lambda c: (c.tokenize,),
        downstream=("report",),
        inputs=_tokenize_inputs,
        runner=run_tokenize,
        describe=lambda config, inputs: f"{len(inputs)} shard(s), with {config.tokenize.tokenizer}",
        reads_parquet=True,
        command=Command(
            "token ids in Parquet: OUT/deduped/ (or filtered/, or any Parquet with id and text: input=) -> tokenized/",
            ("tokenize", "report"),
            example="output=out/run1 tokenize.tokenizer=tiktoken:o200k_base   or   input=my/*.parquet output=out/t",
        ),
    ),
    Stage(
        "report",
        reads="every folder the earlier stages wrote, stats/ and manifest.json (and report.baseline's)",
        writes=("stats", "report.html"),
        settings=lambda c: (c.report, c.drift),
        downstream=(),
        inputs=_report_inputs,
        runner=run_report,
        describe=lambda config, inputs: "profile (histograms, shards, samples, drift inputs) and report.html",
    ),
]
STAGES: dict[str, Stage] = {stage.name: stage for stage in _STAGES}
assert tuple(STAGES) == STAGE_NAMES, "the stage table and corpus.config.STAGES must name the same stages in order"

__all__ = ["STAGES", "Command", "Stage", "documents", "refetched_warcs", "stage_inputs"]
