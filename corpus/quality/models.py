"""Quality models as the classify stage uses them: a model folder (card.json beside the model) or a bare fastText
file, loaded once per Python worker, scoring whole Arrow batches of texts.

A model folder holds:
- `card.json`: kind (`fasttext` or `embedding`), labels, positive label, threshold, training data and metrics
  (corpus.quality.card);
- `model.bin` (fastText), or `head.json` (embedding: the encoder's name and a linear head's weights: no pickle,
  nothing executable).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pyarrow as pa

from corpus.assets import AssetError, fetch, is_url
from corpus.config import ClassifierModelSettings
from corpus.io import storage

CARD = "card.json"
FASTTEXT_FILE = "model.bin"
HEAD_FILE = "head.json"


@dataclass
class Scores:
    """One classifier's output for a batch: `score` (what thresholds compare) and the signals to record."""

    score: np.ndarray
    signals: dict[str, np.ndarray] = field(default_factory=dict)


def is_model_dir(location: str) -> bool:
    return storage.exists(storage.join(location, CARD))


def read_card(location: str) -> dict:
    """card.json of a model folder (local or remote); {} for a bare fastText file."""
    if location.endswith((".bin", ".ftz")) or not is_model_dir(location):
        return {}
    return json.loads(storage.read_text(storage.join(location, CARD)))


def model_files(location: str) -> list[str]:
    """The files that make a model (what its sha256 covers)."""
    if not is_model_dir(location):
        return [location]
    card = read_card(location)
    name = FASTTEXT_FILE if card.get("kind") == "fasttext" else HEAD_FILE
    return [storage.join(location, CARD), storage.join(location, name)]


def file_sha256(location: str) -> str:
    digest = hashlib.sha256()
    fs, path = storage.filesystem(location)
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def model_sha256(location: str) -> str:
    """sha256 of the model file, or of a model folder's files (card, then model), one after another."""
    files = model_files(location)
    if len(files) == 1:
        return file_sha256(files[0])
    return hashlib.sha256("".join(file_sha256(f) for f in files).encode()).hexdigest()


def identity(location: str) -> list:
    """What a stage fingerprint needs to notice a changed model at the same place: local files' sizes and
    modification times (hashing a 7 GB model at every run would cost more than the check saves)."""
    out: list = [location]
    for path in model_files(location):
        if not is_url(path) and os.path.exists(path):
            stat = os.stat(path)
            out.append((stat.st_size, stat.st_mtime_ns))
    return out


class QualityModel:
    kind: str
    labels: list[str]

    def __init__(self, spec: ClassifierModelSettings, card: dict) -> None:
        self.spec, self.card = spec, card
        threshold = spec.threshold if spec.threshold is not None else card.get("metrics", {}).get("threshold")
        self.threshold = float(threshold) if threshold is not None else 0.5

    def score(self, name: str, texts: pa.Array) -> Scores:
        raise NotImplementedError


class FastTextClassifier(QualityModel):
    kind = "fasttext"

    def __init__(self, spec: ClassifierModelSettings, card: dict, path: str) -> None:
        from corpus.quality.fasttext import fasttext_model

        super().__init__(spec, card)
        self.model = fasttext_model(path, spec.newline)
        self.labels = self.model.labels
        positive = spec.positive or card.get("positive") or self.labels[-1]
        if positive not in self.labels:
            raise AssetError(f"classifier {spec.model}: no label {positive!r}; its labels: {', '.join(self.labels)}")
        self.positive = self.labels.index(positive)

    def score(self, name: str, texts: pa.Array) -> Scores:
        probs = self.model.predict(texts)
        signals = {f"{name}.{label}": probs[:, i] for i, label in enumerate(self.labels)}
        return Scores(probs[:, self.positive], {f"{name}.score": probs[:, self.positive], **signals})


class EmbeddingClassifier(QualityModel):
    """A linear head over sentence embeddings: logistic (label probabilities) or ridge/linear (a regression
    score, e.g. FineWeb-Edu's 0-5, optionally clipped and rounded)."""

    kind = "embedding"

    def __init__(self, spec: ClassifierModelSettings, card: dict, head: dict) -> None:
        from corpus.quality.embed import sentence_encoder

        super().__init__(spec, card)
        self.head = head
        self.encoder = sentence_encoder(head["encoder"], int(head.get("max_tokens", spec.max_tokens)))
        self.coef = np.asarray(head["coef"], np.float32)  # [outputs, dimension]
        self.intercept = np.asarray(head["intercept"], np.float32)
        self.labels = [str(label) for label in head.get("classes", [])]
        positive = spec.positive or card.get("positive")
        self.positive = (
            self.labels.index(str(positive)) if self.labels and positive is not None else len(self.labels) - 1
        )

    def score(self, name: str, texts: pa.Array) -> Scores:
        values = self.encoder.encode(texts.to_pylist()) @ self.coef.T + self.intercept
        if self.head["type"] != "logistic":  # regression: one score
            raw = values[:, 0].astype(np.float64)
            signals = {f"{name}.score": raw}
            if self.spec.round:
                rounded = np.round(np.clip(raw, 0, 5))
                signals[f"{name}.int_score"] = rounded
                return Scores(rounded, signals)
            return Scores(raw, signals)
        if values.shape[1] == 1:  # binary logistic regression: the second class's logit
            p = 1 / (1 + np.exp(-values[:, 0].astype(np.float64)))
            probs = np.stack([1 - p, p], axis=1)
        else:
            e = np.exp(values - values.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        signals = {f"{name}.{label}": probs[:, i] for i, label in enumerate(self.labels)}
        return Scores(probs[:, self.positive], {f"{name}.score": probs[:, self.positive], **signals})


def load_model(spec: ClassifierModelSettings) -> QualityModel:
    """A model from its settings: a folder with card.json, or a fastText file (path or URL)."""
    location = spec.model or ""
    card = read_card(location)
    if not card:
        if not location.endswith((".bin", ".ftz")):
            raise AssetError(f"classifier model {location!r}: neither a folder with {CARD} nor a fastText .bin/.ftz")
        return FastTextClassifier(spec, card, location)
    if card.get("kind") == "fasttext":
        return FastTextClassifier(spec, card, fetch(storage.join(location, FASTTEXT_FILE), "model", "classifier.model"))
    if card.get("kind") == "embedding":
        return EmbeddingClassifier(spec, card, json.loads(storage.read_text(storage.join(location, HEAD_FILE))))
    raise AssetError(f"{storage.join(location, CARD)}: unknown kind {card.get('kind')!r}")


@cache
def _cached(spec_json: str, stamp: str) -> QualityModel:
    return load_model(ClassifierModelSettings(**json.loads(spec_json)))


def worker_model(spec: ClassifierModelSettings) -> QualityModel:
    """One model per Python worker and settings (loaded again when its local files changed)."""
    import dataclasses

    return _cached(json.dumps(dataclasses.asdict(spec), sort_keys=True), json.dumps(identity(spec.model or "")))
