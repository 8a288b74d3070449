"""The quality loop's commands (`corpus train-classifier`, `corpus annotate`, `corpus labels ...`): arguments are
`key=value` pairs; the command's own keys are taken out, the rest are configuration settings (classifier.*,
gate.*, annotate.*, storage.*) checked by corpus.config."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from corpus.config import Config, ConfigError, load_config
from corpus.io.labels import read_labels, write_label_studio_tasks, write_labels


def _split(settings: list[str], keys: dict[str, Any], config: str | None = None) -> tuple[dict[str, Any], Config]:
    """Command keys (with defaults; None = required) and the configuration from the other settings."""
    found: dict[str, Any] = {}
    rest = []
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"expected key=value, got {item!r}")
        if key in keys:
            found[key] = value
        else:
            rest.append(item)
    for key, default in keys.items():
        if key not in found:
            if default is None:
                raise ConfigError(f"{key}: missing ({key}=...)")
            found[key] = default
    return found, load_config(config, rest)


def _write(table, path: str) -> None:
    if path.lower().endswith(".json"):
        write_label_studio_tasks(table, path, label="label")
    else:
        write_labels(table, path)


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from corpus.quality.gate import check_output, train_classifier

    keys, config = _split(args.settings, {"labels": None, "label": "label", "output": None, "positive": "",
                                          "annotator": "", "name": ""}, args.config)  # fmt: skip
    verdict, card = train_classifier(
        config, keys["labels"], keys["label"], check_output(keys["output"]), keys["positive"] or None,
        keys["annotator"] or None, keys["name"] or None,
    )  # fmt: skip
    summary = {k: card["metrics"][k] for k in ("f1", "precision", "recall", "threshold")}
    test = card.get("test") or {}
    print(f"validation: {json.dumps(summary)}")
    if test:
        print("test (held out): " + json.dumps({k: test[k] for k in ("f1", "precision", "recall")}))
    if not verdict.passed:
        for failure in verdict.failures:
            print(f"corpus: gate refused the model: {failure}", file=sys.stderr)
        print(f"corpus: nothing published; the candidate and its card are in {keys['output'].rstrip('/')}.refused/",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"published: {keys['output']} (card.json)")
    return 0


def cmd_annotate(args: argparse.Namespace) -> int:
    from corpus.quality.annotate import Annotator, read_documents

    keys, config = _split(args.settings, {"input": None, "output": None, "limit": "0"})
    annotator = Annotator(config.annotate)
    table, totals = annotator.annotate(read_documents(keys["input"], int(keys["limit"])))
    _write(table, keys["output"])
    print(json.dumps(totals))
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    if args.action == "import":
        keys, _ = _split(args.settings, {"input": None, "label": "label", "output": None, "annotator": "",
                                         "guideline": "", "id_column": "id", "text_column": "text"})  # fmt: skip
        table = read_labels(keys["input"], keys["label"], annotator=keys["annotator"] or None,
                            guideline=keys["guideline"] or None, id_column=keys["id_column"],
                            text_column=keys["text_column"])  # fmt: skip
    elif args.action == "weak":
        from corpus.quality.weak import weak_labels

        keys, config = _split(args.settings, {"input": None, "by": None, "reason": "", "output": None,
                                              "per_label": "0", "seed": "0"})  # fmt: skip
        table = weak_labels(
            keys["input"], keys["by"], keys["reason"] or None, int(keys["per_label"]), int(keys["seed"])
        )
    else:
        from corpus.quality.active import select

        keys, config = _split(args.settings, {"input": None, "output": None, "n": "100", "strategy": "threshold",
                                              "by": "language", "threshold": ""})  # fmt: skip
        rows, threshold = _scored(keys["input"], config)
        table = select(rows, int(keys["n"]), float(keys["threshold"]) if keys["threshold"] else threshold,
                       keys["strategy"], keys["by"] or None)  # fmt: skip
    _write(table, keys["output"])
    print(f"{table.num_rows} rows -> {keys['output']}")
    return 0


def _scored(path: str, config: Config) -> tuple[list[dict[str, Any]], float]:
    """Documents with quality_score (scored now by the configured classifier if they have none) and the
    deciding classifier's threshold."""
    import pyarrow as pa

    from corpus.quality.annotate import read_documents
    from corpus.quality.apply import Scorer

    models = config.classifier.models()
    scorer = Scorer(config.classifier) if models else None
    threshold = scorer.models[scorer.decide].threshold if scorer and scorer.decide in scorer.models else 0.5
    import pyarrow.dataset as ds

    from corpus.io import storage

    fs, local = storage.filesystem(path)
    if path.lower().removesuffix(".gz").endswith((".jsonl", ".json", ".csv")):
        rows = read_documents(path)
    else:
        dataset = ds.dataset(local, format="parquet", filesystem=fs)
        wanted = [c for c in ("id", "text", "language", "url", "quality_score") if c in dataset.schema.names]
        rows = dataset.to_table(columns=wanted).to_pylist()
    if rows and "quality_score" not in rows[0]:
        if scorer is None:
            raise ConfigError("classifier.model: the input has no quality_score; give the model to score it")
        for start in range(0, len(rows), config.classifier.batch_rows):
            part = rows[start : start + config.classifier.batch_rows]
            scores, _, _ = scorer.score(pa.array([r["text"] for r in part], pa.large_string()))
            for row, value in zip(part, scores.tolist()):
                row["quality_score"] = value
    return rows, threshold


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The quality commands, for corpus.cli's parser."""
    p = sub.add_parser(
        "train-classifier",
        help="train a quality classifier from labels and publish it only through the gate (labels=PATH "
        "label=COLUMN output=MODEL_DIR [classifier.kind=fasttext|embedding] [gate.min_f1=0.85])",
    )
    p.add_argument("settings", nargs="*", metavar="key=value")
    p.add_argument("--config", help="a YAML file with classifier:, gate: sections")
    p.set_defaults(func=cmd_train_classifier)
    p = sub.add_parser(
        "annotate",
        help="LLM pre-labels from an OpenAI-compatible server (input=DOCS output=LABELS annotate.endpoint=URL "
        "annotate.model=NAME [limit=N])",
    )
    p.add_argument("settings", nargs="*", metavar="key=value")
    p.set_defaults(func=cmd_annotate)
    p = sub.add_parser(
        "labels",
        help="labels in one schema: import (any labels file), weak (from a finished run), uncertain (active learning)",
        description="import input=FILE label=COLUMN output=FILE | weak input=OUT by=FILTER [reason=R] output=FILE | "
        "uncertain input=PARQUET output=FILE n=N [strategy=threshold|entropy] [by=language] [classifier.model=DIR]. "
        "An output ending in .json is written as Label Studio tasks.",
    )
    p.add_argument("action", choices=("import", "weak", "uncertain"))
    p.add_argument("settings", nargs="*", metavar="key=value")
    p.set_defaults(func=cmd_labels)
