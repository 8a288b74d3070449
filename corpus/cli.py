"""The `corpus` command.

    corpus run CONF.yaml [key=value ...]          run a recipe: every stage it lists (conf/fineweb.yaml: extract,
                                                  stats, dedup, tokenize, report), resuming what is done
    corpus extract [CONF.yaml] [key=value ...]    the extraction stage alone (and its stats)
    corpus refetch [CONF.yaml] [key=value ...]    PDF recipe: fetch truncated PDFs again from their origin
    corpus dedup [CONF.yaml] [key=value ...]      dedup (and PII masking) of filtered/ or of any Parquet
    corpus tokenize [CONF.yaml] [key=value ...]   token ids of deduped/ (or any Parquet) in Parquet shards
    corpus classify [CONF.yaml] [key=value ...]   quality classifiers over filtered/ (or any Parquet)
    corpus stats OUT | report OUT | verify OUT | inspect OUT | config [CONF.yaml] [key=value ...]
    corpus train-classifier | annotate | labels import|weak|uncertain   the quality loop (corpus/quality/)

Auditors:
    corpus report OUT [baseline=OUT_B]          report.html: charts, shards, samples (and drift from OUT_B)
    corpus drift OUT_A OUT_B                    KS, Wasserstein, PSI, removal rates; exit 1 past drift.*
    corpus sample OUT by=COLS per_stratum=N|fraction=F [seed=S] [cap=M] output=FILE   spot-check sample
    corpus agreement LABELS... [label=COLUMN]   Cohen's, Fleiss' kappa, Krippendorff's alpha, relabel queue
    corpus audit OUT LABELS...                  each filter's precision and the miss rate (Wilson intervals)
    corpus inspect OUT --id X                   one document: signals, why kept or removed, its WARC record

Settings are `key=value` pairs over the YAML file (dotted keys, YAML values): `input=` (files, folders, globs,
s3:// or https:// URLs, comma-separated, or a Common Crawl id such as CC-MAIN-2024-10 with `limit=N`), `output=`
(a folder or an object-store URL), `spark.master=local[4]`, any Spark property as `spark.<property>=value`,
`filters.<name>.<parameter>=value`. `corpus config` prints the resolved configuration.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from corpus import __version__
from corpus.assets import AssetError
from corpus.config import ConfigError, load_config
from corpus.io.inputs import InputError
from corpus.jobs.run import run_stages
from corpus.jobs.stages import STAGES
from corpus.quality.commands import add_commands as add_quality_commands


def _config_args(parser: argparse.ArgumentParser, required: bool, example: str = "input=a.warc.gz output=out") -> None:
    """CONF.yaml (optional unless `required`: the built-in FineWeb settings) and key=value settings."""
    parser.add_argument(
        "config",
        metavar="CONF.yaml",
        nargs=None if required else "?",
        help="recipe file, e.g. conf/fineweb.yaml" + ("" if required else " (default: the FineWeb settings)"),
    )
    parser.add_argument("settings", nargs="*", metavar="key=value", help=f"settings over the file, e.g. {example}")


def _split_config(args: argparse.Namespace, required: bool = False) -> tuple[str | None, list[str]]:
    """`corpus extract [CONF] k=v`: the first positional is the file unless it looks like a setting."""
    settings = list(args.settings)
    config = getattr(args, "config", None)
    if config is not None and "=" in config and not os.path.exists(config):
        if required:
            raise ConfigError(
                f"`corpus {args.command}` needs a recipe file first, e.g. `corpus {args.command} conf/fineweb.yaml "
                f"{config} ...` (got the setting {config!r} where the file goes)"
            )
        config, settings = None, [config, *settings]
    return config, settings


def cmd_run(args: argparse.Namespace, stages: list[str] | None = None, recipe: str | None = None) -> int:
    path, settings = _split_config(args, required=stages is None)
    if path is None and recipe is not None:  # `corpus refetch` without a file: the PDF recipe's defaults
        settings = [f"recipe={recipe}", *settings]
    config = load_config(path, settings)
    if stages is not None:
        config.stages = stages
    run_stages(config)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """The funnel of OUT from its stats/ files (no Spark); the stats stage runs first only when they are
    missing, or with --recompute."""
    from corpus.audit import manifest
    from corpus.audit.stats import funnel_text, read_stats

    _use_storage(args.settings)
    run = manifest.load(args.output)
    if run is None:
        raise FileNotFoundError(f"{args.output}: no manifest.json (not an output folder, or its run never finished)")
    if args.recompute or ("stats" not in run.stages and "extract" in run.stages):
        config = load_config(None, [f"output={args.output}", *args.settings])
        config.stages = ["stats", "report"]
        run_stages(config)
    found = read_stats(args.output)
    text = funnel_text(found["stats"], found["dedup"], found["tokenize"])
    print(text or f"{args.output}: no statistics yet (no stage that writes them has finished)")
    return 0


def _use_storage(settings: list[str]) -> None:
    """Apply `storage.*` settings (endpoint, credentials) for commands that only read an output folder."""
    from corpus.io import remote

    remote.use(load_config(None, settings).storage)


_OPTION = re.compile(r"^[A-Za-z_][\w.]*=")


def _options(tokens: list[str], names: tuple[str, ...]) -> tuple[list[str], dict[str, str], list[str]]:
    """(positional arguments, this command's `name=value` options, the other key=value settings)."""
    positional, options, settings = [], {}, []
    for token in tokens:
        if not _OPTION.match(token):
            positional.append(token)
            continue
        key, value = token.split("=", 1)
        if key in names:
            options[key] = value
        else:
            settings.append(token)
    return positional, options, settings


def _number(options: dict[str, str], key: str, kind: type = int) -> Any:
    if key not in options:
        return None
    try:
        return kind(options[key])
    except ValueError:
        raise ConfigError(
            f"{key}: expected {'an integer' if kind is int else 'a number'}, got {options[key]!r}"
        ) from None


def _spark(config: Any) -> Any:
    from corpus.jobs.session import spark_session

    return spark_session(config)


def cmd_report(args: argparse.Namespace) -> int:
    """Recompute the profile and re-render report.html (Spark), with a drift section when baseline= is given."""
    from corpus.audit import manifest

    settings = [f"report.baseline={s.split('=', 1)[1]}" if s.startswith("baseline=") else s for s in args.settings]
    config = load_config(None, [f"output={args.output}", *settings])
    from corpus.io import remote, storage

    remote.use(config.storage)
    output = storage.absolute(args.output)
    run = manifest.load(output)
    if run is None:
        raise FileNotFoundError(f"{output}/manifest.json is missing: not an output folder (or its run did not finish)")
    if config.report.baseline and manifest.load(storage.absolute(config.report.baseline)) is None:
        raise ConfigError(f"baseline: {config.report.baseline} has no manifest.json (not an output folder)")
    manifest.drop_stages(run, output, ["report"])  # asked for: render it again
    config.stages = ["report"]
    run_stages(config)
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from corpus.audit.drift import table
    from corpus.io import storage
    from corpus.jobs.stages.report import DRIFT, drift_between

    positional, options, settings = _options(args.items, ("output",))
    if len(positional) != 2:
        raise ConfigError("usage: corpus drift OUT_A OUT_B [output=drift.json] [drift.ks=0.1 ...]")
    baseline, current = positional
    config = load_config(None, settings)
    from corpus.io import remote

    remote.use(config.storage)
    for folder in (baseline, current):
        if not storage.exists(storage.join(storage.absolute(folder), "manifest.json")):
            raise ConfigError(f"{folder}: no manifest.json (not an output folder)")
    drift = drift_between(_spark(config), config, baseline, current)
    path = options.get("output") or storage.join(storage.absolute(current), DRIFT)
    storage.write_text(path, json.dumps(drift, indent=2) + "\n")
    print(table(drift))
    print(f"\nwritten: {path}")
    return 1 if drift["crossed"] else 0


def cmd_sample(args: argparse.Namespace) -> int:
    from corpus.audit import manifest
    from corpus.audit.sample import sample_rows, write_sample
    from corpus.io import remote, storage
    from corpus.jobs.audit import sample_documents

    names = ("by", "per_stratum", "fraction", "seed", "cap", "output", "guideline")
    positional, options, settings = _options(args.items, names)
    if len(positional) != 1 or "output" not in options or "by" not in options:
        raise ConfigError("usage: corpus sample OUT by=COLUMNS per_stratum=N|fraction=F [seed=S] [cap=M] output=FILE")
    per_stratum, fraction = _number(options, "per_stratum"), _number(options, "fraction", float)
    if (per_stratum is None) == (fraction is None):
        raise ConfigError("sample: give per_stratum=N or fraction=F (one of them)")
    if (per_stratum is not None and per_stratum <= 0) or (fraction is not None and not 0 < fraction <= 1):
        raise ConfigError("sample: per_stratum must be positive, fraction in (0, 1]")
    seed, cap = _number(options, "seed") or 0, _number(options, "cap")
    by = [c.strip() for c in options["by"].split(",") if c.strip()]
    config = load_config(None, settings)
    remote.use(config.storage)
    output = storage.absolute(positional[0])
    run = manifest.load(output)
    if run is None:
        raise ConfigError(f"{output}: no manifest.json (not an output folder)")
    rows, columns = sample_documents(_spark(config), output, run, by, seed, per_stratum, fraction, cap)
    if not rows and columns and (missing := [c for c in by if c not in columns]):
        raise ConfigError(f"by: no column {', '.join(missing)}; the documents have: {', '.join(sorted(columns))}")
    written = write_sample(sample_rows(rows, by, seed, options.get("guideline")), options["output"])
    strata = Counter(tuple(r.get(c) for c in by) for r in rows)
    print(f"{len(rows)} document(s) from {len(strata)} stratum/strata over {', '.join(by)} (seed {seed})")
    for key, n in sorted(strata.items(), key=lambda kv: [str(x) for x in kv[0]]):
        print(f"  {' | '.join(str(x) for x in key)}: {n}")
    print("written: " + ", ".join(written))
    return 0


def _read_all_labels(paths: list[str], label: str) -> Any:
    import pyarrow as pa

    from corpus.io.labels import LabelsError, read_labels

    tables = []
    for path in paths:
        try:
            tables.append(read_labels(path, label))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such labels file") from None
        except LabelsError as exc:
            raise ConfigError(str(exc)) from None
    return pa.concat_tables(tables, promote_options="permissive")


def _write_json(result: dict, path: str | None) -> None:
    text = json.dumps(result, indent=2, default=str) + "\n"
    if path:
        from corpus.io import storage

        storage.write_text(path, text)
        print(f"written: {path}")
    else:
        print(text)


def cmd_agreement(args: argparse.Namespace) -> int:
    from corpus.audit.agreement import TARGET, WARN, agreement, summary

    names = ("label", "by", "warn", "target", "level", "output")
    paths, options, settings = _options(args.items, names)
    if settings:
        raise ConfigError(f"agreement: unknown option {settings[0].split('=', 1)[0]!r}; known: {', '.join(names)}")
    if not paths:
        raise ConfigError("usage: corpus agreement LABELS... [label=COLUMN] [by=COLUMNS] [output=FILE]")
    table = _read_all_labels(paths, options.get("label", "label"))
    by = [c for c in options.get("by", "").split(",") if c]
    try:
        result = agreement(table, _number(options, "warn", float) or WARN, _number(options, "target", float) or TARGET,
                           by, options.get("level", "nominal"))  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(summary(result), file=sys.stderr)
    _write_json(result, options.get("output"))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from corpus.audit.audit import BAD, GOOD, audit, summary
    from corpus.audit.inspect import InspectError

    names = ("label", "good", "bad", "good_at", "output")
    positional, options, settings = _options(args.items, names)
    if len(positional) < 2:
        raise ConfigError("usage: corpus audit OUT LABELS... [label=COLUMN] [good=a,b] [bad=c,d] [good_at=N]")
    _use_storage(settings)
    table = _read_all_labels(positional[1:], options.get("label", "label"))
    good = tuple(options["good"].lower().split(",")) if "good" in options else GOOD
    bad = tuple(options["bad"].lower().split(",")) if "bad" in options else BAD
    try:
        result = audit(positional[0], table, good, bad, _number(options, "good_at", float))
    except InspectError as exc:
        raise ConfigError(str(exc)) from None
    print(summary(result), file=sys.stderr)
    _write_json(result, options.get("output"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from corpus.audit.manifest import verify

    _use_storage(args.settings)
    from corpus.audit.manifest import load

    problems = verify(args.output)
    run = load(args.output)
    if run is not None:
        for stage in run.planned_stages or list(run.stages):
            shards = sum(len(v) for v in run.stages.get(stage, {}).get("outputs", {}).values())
            print(f"{stage}: finished ({shards} file(s))" if stage in run.stages else f"{stage}: pending")
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    print(f"OK {args.output}: every stage finished, every shard listed in manifest.json present and unchanged")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc

    from corpus.audit.inspect import (
        InspectError,
        folder_files,
        folder_name,
        format_document,
        inspect_document,
        open_output,
        read_folder,
    )  # fmt: skip

    _use_storage(args.settings)
    try:
        if args.id:
            print(format_document(inspect_document(args.output, args.id), args.output, args.chars or 1000))
            return 0
        output, run = open_output(args.output)
        folder = folder_name(args.folder)
        files = folder_files(output, run, folder)
        table = read_folder(files)
    except InspectError as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return 2
    path = f"{output}/{folder}"
    if table is None:
        print(f"{path}: no rows" + ("" if files else " (no Parquet files)"))
        return 0
    names = table.column_names
    if args.removed_by or args.reason:
        for option, column in ((args.removed_by, "removed_by"), (args.reason, "reason")):
            if option and column not in names:
                print(f"corpus: {path} has no {column} column", file=sys.stderr)
                return 2
        every = table
        if args.removed_by:
            table = table.filter(pc.equal(table["removed_by"], args.removed_by))
        if args.reason:  # a part of the reason, any case: `--reason alpha` finds gopher_below_alpha_threshold
            table = table.filter(pc.match_substring(table["reason"], args.reason, ignore_case=True))
        if not table.num_rows:
            pairs = Counter(zip(every["removed_by"].to_pylist(), every["reason"].to_pylist()))
            print(f"{path}: no row matches; the reasons there are (removed_by / reason: rows):")
            for (by, reason), n in sorted(pairs.items(), key=lambda kv: (-kv[1], str(kv[0]))):
                print(f"  {by} / {reason}: {n}")
            return 1
    print(f"{path}: {table.num_rows} rows")
    for row in table.slice(0, args.n).to_pylist():
        text = (row.get("text") or "").replace("\n", " ")
        print(f"\n{row['id']}  {row.get('url') or ''}".rstrip())
        details = []
        if row.get("source_path"):
            details.append(f"{row['source_path']} @ {row.get('source_offset')}")
        for key in ("language", "removed_by", "reason", "token_count", "minhash_cluster_size"):
            if row.get(key) is not None:
                details.append(f"{key}={row[key]}")
        if details:
            print("  " + "  ".join(details))
        if text:
            print(f"  {text[: args.chars or 200]}")
    print(f"\n(one document whole, with its signals and WARC record: corpus inspect {output} --id ID)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """An output folder's documents as JSONL, one file per shard."""
    from corpus.io import storage
    from corpus.io.documents import export_jsonl

    _use_storage(args.settings)
    folder = storage.join(storage.absolute(args.output), args.folder)
    shards = storage.list_files(folder, ".parquet")
    if not shards:
        raise FileNotFoundError(f"{folder}: no Parquet shards to export")
    for path in export_jsonl(shards, storage.absolute(args.to), compress=not args.plain):
        print(path)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    path, settings = _split_config(args)
    print(json.dumps(load_config(path, settings).to_dict(), indent=2))
    return 0


_STORAGE_HELP = "storage settings for a remote OUT, e.g. storage.options.s3.endpoint_url=http://127.0.0.1:9000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpus", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"corpus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    help_run = "run a recipe: every stage it lists, in order, skipping what is already done"
    p = sub.add_parser("run", help=help_run, description=f"{help_run}. The stages: `corpus config CONF.yaml`.")
    _config_args(p, required=True, example="input=data/crawl/ output=out/run1 spark.master=local[4]")
    p.set_defaults(func=cmd_run)

    for name, stage in STAGES.items():  # the stage commands, from the stage table
        if stage.command is None:
            continue
        command = stage.command
        p = sub.add_parser(
            name,
            help=command.help,
            description=f"{command.help}\n\nRuns: {', '.join(command.runs)}. Reads {stage.reads}; writes "
            f"{', '.join(stage.writes)}.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _config_args(p, required=False, example=command.example)
        p.set_defaults(func=functools.partial(cmd_run, stages=list(command.runs), recipe=command.recipe))

    p = sub.add_parser(
        "stats",
        help="print the funnel of an output folder (from stats/, without Spark; --recompute recounts the shards)",
    )
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help="e.g. spark.master=local[4] (with --recompute)")
    p.add_argument("--recompute", action="store_true", help="recount the shards with Spark and re-render the report")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "report",
        help="recompute the profile (Spark) and render OUT/report.html; baseline=OUT_B adds the drift from OUT_B",
        description="report.html: the funnel, every filter signal's histogram (kept vs removed, thresholds drawn), "
        "languages, lengths and tokens, dedup clusters, quality scores, shards with outliers flagged, sample "
        "documents per removal reason; with baseline=OUT_B the drift from that run (drift.* thresholds).",
    )
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help="baseline=OUT_B, report.*, drift.*, spark.*")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "drift",
        help="drift from OUT_A (reference) to OUT_B; writes drift.json, exit 1 when a drift.* threshold is crossed",
        description="KS and Wasserstein distances of every numeric signal (bounded seeded samples), population "
        "stability index of language, outcome and top-level-domain shares, removal-rate and kept-count changes, "
        "and what differs between the manifests. Thresholds: drift.ks, drift.wasserstein, drift.psi, "
        "drift.removal_rate, drift.kept (corpus config shows them).",
    )
    p.add_argument("items", nargs="+", metavar="OUT_A OUT_B [output=FILE] [drift.KEY=VALUE]")
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser(
        "sample",
        help="a stratified spot-check sample (labels schema + Label Studio tasks)",
        description="corpus sample OUT by=COLUMNS per_stratum=N|fraction=F [seed=S] [cap=M] output=FILE\n\n"
        "Per stratum (distinct values of the by= columns, e.g. status, removed_by, reason, reason_group, language, "
        "shard, quality_bucket) the documents with the smallest xxhash64(seed, id): min(N, stratum size), or "
        "ceil(F x size), at most cap=M per stratum. Same seed, same sample, whatever the partitioning. "
        "output=FILE.jsonl|.csv|.parquet (labels schema with provenance and signals) and FILE.label-studio.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("items", nargs="+", metavar="OUT key=value")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "agreement",
        help="agreement of two or more annotators (kappas, alpha, disagreements, relabel queue) as JSON",
        description="corpus agreement LABELS... [label=COLUMN] [by=COLUMNS] [warn=0.6] [target=0.8] "
        "[level=nominal|ordinal|interval] [output=FILE]\n\nLabels files: Parquet, JSONL(.gz), CSV or Label "
        "Studio exports (the labels schema; `annotator` tells the annotators apart).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("items", nargs="+", metavar="LABELS")
    p.set_defaults(func=cmd_agreement)

    p = sub.add_parser(
        "audit",
        help="each filter's precision and the recipe's miss rate from audited samples, with Wilson intervals",
        description="corpus audit OUT LABELS... [label=COLUMN] [good=a,b] [bad=c,d] [good_at=N] [output=FILE]",
    )
    p.add_argument("items", nargs="+", metavar="OUT LABELS")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("verify", help="re-check every shard of OUT against manifest.json (exit 1 on a problem)")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help=_STORAGE_HELP)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("inspect", help="print one document (--id) or the rows of an output folder")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help=_STORAGE_HELP)
    p.add_argument("--id", help="one document: all its signals, why it was kept or removed, its raw WARC record")
    p.add_argument("--folder", default="removed",
                   help="filtered (or kept), removed, skipped, deduped, tokenized (default: removed)")  # fmt: skip
    p.add_argument("--removed-by", help="only rows removed by this step, e.g. gopher_quality or exact")
    p.add_argument("--reason", help="only rows whose reason contains this (any case), e.g. alpha")
    p.add_argument("-n", type=int, default=5, help="rows to print (default 5)")
    p.add_argument("--chars", type=int, default=None, help="characters of text (default 200 per row, 1000 with --id)")
    p.set_defaults(func=cmd_inspect)

    add_quality_commands(sub)

    p = sub.add_parser("export", help="write an output folder's documents as JSONL (one .jsonl.gz per shard)")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help=_STORAGE_HELP)
    p.add_argument("--folder", default="deduped", help="filtered, removed, skipped or deduped (default: deduped)")
    p.add_argument("--to", required=True, metavar="FOLDER", help="where the .jsonl.gz files go")
    p.add_argument("--plain", action="store_true", help="write .jsonl, not gzipped")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "config",
        help="print the resolved configuration (every key, with defaults) as JSON",
        description="Print the resolved configuration: CONF.yaml (or the FineWeb defaults) with the settings "
        "applied, every key checked.",
    )
    _config_args(p, required=False, example="filters.c4.enabled=false")
    p.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"corpus: configuration error: {exc}", file=sys.stderr)
        return 2
    except (InputError, AssetError, FileNotFoundError) as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130  # run_stages said what finished and how to resume
    except Exception as exc:  # a full disk or read-only storage: one line, not Spark's stack traces
        from corpus.jobs.session import storage_failure

        if (line := storage_failure(exc)) is None:
            raise
        print(f"corpus: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
