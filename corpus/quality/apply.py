"""Applying the configured classifiers to batches of documents, and the decision (plain Python over Arrow; the
classify stage in corpus/jobs runs it in `mapInArrow`).

Every classifier scores every document; `quality_score` is the deciding classifier's score (under a rule, the
mean of all scores). The decision:
- one classifier decides: keep if its score >= its threshold, else reason `<name>_below_threshold`;
- `decide: all`: keep if every classifier keeps (reason: the first that does not);
- `decide: any`: keep if one does (reason `all_below_threshold`);
- `top_fraction`: the stage keeps scores >= a global quantile instead (reason `<name>_below_top_fraction`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from corpus.config import ClassifierSettings
from corpus.quality.models import QualityModel, worker_model
from corpus.schema import SIGNALS_TYPE

#: Columns the scoring adds: the decision score, the classifiers' signals, and why a document goes (null: kept).
SCORE_FIELDS = [
    pa.field("quality_score", pa.float64()),
    pa.field("_quality_signals", SIGNALS_TYPE),
    pa.field("_quality_reason", pa.string()),
]


def threshold_reason(name: str) -> str:
    return f"{name}_below_threshold"


def top_fraction_reason(name: str) -> str:
    return f"{name}_below_top_fraction"


class Scorer:
    """The configured classifiers, loaded once per worker."""

    def __init__(self, settings: ClassifierSettings) -> None:
        self.settings = settings
        self.models: dict[str, QualityModel] = {name: worker_model(spec) for name, spec in settings.models().items()}
        self.decide = settings.decide or next(iter(self.models))

    def score(self, texts: pa.Array) -> tuple[np.ndarray, list[list[tuple[str, float]]], list[str | None]]:
        """quality_score, the signals entries and the threshold decision's reason (None: kept) of each text."""
        n = len(texts)
        scores, signals = {}, {}
        for name, model in self.models.items():
            result = model.score(name, texts)
            scores[name] = result.score
            signals.update(result.signals)
        keep = {name: scores[name] >= model.threshold for name, model in self.models.items()}
        reasons = np.full(n, None, object)
        if self.decide == "all":
            quality = np.mean(list(scores.values()), axis=0)
            for name in reversed(self.models):  # the first classifier that removes names the reason
                reasons[~keep[name]] = threshold_reason(name)
        elif self.decide == "any":
            quality = np.mean(list(scores.values()), axis=0)
            reasons[~np.any(list(keep.values()), axis=0)] = "all_below_threshold"
        else:
            quality = scores[self.decide]
            reasons[~keep[self.decide]] = threshold_reason(self.decide)
        keys = list(signals)
        matrix = np.stack([signals[k] for k in keys], axis=1).astype(np.float64) if keys else np.zeros((n, 0))
        entries = [list(zip(keys, row)) for row in matrix.tolist()]
        return quality.astype(np.float64), entries, reasons.tolist()

    def score_batches(self, batches: Iterator[pa.RecordBatch], keep: list[str]) -> Iterator[pa.RecordBatch]:
        """`batches` (with `text` and the `keep` columns) -> the `keep` columns plus SCORE_FIELDS, in batches of
        `batch_rows` documents."""
        for batch in batches:
            for start in range(0, batch.num_rows, self.settings.batch_rows):
                part = batch.slice(start, self.settings.batch_rows)
                quality, entries, reasons = self.score(part.column("text"))
                columns = [part.column(name) for name in keep]
                columns += [
                    pa.array(quality, pa.float64()),
                    pa.array(entries, SIGNALS_TYPE),
                    pa.array(reasons, pa.string()),
                ]
                yield pa.RecordBatch.from_arrays(
                    columns, schema=pa.schema([*(part.schema.field(k) for k in keep), *SCORE_FIELDS])
                )
