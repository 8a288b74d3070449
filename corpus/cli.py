"""The `corpus` command.

    corpus run CONF.yaml [key=value ...]        run a recipe (extract -> stats -> dedup -> tokenize -> report)
    corpus extract [CONF.yaml] [key=value ...]  the extraction stage alone (and its stats)
    corpus dedup [CONF.yaml] [key=value ...]    dedup (and PII masking) of filtered/ or of any Parquet
    corpus tokenize [CONF.yaml] [key=value ...] token ids of deduped/ (or any Parquet) in Parquet shards
    corpus stats OUT | report OUT | verify OUT | inspect OUT | config [CONF.yaml] [key=value ...]

Settings are `key=value` pairs over the YAML file (dotted keys, YAML values): `input=` (files, folders, globs,
s3:// or https:// URLs, comma-separated, or a Common Crawl id such as CC-MAIN-2024-10 with `limit=N`), `output=`
(a folder or an object-store URL), `spark.master=local[4]`, any Spark property as `spark.<property>=value`,
`filters.<name>.<parameter>=value`. `corpus config` prints the resolved configuration.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable

from corpus.assets import AssetError
from corpus.config import ConfigError, load_config
from corpus.io.inputs import InputError
from corpus.jobs.run import run_stages
from corpus.jobs.stages import STAGES


def _config_args(parser: argparse.ArgumentParser, required: bool) -> None:
    if required:
        parser.add_argument("config", metavar="CONF.yaml", help="recipe file, e.g. conf/fineweb.yaml")
    parser.add_argument(
        "settings", nargs="*", metavar="key=value", help="settings over the file, e.g. input=a.warc.gz output=out"
    )


def _split_config(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """`corpus extract [CONF] k=v`: the first positional is the file unless it looks like a setting."""
    settings = list(args.settings)
    config = getattr(args, "config", None)
    if config is None and settings and "=" not in settings[0]:
        config = settings.pop(0)
    return config, settings


def cmd_run(args: argparse.Namespace, stages: list[str] | None = None, recipe: str | None = None) -> int:
    path, settings = _split_config(args)
    if path is None and recipe is not None:  # `corpus refetch` without a file: the PDF recipe's defaults
        settings = [f"recipe={recipe}", *settings]
    config = load_config(path, settings)
    if stages is not None:
        config.stages = stages
    run_stages(config)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    config = load_config(None, [f"output={args.output}", *args.settings])
    config.stages = ["stats", "report"]
    run_stages(config)
    return 0


def _use_storage(settings: list[str]) -> None:
    """Apply `storage.*` settings (endpoint, credentials) for commands that only read an output folder."""
    from corpus.io import remote

    remote.use(load_config(None, settings).storage)


def cmd_report(args: argparse.Namespace) -> int:
    from corpus.audit.report import write_report

    _use_storage(args.settings)
    print(write_report(args.output))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from corpus.audit.manifest import verify

    _use_storage(args.settings)
    problems = verify(args.output)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    print(f"OK {args.output}: every shard listed in manifest.json is present and unchanged")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import pyarrow.dataset as ds

    from corpus.io import storage

    _use_storage(args.settings)
    path = storage.join(storage.absolute(args.output), args.folder)
    fs, fs_path = storage.filesystem(path)
    table = ds.dataset(fs_path, format="parquet", filesystem=fs).to_table(
        filter=(ds.field("reason") == args.reason) if args.reason else None
    )
    print(f"{path}: {table.num_rows} rows")
    for row in table.slice(0, args.n).to_pylist():
        text = (row.get("text") or "").replace("\n", " ")
        print(f"\n{row['id']}  {row.get('url')}")
        print(f"  {row.get('source_path')} @ {row.get('source_offset')}  language={row.get('language')}"
              f" removed_by={row.get('removed_by')} reason={row.get('reason')}")  # fmt: skip
        print(f"  {text[: args.chars]}")
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a recipe: its stages in order (see `corpus config CONF.yaml`: stages)")
    _config_args(p, required=True)
    p.set_defaults(func=cmd_run)

    for name, stage in STAGES.items():  # the stage commands, from the stage table
        if stage.command is None:
            continue
        command = stage.command
        p = sub.add_parser(name, help=command.help, description=f"{command.help}\n\nRuns: {', '.join(command.runs)}.")
        _config_args(p, required=False)
        p.set_defaults(func=functools.partial(cmd_run, stages=list(command.runs), recipe=command.recipe))

    p = sub.add_parser("stats", help="recompute stats/ and report.html of an output folder")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help="e.g. spark.master=local[4]")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("report", help="re-render report.html from stats/stats.json")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help=_STORAGE_HELP)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("verify", help="re-check every shard of OUT against manifest.json (exit 1 on a problem)")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help=_STORAGE_HELP)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("inspect", help="print documents of an output folder")
    p.add_argument("output", metavar="OUT")
    p.add_argument("settings", nargs="*", metavar="key=value", help=_STORAGE_HELP)
    p.add_argument("--folder", default="removed", help="filtered, removed or skipped (default: removed)")
    p.add_argument("--reason", help="only rows with this reason, e.g. gopher_below_alpha_threshold")
    p.add_argument("-n", type=int, default=5, help="rows to print (default 5)")
    p.add_argument("--chars", type=int, default=200, help="characters of text per row (default 200)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("config", help="print the resolved configuration")
    _config_args(p, required=False)
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
    except Exception as exc:  # a full disk or read-only storage: one line, not Spark's stack traces
        from corpus.jobs.session import storage_failure

        if (line := storage_failure(exc)) is None:
            raise
        print(f"corpus: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
