"""The auditors' commands on real outputs (Spark local mode): the report stage's profile, drift of a run against
itself and against a run with a changed threshold, stratified samples, `inspect --id`, lineage and verify."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from pyspark.sql import functions as F

from corpus.audit import manifest
from corpus.audit.manifest import verify
from corpus.cli import main
from corpus.config import load_config
from corpus.jobs.audit import documents, population, stratified_sample
from corpus.jobs.run import run_stages
from corpus.jobs.stages.report import drift_between

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def strict_output(spark, sample_dir, tmp_path_factory):
    """The sample with Gopher's minimum document length raised from 50 to 300 words (no dedup or tokens)."""
    output = tmp_path_factory.mktemp("strict") / "out"
    settings = [f"input={sample_dir}", f"output={output}", "crawl=test", "filters.gopher_quality.min_doc_words=300",
                "stages=[extract, stats, report]"]  # fmt: skip
    run_stages(load_config(None, settings), spark)
    return output


def test_report_stage_writes_profile_report_and_lineage(sample_output):
    run = manifest.load(str(sample_output))
    assert "report" in run.stages and verify(str(sample_output)) == []
    profile = json.loads((sample_output / "stats" / "profile.json").read_text())
    signals = profile["histograms"]["signals"]
    words = signals["gopher_quality.words"]
    assert words["thresholds"] == [50.0, 100000.0] and len(words["edges"]) == profile["bins"] + 1
    stats = json.loads((sample_output / "stats" / "stats.json").read_text())
    # the histogram counts every document that has the signal: kept ones equal filtered/
    assert sum(words["counts"]["kept"]) == stats["kept"]
    step = next(s for s in stats["funnel"] if s["step"] == "gopher_quality")
    assert sum(words["counts"]["removed by this filter"]) == step["in"] - step["out"]
    assert {s["source_path"].rsplit("/", 1)[-1] for s in profile["shards"]} == {
        "sample-00000.warc.gz", "sample-00001.warc.gz"}  # fmt: skip
    assert sum(s["documents"] for s in profile["shards"]) == stats["documents"]
    reasons = {(s["removed_by"], s["_group"]) for s in profile["samples"]}
    assert ("gopher_quality", "gopher_below_alpha_threshold") in reasons and ("exact", "cluster") in reasons
    lineage = run.lineage
    assert lineage["config_sha256"] == run.config_sha256 and len(lineage["input_listing_sha256"]) == 64
    assert lineage["corpus_version"] and "git_commit" in lineage
    page = (sample_output / "report.html").read_text()
    assert "corpus inspect" in page and "Outlier rule" in page and "<script" not in page


def test_drift_against_itself_is_zero_and_exits_0(spark, sample_output, capsys, tmp_path):
    drift = drift_between(spark, load_config(), str(sample_output), str(sample_output))
    assert drift["crossed"] == []
    assert all(e.get("ks", 0) == 0 and e.get("wasserstein", 0) == 0 for e in drift["numeric"].values())
    assert all(e["psi"] == 0 for e in drift["categorical"].values())
    # output= elsewhere: the default (OUT_B/drift.json) would add a file to the suite's shared sample output
    assert main(["drift", str(sample_output), str(sample_output), f"output={tmp_path / 'drift.json'}"]) == 0
    assert "OK: within every drift threshold" in capsys.readouterr().out


