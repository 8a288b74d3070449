"""`corpus train-classifier`: train, evaluate, and publish only through the gate.

    corpus train-classifier labels=PATH label=COLUMN output=MODEL_DIR [classifier.kind=fasttext|embedding]

The candidate is trained into `MODEL_DIR.candidate/` and scored through the same code the classify stage uses.
It is published (moved to MODEL_DIR, where recipes name it: `classifier.classifiers.<name>.model: MODEL_DIR`)
only if
- its validation F1 at the chosen threshold is >= `gate.min_f1`, and
- when MODEL_DIR already holds a published model: on that model's pinned evaluation set (MODEL_DIR/eval.parquet,
  labels it never trained on, which the candidate does not train on either), the candidate's F1 is at most
  `gate.max_drop` below the published model's.
Otherwise nothing is published: the candidate stays in `MODEL_DIR.refused/` with its card (the verdict
included) and the command exits non-zero naming the failing figure.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpus.config import ClassifierModelSettings, Config, ConfigError
from corpus.io.labels import labels_table, read_labels, write_labels
from corpus.quality import train
from corpus.quality.models import CARD, load_model

EVAL_SET = "eval.parquet"


@dataclass
class GateResult:
    passed: bool
    checks: list[dict] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [c["message"] for c in self.checks if not c["passed"]]


def score(model_dir: Path, texts: list[str]) -> np.ndarray:
    """Scores as the classify stage computes them."""
    model = load_model(ClassifierModelSettings(model=str(model_dir)))
    return model.score("model", pa.array(texts, pa.large_string())).score


def gate(config: Config, validation: dict, candidate_eval: float | None, published_eval: float | None) -> GateResult:
    g = config.gate
    f1 = validation["f1"]
    checks = [
        {"figure": "validation F1", "value": f1, "limit": g.min_f1, "passed": f1 >= g.min_f1,
         "message": f"validation F1 {f1:.4f} {'>=' if f1 >= g.min_f1 else '<'} gate.min_f1 {g.min_f1}"},
    ]  # fmt: skip
    if published_eval is not None and candidate_eval is not None:
        drop = published_eval - candidate_eval
        checks.append(
            {"figure": "F1 drop on the pinned evaluation set", "value": drop, "limit": g.max_drop,
             "passed": drop <= g.max_drop,
             "message": f"F1 on the pinned evaluation set {candidate_eval:.4f} vs published {published_eval:.4f}: "
                        f"drop {drop:.4f} {'<=' if drop <= g.max_drop else '>'} gate.max_drop {g.max_drop}"}
        )  # fmt: skip
    return GateResult(all(c["passed"] for c in checks), checks)


def _replace_dir(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing it (the old one is removed only once the new one is in place)."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    source.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def train_classifier(
    config: Config,
    labels: str,
    label: str,
    output: str,
    positive: str | None = None,
    annotator: str | None = None,
    name: str | None = None,
) -> tuple[GateResult, dict]:
    """Train, evaluate and gate a classifier; publish it to `output` if it passes. Returns the verdict and the
    card (written to `output/card.json` when published, else to `output.refused/card.json`)."""
    settings = config.classifier.train
    target = Path(output).expanduser().absolute()
    table = read_labels(labels, label=label, annotator=annotator)
    examples = train.examples_from_labels(table, label, positive, settings.positive_from)
    published = (target / CARD).is_file()
    pinned: pa.Table | None = None
    if published and (target / EVAL_SET).is_file():
        import pyarrow.parquet as pq

        pinned = pq.read_table(target / EVAL_SET)
    exclude = set(pinned.column("id").to_pylist()) if pinned is not None else set()
    splits = train.split(examples, settings, exclude)
    candidate = target.with_name(f"{target.name}.candidate")
    shutil.rmtree(candidate, ignore_errors=True)
    candidate.mkdir(parents=True)
    kind = config.classifier.kind
    part = examples.subset(splits["train"])
    if kind == "fasttext":
        parameters = train.train_fasttext(part, settings, candidate)
    else:
        parameters = train.train_embedding(part, settings, candidate, config.classifier.max_tokens)
    card: dict = {
        "name": name or target.name,
        "kind": kind,
        "label": label,
        "positive": "1",
        "positive_means": examples.description,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training": {
            "labels": labels,
            "labels_sha256": train.labels_sha256(table),
            "counts": train.counts(examples, table),
            "splits": {k: len(v) for k, v in splits.items()},
            "excluded_pinned_eval": len(exclude & set(examples.ids)),
            "settings": train.settings_dict(settings),
        },
        "parameters": parameters,
        "versions": train.package_versions(),
    }
    (candidate / CARD).write_text(json.dumps(card, indent=2))  # the kind, so the model loads for scoring
    val = examples.subset(splits["validation"])
    val_scores = score(candidate, val.texts)
    threshold = train.choose_threshold(val.positive, val_scores, settings.beta)
    card["metrics"] = train.metrics(val.positive, val_scores, threshold, curve=True)
    card["metrics"]["split"] = "validation (the threshold was chosen on it: in-sample for the threshold)"
    card["metrics"]["beta"] = settings.beta
    if len(splits["test"]):
        test = examples.subset(splits["test"])
        card["test"] = train.metrics(test.positive, score(candidate, test.texts), threshold, curve=True)
        card["test"]["split"] = "test (held out: chose nothing)"
    train_part = examples.subset(splits["train"])
    card["train"] = train.metrics(train_part.positive, score(candidate, train_part.texts), threshold)
    card["train"]["split"] = "train (in-sample)"
    candidate_eval = published_eval = None
    if pinned is not None:
        flags = np.array(pinned.column("label").to_pylist(), bool)
        texts = pinned.column("text").to_pylist()
        published_card = json.loads((target / CARD).read_text())
        published_eval = train.metrics(flags, score(target, texts), published_card["metrics"]["threshold"])["f1"]
        candidate_eval = train.metrics(flags, score(candidate, texts), threshold)["f1"]
        card["pinned_eval"] = {"documents": len(texts), "f1": candidate_eval, "published_f1": published_eval,
                               "published_created": published_card.get("created")}  # fmt: skip
    verdict = gate(config, card["metrics"], candidate_eval, published_eval)
    card["gate"] = {"min_f1": config.gate.min_f1, "max_drop": config.gate.max_drop, "passed": verdict.passed,
                    "checks": verdict.checks}  # fmt: skip
    (candidate / CARD).write_text(json.dumps(card, indent=2))
    if not verdict.passed:
        _replace_dir(candidate, target.with_name(f"{target.name}.refused"))
        return verdict, card
    if pinned is not None:  # the evaluation set stays pinned across versions
        write_labels(pinned, str(candidate / EVAL_SET))
    else:
        write_labels(_eval_rows(val), str(candidate / EVAL_SET))
    _replace_dir(candidate, target)
    return verdict, card


def _eval_rows(examples: train.Examples) -> pa.Table:
    return labels_table(
        {"id": i, "text": t, "label": bool(p), "annotator": a, "created": None, "guideline": examples.description}
        for i, t, p, a in zip(examples.ids, examples.texts, examples.positive.tolist(), examples.annotators)
    )


def check_output(output: str | None) -> str:
    if not output:
        raise ConfigError("output: where to publish the model, e.g. output=models/quality")
    if "://" in output:
        raise ConfigError("output: train-classifier writes a local folder (copy it to object storage afterwards)")
    return output
