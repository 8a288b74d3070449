"""Annotator agreement (corpus.audit.agreement): the values the reference libraries give on the same data, with
missing labels and more than two annotators, the published values of the classic examples, and the relabel queue."""

from __future__ import annotations

import itertools
import json

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from corpus.audit.agreement import agreement
from corpus.cli import main
from corpus.io.labels import labels_table, write_labels

NAN = np.nan
# Krippendorff's example with missing values (the `krippendorff` package's README): 3 coders, 15 units.
KRIPPENDORFF = [
    [NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
    [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
    [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4],
]
# Fleiss (1971) as on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa 0.210.
FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip


def table_from_matrix(matrix: list[list[float]], texts: bool = False):
    rows = []
    for coder, labels in enumerate(matrix):
        for unit, label in enumerate(labels):
            if not np.isnan(label):
                value = f"c{int(label)}" if texts else int(label)
                rows.append({"id": f"u{unit:02d}", "text": f"unit {unit}", "label": value,
                             "annotator": f"coder{coder}", "created": None, "guideline": "v1"})  # fmt: skip
    return labels_table(rows)


def test_krippendorff_example_with_missing_labels():
    result = agreement(table_from_matrix(KRIPPENDORFF))
    assert result["krippendorff_alpha"] == pytest.approx(0.691, abs=5e-4)  # the published value
    interval = agreement(table_from_matrix(KRIPPENDORFF), level="interval")
    assert interval["krippendorff_alpha"] == pytest.approx(0.811, abs=5e-4)
    # Unit 13 has no label at all and unit 1 none either: 13 documents, 3 annotators.
    assert result["documents"] == 13 and result["annotators"] == ["coder0", "coder1", "coder2"]


def test_values_equal_the_reference_libraries():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 3, 60)
    matrix = []
    for noise in (0.1, 0.25, 0.4, 0.3):  # four annotators of different care, each skipping some documents
        labels = np.where(rng.random(60) < noise, rng.integers(0, 3, 60), truth).astype(float)
        labels[rng.random(60) < 0.15] = NAN
        matrix.append(labels.tolist())
    result = agreement(table_from_matrix(matrix, texts=True))
    data = np.array(matrix)
    kept_units = ~np.isnan(data).all(axis=0)
    assert result["krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=data[:, kept_units], level_of_measurement="nominal"), abs=1e-12
    )
    for pair, (i, j) in zip(result["pairs"], itertools.combinations(range(4), 2)):
        both = ~np.isnan(data[i]) & ~np.isnan(data[j])
        assert pair["documents"] == both.sum()
        assert pair["cohen_kappa"] == pytest.approx(cohen_kappa_score(data[i][both], data[j][both]), abs=1e-12)
    complete = ~np.isnan(data).any(axis=0)
    counts, _ = aggregate_raters(data[:, complete].T.astype(int), n_cat=3)
    assert result["fleiss_documents"] == complete.sum() > 10
    assert result["fleiss_kappa"] == pytest.approx(fleiss_kappa(counts), abs=1e-12)
    # per category: one-vs-rest Fleiss' kappa on the complete documents
    for code in range(3):
        binary = np.stack([counts[:, code], counts.sum(axis=1) - counts[:, code]], axis=1)
        assert result["per_category"][f"c{code}"]["kappa"] == pytest.approx(fleiss_kappa(binary), abs=1e-12)


def test_fleiss_published_example():
    raters: list[list[float]] = [[] for _ in range(14)]
    for counts in FLEISS:  # any assignment of the counted labels to raters gives the same kappa
        labels = [c for c, n in enumerate(counts) for _ in range(n)]
        for rater, label in enumerate(labels):
            raters[rater].append(label)
    assert agreement(table_from_matrix(raters))["fleiss_kappa"] == pytest.approx(0.210, abs=5e-4)


def test_relabel_queue_disagreements_and_strata(tmp_path):
    rows = []
    for i in range(40):
        stratum = "gopher_quality" if i < 20 else "c4"
        a = "bad" if i % 2 else "good"
        # the annotators agree on c4 and disagree on half the gopher_quality documents
        b = a if stratum == "c4" or i % 4 < 2 else ("good" if a == "bad" else "bad")
        for who, label in (("ana", a), ("ben", b)):
            rows.append({"id": f"d{i}", "text": f"doc {i}", "label": label, "annotator": who, "created": None,
                         "guideline": "v1", "removed_by": stratum})  # fmt: skip
    result = agreement(labels_table(rows), by=["removed_by"])
    assert result["strata"]["removed_by=c4"]["krippendorff_alpha"] == pytest.approx(1.0)
    low = result["strata"]["removed_by=gopher_quality"]
    assert low["krippendorff_alpha"] < 0.6 and low["status"] == "relabel"
    queue = {(q["kind"], q["name"]): q for q in result["relabel_queue"]}
    assert ("stratum", "removed_by=gopher_quality") in queue and ("stratum", "removed_by=c4") not in queue
    assert len(queue[("stratum", "removed_by=gopher_quality")]["ids"]) == 10 == len(result["disagreements"])
    assert all(d["removed_by"] == "gopher_quality" for d in result["disagreements"])

    # the command: two files (one per annotator), JSON out
    for who in ("ana", "ben"):
        write_labels(labels_table([r for r in rows if r["annotator"] == who]), str(tmp_path / f"{who}.jsonl"))
    out = tmp_path / "agreement.json"
    assert main(["agreement", str(tmp_path / "ana.jsonl"), str(tmp_path / "ben.jsonl"), "by=removed_by",
                 f"output={out}"]) == 0  # fmt: skip
    written = json.loads(out.read_text())
    assert written["krippendorff_alpha"] == pytest.approx(result["krippendorff_alpha"])
    assert main(["agreement", str(tmp_path / "ana.jsonl")]) == 2  # one annotator: a clear error, not a traceback
