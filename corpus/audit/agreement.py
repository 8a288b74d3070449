"""Annotator agreement (`corpus agreement LABELS...`): two or more annotators' labels on the same documents.

Cohen's kappa per pair of annotators (scikit-learn, on the documents both labelled), Fleiss' kappa (statsmodels,
on the documents every annotator labelled: it needs the same number of ratings per document), Krippendorff's
alpha (`krippendorff`, all labels: it allows missing ones), per category the one-vs-rest Fleiss' kappa and the
specific agreement, per stratum (any provenance column, e.g. removed_by) Krippendorff's alpha, the list of
disagreements, and a relabel queue: the categories and strata whose agreement is below `target` (0.8), marked
`relabel` below `warn` (0.6), with the disagreed documents in each.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

import krippendorff
import numpy as np
import pyarrow as pa
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

WARN, TARGET = 0.6, 0.8
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def label_text(value: Any) -> str:
    """A label as a category name: booleans as true/false, whole floats without .0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def ratings(table: pa.Table) -> tuple[list[str], list[str], dict[tuple[str, str], Any], dict[str, dict[str, Any]]]:
    """(documents, annotators, {(document, annotator): label}, {document: its first row}) from a labels table;
    a later label by the same annotator on the same document replaces the earlier one."""
    given: dict[tuple[str, str], Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        if row.get("label") is None:
            continue
        doc, who = str(row["id"]), str(row.get("annotator") or "unknown")
        given[(doc, who)] = row["label"]
        rows.setdefault(doc, row)
    documents = sorted({d for d, _ in given})
    annotators = sorted({a for _, a in given})
    return documents, annotators, given, rows


def _status(value: float | None, warn: float, target: float) -> str:
    if value is None:
        return "undefined"
    return "relabel" if value < warn else "review" if value < target else "ok"


def _alpha(matrix: np.ndarray, level: str) -> float | None:
    """Krippendorff's alpha of a raters x items matrix (nan = missing); None when undefined (one value only)."""
    usable = matrix[:, (~np.isnan(matrix)).sum(axis=0) >= 2]
    if usable.size == 0 or len(np.unique(usable[~np.isnan(usable)])) < 2:
        return None
    return _finite(krippendorff.alpha(reliability_data=usable, level_of_measurement=level))


def agreement(
    table: pa.Table,
    warn: float = WARN,
    target: float = TARGET,
    by: list[str] = (),
    level: str = "nominal",  # type: ignore[assignment]
) -> dict[str, Any]:
    if level not in LEVELS:
        raise ValueError(f"level: one of {', '.join(LEVELS)}, not {level!r}")
    documents, annotators, given, rows = ratings(table)
    if len(annotators) < 2:
        raise ValueError(f"agreement needs labels from two or more annotators; found {annotators or 'none'}")
    categories = sorted({label_text(v) for v in given.values()})
    code = {c: i for i, c in enumerate(categories)}
    numeric = level != "nominal"
    if numeric and any(_number(v) is None for v in given.values()):
        raise ValueError(f"level={level} needs numeric labels; use level=nominal for categories")

    def value(doc: str, who: str) -> float:
        label = given.get((doc, who))
        if label is None:
            return math.nan
        return _number(label) if numeric else float(code[label_text(label)])  # type: ignore[return-value]

    matrix = np.array([[value(d, a) for d in documents] for a in annotators])  # raters x items

    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(annotators), 2):
        both = ~np.isnan(matrix[i]) & ~np.isnan(matrix[j])
        la, lb = matrix[i][both], matrix[j][both]
        entry: dict[str, Any] = {"annotators": [a, b], "documents": int(both.sum())}
        if both.sum():
            entry["observed_agreement"] = float(np.mean(la == lb))
            if len(np.unique(np.concatenate([la, lb]))) > 1:
                weights = None if level == "nominal" else "linear"
                entry["cohen_kappa"] = _finite(cohen_kappa_score(la, lb, weights=weights))
            else:
                entry["cohen_kappa"] = None  # one category only: kappa is undefined
        pairs.append(entry)

    complete = ~np.isnan(matrix).any(axis=0)
    fleiss = None
    per_category: dict[str, Any] = {}
    if complete.sum() and not numeric:
        counts, _ = aggregate_raters(matrix[:, complete].T.astype(int), n_cat=len(categories))
        fleiss = _finite(fleiss_kappa(counts)) if counts.sum(axis=0).astype(bool).sum() > 1 else None
    # Per category: one-vs-rest Fleiss' kappa (complete documents) and specific agreement (all documents with
    # two or more labels): of the pairs of labels on a document in which one says c, the share in which both do.
    for category in categories:
        c = code[category] if not numeric else None
        entry = {"labels": sum(1 for v in given.values() if label_text(v) == category)}
        if not numeric:
            hits = np.nansum(matrix == c, axis=0)
            rated = (~np.isnan(matrix)).sum(axis=0)
            several = rated >= 2
            pairs_with = float(np.sum(hits[several] * (rated[several] - 1)))
            entry["specific_agreement"] = (
                float(np.sum(hits[several] * (hits[several] - 1))) / pairs_with if pairs_with else None
            )
            if complete.sum():
                binary = np.stack([hits[complete], rated[complete] - hits[complete]], axis=1)
                defined = binary.sum(axis=0).all()
                entry["kappa"] = _finite(fleiss_kappa(binary)) if defined else None
            entry["status"] = _status(entry.get("kappa"), warn, target)
        per_category[category] = entry

    disagreements = []
    for doc in documents:
        labels = {a: given[(doc, a)] for a in annotators if (doc, a) in given}
        if len({label_text(v) for v in labels.values()}) > 1:
            row = rows[doc]
            disagreements.append({"id": doc, "labels": labels, "text": (row.get("text") or "")[:200],
                                  **{c: row.get(c) for c in by}})  # fmt: skip

    strata: dict[str, dict[str, Any]] = {}
    for column in by:
        groups: dict[str, list[int]] = defaultdict(list)
        for k, doc in enumerate(documents):
            groups[label_text(rows[doc].get(column))].append(k)
        for name, members in sorted(groups.items()):
            alpha = _alpha(matrix[:, members], level)
            strata[f"{column}={name}"] = {"documents": len(members), "krippendorff_alpha": alpha,
                                          "status": _status(alpha, warn, target)}  # fmt: skip

    alpha = _alpha(matrix, level)
    queue = []
    disagreed = {d["id"] for d in disagreements}
    for category, entry in per_category.items():
        if entry.get("status") in ("relabel", "review"):
            ids = sorted(d for d in disagreed if any(label_text(given.get((d, a))) == category for a in annotators))
            queue.append({"kind": "category", "name": category, "agreement": entry.get("kappa"),
                          "measure": "one-vs-rest Fleiss' kappa", "status": entry["status"], "ids": ids})  # fmt: skip
    for name, entry in strata.items():
        if entry["status"] in ("relabel", "review"):
            column, _, val = name.partition("=")
            ids = sorted(d for d in disagreed if label_text(rows[d].get(column)) == val)
            queue.append({"kind": "stratum", "name": name, "agreement": entry["krippendorff_alpha"],
                          "measure": "Krippendorff's alpha", "status": entry["status"], "ids": ids})  # fmt: skip
    queue.sort(key=lambda q: (q["status"] != "relabel", q["agreement"] if q["agreement"] is not None else -1))
    return {
        "annotators": annotators,
        "documents": len(documents),
        "labels": len(given),
        "categories": categories,
        "level": level,
        "thresholds": {"warn": warn, "target": target},
        "krippendorff_alpha": alpha,
        "fleiss_kappa": fleiss,
        "fleiss_documents": int(complete.sum()),
        "status": _status(alpha, warn, target),
        "pairs": pairs,
        "per_category": per_category,
        "strata": strata,
        "disagreements": disagreements,
        "relabel_queue": queue,
    }


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""

    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    lines = [
        f"{result['documents']} documents, {result['labels']} labels, annotators: {', '.join(result['annotators'])}",
        f"Krippendorff's alpha ({result['level']}) {f(result['krippendorff_alpha'])} [{result['status']}]; "
        f"Fleiss' kappa {f(result['fleiss_kappa'])} on {result['fleiss_documents']} fully labelled documents",
    ]
    for p in result["pairs"]:
        lines.append(f"  Cohen's kappa {p['annotators'][0]} / {p['annotators'][1]}: {f(p.get('cohen_kappa'))} "
                     f"on {p['documents']} documents")  # fmt: skip
    lines.append(
        f"{len(result['disagreements'])} disagreement(s); relabel queue: {len(result['relabel_queue'])} item(s)"
    )
    for q in result["relabel_queue"]:
        lines.append(
            f"  {q['status']}: {q['kind']} {q['name']} ({q['measure']} {f(q['agreement'])}), "
            f"{len(q['ids'])} disagreed id(s)"
        )
    return "\n".join(lines)


__all__ = ["LEVELS", "TARGET", "WARN", "agreement", "label_text", "ratings", "summary"]