def test_drift_flags_a_changed_threshold(spark, sample_output, strict_output, capsys, tmp_path):
    out = tmp_path / "drift.json"
    code = main(["drift", str(sample_output), str(strict_output), f"output={out}"])
    printed = capsys.readouterr().out
    assert code == 1 and "DRIFT:" in printed
    drift = json.loads(out.read_text())
    crossed = "\n".join(drift["crossed"])
    assert "removal rate of gopher_quality" in crossed
    assert drift["manifests"]["config"]["filters.gopher_quality.min_doc_words"] == [None, 300]
    # signals computed after the raised minimum see fewer documents and move; those before it do not
    assert any(
        line.startswith(("gopher_quality.avg_word_length", "c4.", "fineweb_quality.")) for line in drift["crossed"]
    )
    for key, entry in drift["numeric"].items():
        if key.startswith("gopher_repetition."):
            assert entry["ks"] == 0, key
    # the report of the strict run with the baseline embeds the drift
    assert main(["report", str(strict_output), f"baseline={sample_output}"]) == 0
    page = (strict_output / "report.html").read_text()
    assert 'id="drift"' in page and "removal rate of gopher_quality" in page


def test_stratified_sample_counts_and_determinism(spark, sample_output):
    run = manifest.load(str(sample_output))
    docs = population(documents(spark, str(sample_output), run))
    sizes = Counter(r["removed_by"] for r in docs.select("removed_by").collect())
    picked = stratified_sample(docs, ["removed_by"], seed=1, per_stratum=2).select("removed_by", "id").collect()
    assert Counter(r["removed_by"] for r in picked) == {k: min(2, n) for k, n in sizes.items()}

    def ids(frame, seed, **quota):
        return sorted(
            r["id"] for r in stratified_sample(frame, ["status", "language"], seed, **quota).select("id").collect()
        )

    one = ids(docs.repartition(1), 7, fraction=0.3, cap=4)
    assert one == ids(docs.repartition(5, F.rand(3)), 7, fraction=0.3, cap=4)  # another partitioning
    assert one != ids(docs, 8, fraction=0.3, cap=4)  # another seed
    strata = Counter((r["status"], r["language"]) for r in docs.select("status", "language").collect())
    expected = sum(min(4, -(-n * 3 // 10)) for n in strata.values())  # ceil(0.3 n), at most 4
    assert len(one) == expected


def test_sample_command_writes_labels_and_tasks(sample_output, tmp_path, capsys):
    target = tmp_path / "spot.jsonl"
    assert (
        main(["sample", str(sample_output), "by=status,removed_by", "per_stratum=1", "seed=5", f"output={target}"]) == 0
    )
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len({r["stratum"] for r in rows}) == len(rows) > 5
    assert all(r["label"] is None and r["source_path"] and r["sample_seed"] == 5 for r in rows)
    assert json.loads((tmp_path / "spot.label-studio.json").read_text())[0]["data"]["id"] == rows[0]["id"]
    assert main(["sample", str(sample_output), "by=langage", "per_stratum=1", f"output={target}"]) == 2
    assert "no column langage" in capsys.readouterr().err


def test_inspect_by_id_and_its_edges(sample_output, capsys):
    removed = json.loads((sample_output / "stats" / "profile.json").read_text())["samples"]
    duplicate = next(s for s in removed if s["removed_by"] == "exact")
    assert main(["inspect", str(sample_output), "--id", duplicate["id"]]) == 0
    shown = capsys.readouterr().out
    assert "removed by exact" in shown and "a duplicate of" in shown and "WARC-Record-ID: " + duplicate["id"] in shown
    assert "gopher_quality.words" in shown and "threshold 50, 100000" in shown
    assert main(["inspect", str(sample_output), "--folder", "kept", "-n", "1"]) == 0
    assert main(["inspect", str(sample_output), "--folder", "tokenized", "-n", "1"]) == 0
    assert "None @ None" not in capsys.readouterr().out
    assert main(["inspect", str(sample_output), "--reason", "ALPHA", "-n", "1"]) == 0
    assert main(["inspect", str(sample_output), "--removed-by", "exact"]) == 0
    assert main(["inspect", str(sample_output), "--reason", "no-such-reason"]) == 1
    assert "gopher_below_alpha_threshold" in capsys.readouterr().out  # the reasons that exist are listed
    assert main(["inspect", str(sample_output) + "-missing"]) == 2
    assert main(["inspect", str(sample_output), "--folder", "keept"]) == 2
