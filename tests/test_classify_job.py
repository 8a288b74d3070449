"""The classify stage on Spark over ccdev, with a model trained inside the test: top_fraction keeps the stated
share, thresholds remove with the reason and the score, dedup reads what classify kept, the manifest names the
model, and the same input gives the same cut; weak labels from the finished run."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from corpus.audit import manifest
from corpus.config import load_config
from corpus.io.inputs import InputError
from corpus.jobs.run import run_stages
from corpus.jobs.stages import STAGES
from corpus.quality.gate import train_classifier
from corpus.quality.models import model_sha256
from corpus.quality.weak import weak_labels
from corpus.schema import signals_dict
from tests.conftest import shared_path

HPLT = ("labels", "hplt-web-annotations", "dev.jsonl.gz")


def rows(output, folder: str, prefix: str = "") -> list[dict]:
    files = sorted(str(p) for p in (output / folder).glob(f"{prefix}*.parquet"))
    return ds.dataset(files, format="parquet").to_table().to_pylist() if files else []


@pytest.mark.shared
@pytest.mark.slow
def test_classify_on_ccdev(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "models" / "natural"
    config = load_config(None, ["gate.min_f1=0", "classifier.train.epoch=5"])
    verdict, card = train_classifier(config, str(shared_path(*HPLT)), "unnatural", str(model))
    assert verdict.passed and (model / "model.bin").is_file()

    warc = shared_path("ccdev") / "ccdev-00000.warc.gz"
    output = tmp_path / "run"
    classifier = [f"classifier.model={model}", "classifier.name=natural", "classifier.positive=0"]
    top = ["classifier.top_fraction=0.3", "classifier.quantile_error=0.01"]
    run_stages(load_config(None, [f"input={warc}", f"output={output}", "stages=[extract,classify]",
                                  *classifier, *top]), spark)  # fmt: skip
    filtered = rows(output, "filtered")
    kept, removed = rows(output, "classified"), rows(output, "removed", "classify-")
    assert len(kept) + len(removed) == len(filtered) > 40
    stats = json.loads((output / "stats" / "classify.json").read_text())
    cutoff = stats["selection"]["cutoff"]
    # the stated share, within the quantile's rank error (and documents tied at the cut, which stay together)
    ties = sum(r["quality_score"] == cutoff for r in kept)
    assert abs(len(kept) / len(filtered) - 0.3) <= 0.01 + (ties + 1) / len(filtered)
    assert all(r["quality_score"] >= cutoff for r in kept) and all(r["quality_score"] < cutoff for r in removed)
    for row in removed:
        assert row["removed_by"] == "classifier" and row["reason"] == "natural_below_top_fraction"
    for row in kept + removed:
        signals = signals_dict(row["signals"])
        assert signals["natural.score"] == row["quality_score"] == signals["natural.0"]
        assert signals["natural.0"] + signals["natural.1"] == pytest.approx(1.0, abs=1e-4)
        assert "gopher_quality.alpha_words_ratio" in signals or "fineweb_quality.line_punct_ratio" in signals
    run = manifest.load(str(output))
    # the stages after it (dedup, then tokenize) read what classify kept
    config = load_config(None, [f"output={output}"])
    assert STAGES["dedup"].inputs(run, str(output), config) == run.shard_urls(str(output), "classify", "classified")
    [entry] = run.stages["classify"]["models"]
    assert entry["name"] == "natural" and entry["kind"] == "fasttext"
    assert entry["sha256"] == model_sha256(str(model)) and entry["card"]["positive_means"] == "unnatural == true"
    assert manifest.verify(str(output)) == []

    # alone, over any Parquet: the same input and settings give the same cut and the same documents
    again = tmp_path / "again"
    run_stages(load_config(None, [f"input={output / 'filtered'}", f"output={again}", "stages=[classify]",
                                  *classifier, *top]), spark)  # fmt: skip
    assert json.loads((again / "stats" / "classify.json").read_text())["selection"]["cutoff"] == cutoff
    assert sorted(r["id"] for r in rows(again, "classified")) == sorted(r["id"] for r in kept)

    # a threshold instead: the card's (chosen on validation), reason <name>_below_threshold
    thresholded = tmp_path / "threshold"
    run_stages(load_config(None, [f"input={output / 'filtered'}", f"output={thresholded}", "stages=[classify]",
                                  f"classifier.model={model}", "classifier.name=unnatural"]), spark)  # fmt: skip
    threshold = card["metrics"]["threshold"]
    assert all(r["quality_score"] >= threshold for r in rows(thresholded, "classified"))
    for row in rows(thresholded, "removed", "classify-"):
        assert row["reason"] == "unnatural_below_threshold" and row["quality_score"] < threshold

    # weak labels from the finished run: what the language filter removed against what the run kept
    labels = weak_labels(str(output), "language").to_pylist()
    assert {r["annotator"] for r in labels} == {"rule:language"}
    assert {r["id"] for r in labels if not r["label"]} == {r["id"] for r in kept}
    assert all(r["guideline"] == f"run:{run.run_id}" for r in labels)

    # classified documents again: refused, their signals would hold the classifiers' twice
    with pytest.raises(InputError, match="already has quality_score"):
        run_stages(load_config(None, [f"input={output / 'classified'}", f"output={tmp_path / 'twice'}",
                                      "stages=[classify]", *classifier]), spark)  # fmt: skip
