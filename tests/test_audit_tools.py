"""The auditors' tools without Spark: drift measures, shard outliers, filter precision with Wilson intervals,
inspection of one document with its WARC record, sample files, lineage, filter thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import ks_2samp, wasserstein_distance
from statsmodels.stats.proportion import proportion_confint

from corpus.audit import lineage
from corpus.audit.audit import audit, judge
from corpus.audit.drift import compare, psi
from corpus.audit.inspect import InspectError, folder_name, inspect_document
from corpus.audit.report import OUTLIER_Z, shard_outliers
from corpus.audit.sample import sample_rows, tasks_path, write_sample
from corpus.config import DriftSettings
from corpus.filters import configured_thresholds
from corpus.io.labels import labels_table, read_labels
from corpus.io.warc import iter_records
from corpus.schema import DOCUMENT_SCHEMA


def profile(values: dict[str, list[float]], languages: dict[str, int], rates: dict[str, float], kept: int) -> dict:
    return {
        "drift": {
            "method": "test",
            "numeric": values,
            "categorical": {"language": languages},
            "removal_rates": rates,
            "counts": {"kept": kept},
        }
    }


def test_drift_of_a_run_against_itself_is_zero_and_a_shift_is_flagged():
    rng = np.random.default_rng(0)
    a_values = rng.normal(0.8, 0.05, 500).tolist()
    a = profile({"f.x": a_values}, {"en": 90, "de": 10}, {"f": 0.2}, 1000)
    same = compare(a, a, DriftSettings())
    assert same["crossed"] == []
    assert same["numeric"]["f.x"]["ks"] == 0 and same["numeric"]["f.x"]["wasserstein"] == 0
    assert same["categorical"]["language"]["psi"] == 0

    b_values = rng.normal(0.85, 0.05, 400).tolist()
    b = profile({"f.x": b_values}, {"en": 60, "de": 40}, {"f": 0.3}, 900)
    drift = compare(a, b, DriftSettings())
    x = drift["numeric"]["f.x"]
    assert x["ks"] == pytest.approx(ks_2samp(a_values, b_values).statistic)
    assert x["wasserstein"] == pytest.approx(wasserstein_distance(a_values, b_values))
    iqr = np.subtract(*np.percentile(a_values, [75, 25]))
    assert x["wasserstein_scaled"] == pytest.approx(x["wasserstein"] / iqr)
    crossed = " | ".join(drift["crossed"])
    for what in ("f.x: KS", "f.x: Wasserstein", "language shares: PSI", "removal rate of f", "kept: 1000 -> 900"):
        assert what in crossed
    # a looser threshold lets the same drift pass
    loose = DriftSettings(ks=1, wasserstein=10, psi=10, removal_rate=1, kept=1)
    assert compare(a, b, loose)["crossed"] == []


def test_psi_is_the_symmetric_relative_entropy_of_the_shares():
    a, b = {"x": 50, "y": 50}, {"x": 80, "y": 20}
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(a, b) == pytest.approx(expected)
    assert psi(a, {"x": 50, "y": 50, "z": 0}) == 0


def test_shard_outliers_by_robust_z():
    shards = [
        {
            "source_path": f"s{i}",
            "documents": 100,
            "kept": 50 + (i % 3),
            "removed": {},
            "languages": {"en": 95, "de": 5},
        }
        for i in range(9)
    ]
    shards.append({"source_path": "odd", "documents": 100, "kept": 5, "removed": {}, "languages": {"ja": 100}})
    rows = {r["source_path"]: r for r in shard_outliers(shards)}
    assert rows["odd"]["outlier"] == ["removal_rate", "language_distance"]
    assert rows["odd"]["removal_rate_z"] > OUTLIER_Z
    assert not any(rows[f"s{i}"]["outlier"] for i in range(9))


def write_folder(root: Path, folder: str, rows: list[dict]) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    full = [{name: row.get(name) for name in DOCUMENT_SCHEMA.names} for row in rows]
    pq.write_table(pa.Table.from_pylist(full, DOCUMENT_SCHEMA), root / folder / "part-00000.parquet")


def test_filter_precision_and_miss_rate_with_wilson_intervals(tmp_path):
    out = tmp_path / "out"
    removed = [{"id": f"r{i}", "removed_by": "gopher_quality", "reason": "gopher_short_doc"} for i in range(10)]
    removed += [{"id": f"c{i}", "removed_by": "c4", "reason": "too_few_sentences"} for i in range(4)]
    write_folder(out, "removed", removed)
    write_folder(out, "filtered", [{"id": f"k{i}"} for i in range(8)])
    labels = []
    for i in range(10):  # 8 of gopher_quality's 10 removals judged right (bad documents)
        labels.append({"id": f"r{i}", "label": "bad" if i < 8 else "good", "annotator": "ana"})
    for i in range(4):  # c4: two annotators; one tie
        labels.append({"id": f"c{i}", "label": "bad", "annotator": "ana"})
        labels.append({"id": f"c{i}", "label": "bad" if i else "good", "annotator": "ben"})
    for i in range(8):  # 1 of 8 kept documents judged bad: a miss
        labels.append({"id": f"k{i}", "label": "bad" if i == 0 else "keep", "annotator": "ana"})
    labels.append({"id": "elsewhere", "label": "bad", "annotator": "ana"})
    result = audit(str(out), labels_table(labels))
    gq = result["precision"]["gopher_quality"]
    assert (gq["count"], gq["n"], gq["rate"]) == (8, 10, 0.8)
    assert gq["wilson_95"] == pytest.approx(list(proportion_confint(8, 10, method="wilson")))
    assert result["precision"]["c4"]["n"] == 3 and result["ties"] == 1
    assert (result["miss_rate"]["count"], result["miss_rate"]["n"]) == (1, 8)
    assert result["not_in_output"] == ["elsewhere"]
    assert (
        judge(True) is True
        and judge(4, good_at=3) is True
        and judge(2.0, good_at=3) is False
        and judge("maybe") is None
    )


def test_inspect_one_document_reads_its_warc_record(tmp_path, sample_dir):
    warc = str(sample_dir / "sample-00000.warc.gz")
    record = next(r for r in iter_records(warc) if getattr(r, "rec_type", None) == "response")
    out = tmp_path / "out"
    write_folder(out, "removed", [{"id": record.record_id, "url": record.url, "source_path": warc,
                                   "source_offset": record.offset, "removed_by": "gopher_quality",
                                   "reason": "gopher_short_doc", "text": "short",
                                   "signals": [("gopher_quality.words", 3.0)]}])  # fmt: skip
    info = inspect_document(str(out), record.record_id)
    assert info["outcome"] == {"status": "removed", "removed_by": "gopher_quality", "reason": "gopher_short_doc"}
    assert info["signals"]["gopher_quality.words"] == {"value": 3.0, "thresholds": [50.0, 100000.0]}
    headers = dict(info["record"]["warc_headers"])
    assert headers["WARC-Record-ID"] == record.record_id and headers["WARC-Target-URI"] == record.url
    assert info["record"]["http_status_line"].startswith("200") and "<html" in info["record"]["payload"].lower()
    with pytest.raises(InspectError, match="no document"):
        inspect_document(str(out), "nope")
    with pytest.raises(InspectError, match="no such output"):
        inspect_document(str(tmp_path / "missing"), "x")
    assert folder_name("kept") == "filtered"
    with pytest.raises(InspectError, match="did you mean 'removed'"):
        folder_name("remved")


def test_sample_files_in_the_labels_schema_and_label_studio(tmp_path):
    rows = [
        {"id": "a", "text": "x", "url": "u", "source_path": "p", "source_offset": 3, "status": "removed",
         "removed_by": "c4", "reason": "r", "signals": [{"key": "c4.sentences", "value": 2.0}],
         "_stratum_size": 5, "_stratum_rank": 1},
        {"id": "b", "text": "y", "status": "kept", "signals": None, "_stratum_size": 9, "_stratum_rank": 1},
    ]  # fmt: skip
    table = sample_rows(rows, ["status"], seed=3)
    written = write_sample(table, str(tmp_path / "s.jsonl"))
    assert written == [str(tmp_path / "s.jsonl"), tasks_path(str(tmp_path / "s.jsonl"))]
    back = read_labels(str(tmp_path / "s.jsonl"), label="status")  # no labels yet: read it by another column
    assert back.column("id").to_pylist() == ["a", "b"]
    first = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert first["stratum"] == "status=removed" and first["source_offset"] == 3
    assert first["signals"] == {"c4.sentences": 2.0} and first["label"] is None
    tasks = json.loads(Path(written[1]).read_text())
    assert tasks[0]["data"]["text"] == "x" and tasks[0]["data"]["source_path"] == "p"
    write_sample(table, str(tmp_path / "s.csv"))
    assert (tmp_path / "s.csv").read_text().startswith("id,text,label,annotator,created,guideline")


def test_lineage_hashes_model_cards_and_the_input_listing(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "card.json").write_text('{"f1": 0.9}')
    config = {"classifier": {"model": str(model)}, "input": ["a"], "storage": {"options": {}}}
    found = lineage.lineage(config, "c0ffee", ["a.warc.gz", "b.warc.gz"])
    card = model / "card.json"
    assert found["model_cards"] == {"classifier.model": {"path": str(card), "sha256": lineage.file_sha256(card)}}
    assert found["input_listing_sha256"] == lineage.listing_sha256(["a.warc.gz", "b.warc.gz"])
    assert found["input_listing_sha256"] != lineage.listing_sha256(["b.warc.gz", "a.warc.gz"])
    commit, _ = lineage.git_commit()
    assert commit is None or len(commit) == 40


def test_configured_thresholds_follow_the_config():
    thresholds = configured_thresholds({"gopher_quality": {"min_doc_words": 300}, "c4": {"min_num_sentences": -1}})
    assert thresholds["gopher_quality.words"] == [300.0, 100000.0]
    assert thresholds["gopher_repetition.top_2_gram"] == [0.2]
    assert thresholds["fineweb_quality.line_punct_ratio"] == [0.12]
    assert "c4.sentences" not in thresholds  # -1 disables the rule


def test_report_facts_for_a_dedup_only_run():
    from corpus.audit.manifest import Run
    from corpus.audit.report import render
    from corpus.config import load_config

    config = load_config()
    run = Run.new(config, ["in/a.parquet"])
    run.stages["dedup"] = {
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:30+00:00",
        "outputs": {
            "deduped": [{"path": "deduped/part-00000.parquet", "rows": 90, "bytes": 1, "sha256": "x"}],
            "minhash_index": [{"path": "minhash_index/index-00000.parquet", "rows": 1400, "bytes": 1, "sha256": "y"}],
        },
    }
    dedup = {"documents": 100, "kept": 90, "removed": {"exact": 6, "minhash": 4}, "candidate_edges": 5,
             "components_rounds": 1, "kept_by_cluster_size": {"1": 85, "2": 5}}  # fmt: skip
    page = render(None, run, dedup, output="out")
    assert "recipe <code>fineweb" not in page and "dedup of input Parquet (no extraction)" in page
    assert "PII masking" in page and "not counted" in page  # no signals column, so no counts: said so
    assert "90 s" in page and "1,400 index rows" in page and "deduped: 1 file(s), 90 rows" in page
    assert "kept after dedup (deduped/)" in page and page.count("<svg") == 1  # the cluster-size chart
