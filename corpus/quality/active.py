"""Active learning: the documents a model is least sure about, for people to label next.

`strategy=threshold` picks the documents whose score lies nearest the decision threshold; `strategy=entropy`
those whose positive-class probability has the highest binary entropy (nearest 0.5). The N are spread over
strata (e.g. `language`) in proportion to their size (at least one per stratum while N allows), ties broken
by id, so the same scores give the same selection. Out come rows in the labels schema (label empty) with the
score and the stratum, ready for Label Studio or a labels file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from corpus.io.labels import labels_table

STRATEGIES = ("threshold", "entropy")


def uncertainty(scores: np.ndarray, threshold: float, strategy: str) -> np.ndarray:
    """Higher is more uncertain."""
    if strategy == "threshold":
        return -np.abs(scores - threshold)
    p = np.clip(scores, 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def allocate(sizes: dict[Any, int], n: int) -> dict[Any, int]:
    """N spread over strata in proportion to their sizes (largest remainders), at least one each while N allows."""
    total = sum(sizes.values())
    if total <= n:
        return dict(sizes)
    order = sorted(sizes, key=lambda k: (-sizes[k], str(k)))
    quota = {k: 0 for k in sizes}
    for k in order[:n]:
        quota[k] = 1
    left = n - sum(quota.values())
    share = {k: sizes[k] / total * left for k in sizes}
    for k in sizes:
        quota[k] = min(sizes[k], quota[k] + int(share[k]))
    for k in sorted(sizes, key=lambda k: (-(share[k] - int(share[k])), str(k))):
        if sum(quota.values()) >= n:
            break
        if quota[k] < sizes[k]:
            quota[k] += 1
    return quota


def select(
    rows: list[dict[str, Any]], n: int, threshold: float, strategy: str = "threshold", by: str | None = "language"
) -> pa.Table:
    """The `n` most uncertain of `rows` (dicts with id, text, quality_score), stratified by column `by`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {strategy!r}")
    scores = np.array([r["quality_score"] for r in rows], float)
    rank = uncertainty(scores, threshold, strategy)
    strata: dict[Any, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        strata[row.get(by) if by else None].append(i)
    quota = allocate({k: len(v) for k, v in strata.items()}, n)
    chosen = []
    for key, members in strata.items():
        members.sort(key=lambda i: (-rank[i], str(rows[i]["id"])))
        chosen += members[: quota[key]]
    chosen.sort(key=lambda i: (-rank[i], str(rows[i]["id"])))
    return labels_table(
        {**{k: v for k, v in rows[i].items() if k != "signals"}, "label": None, "annotator": None, "created": None,
         "guideline": f"active:{strategy}", "uncertainty": float(rank[i])}
        for i in chosen
    )  # fmt: skip
