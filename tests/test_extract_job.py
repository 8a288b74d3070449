"""The extraction stage on Spark (local mode): output contract, accounting, provenance, reruns."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from corpus.audit import manifest
from corpus.config import load_config
from corpus.jobs.run import run_stages
from corpus.recipes import FineWebRecipe
from corpus.schema import DOCUMENT_SCHEMA
from tests.conftest import shared_path

pytestmark = pytest.mark.spark


def run(spark, inputs: str, output, *settings: str) -> dict:
    config = load_config(None, [f"input={inputs}", f"output={output}", "crawl=test", *settings])
    return run_stages(config, spark)


def read(output, folder: str):
    """The extract stage's shards of `folder` (removed/ also holds the dedup stage's dedup-*.parquet)."""
    files = sorted(str(p) for p in (output / folder).glob("part-*.parquet"))
    return ds.dataset(files, format="parquet").to_table()


def test_output_contract(sample_output, sample_dir):
    for folder in ("filtered", "removed", "skipped"):
        names = sorted(p.name for p in (sample_output / folder).glob("part-*"))
        assert names and set(names) <= {"part-00000.parquet", "part-00001.parquet"}
        schema = pq.read_schema(sample_output / folder / names[0])
        for field in DOCUMENT_SCHEMA:
            assert schema.field(field.name).type == field.type, field.name
    assert (sample_output / "report.html").exists()
    assert manifest.verify(str(sample_output)) == []
    run_info = json.loads((sample_output / "manifest.json").read_text())
    assert run_info["inputs"] == sorted(str(p) for p in sample_dir.glob("*.warc.gz"))
    assert set(run_info["stages"]) == {"extract", "stats", "dedup", "tokenize", "report"}
    assert run_info["versions"]["pyspark"] and run_info["config_sha256"]


def test_spark_output_equals_the_plain_python_pipeline(sample_output, sample_dir):
    pipeline = FineWebRecipe(load_config(None, ["crawl=test"]))
    expected = {
        (d.id, d.status, d.removed_by, d.reason, d.text)
        for path in sorted(sample_dir.glob("*.warc.gz"))
        for d in pipeline.process_file(str(path))
    }
    got = set()
    for folder, status in (("filtered", "kept"), ("removed", "removed"), ("skipped", "skipped")):
        for row in read(sample_output, folder).to_pylist():
            got.add((row["id"], status, row["removed_by"], row["reason"], row["text"]))
    assert got == expected


def test_stats_agree_with_the_shards(sample_output):
    stats = json.loads((sample_output / "stats" / "stats.json").read_text())
    kept, removed = read(sample_output, "filtered"), read(sample_output, "removed")
    assert stats["kept"] == kept.num_rows and stats["removed"] == removed.num_rows
    assert stats["funnel"][0]["in"] == kept.num_rows + removed.num_rows
    assert stats["funnel"][-1]["out"] == kept.num_rows
    per_step = {step["step"]: step["in"] - step["out"] for step in stats["funnel"]}
    for step, count in per_step.items():
        assert count == sum(1 for r in removed.column("removed_by").to_pylist() if r == step)
    shards = [json.loads(p.read_text()) for p in sorted((sample_output / "stats" / "shards").iterdir())]
    assert sum(s["kept"] for s in shards) == stats["kept"]
    assert stats["languages"]["kept"] == {"en": kept.num_rows}


def test_rerun_is_identical_and_verify_catches_damage(spark, sample_dir, sample_output, tmp_path):
    again = tmp_path / "again"
    run(spark, str(sample_dir), again, "output_options.batch_rows=7", "stages=[extract]")  # other batching
    first = json.loads((sample_output / "manifest.json").read_text())["stages"]["extract"]["outputs"]
    second = json.loads((again / "manifest.json").read_text())["stages"]["extract"]["outputs"]
    assert first == second

    shard = again / "filtered" / "part-00000.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])
    (again / "removed" / "part-00009.parquet").write_bytes(b"stray")
    problems = manifest.verify(str(again))
    assert any("filtered/part-00000.parquet is unreadable" in p for p in problems)
    assert any("removed/part-00009.parquet is not in the manifest" in p for p in problems)
    (again / "manifest.json").unlink()
    assert "missing" in manifest.verify(str(again))[0]


@pytest.mark.shared
@pytest.mark.slow
def test_ccdev_accounting_and_provenance(spark, tmp_path):
    folder = shared_path("ccdev")
    truth = [json.loads(line) for line in (folder / "ccdev.truth.jsonl").read_text().splitlines()]
    html_records = sum(1 for t in truth if t["kind"].startswith("html"))
    output = tmp_path / "ccdev"
    run(spark, str(folder), output)
    kept, removed, skipped = (read(output, f) for f in ("filtered", "removed", "skipped"))
    assert kept.num_rows + removed.num_rows == html_records
    assert not [r for r in removed.column("reason").to_pylist() if r.startswith("error:")]
    assert sum(1 for r in skipped.column("reason").to_pylist() if r == "content_type:application/pdf") == 160
    ids = kept.column("id").to_pylist() + removed.column("id").to_pylist()
    assert len(set(ids)) == len(ids) == html_records

    # Every document seeks back to its record.
    rows = kept.select(["id", "source_path", "source_offset"]).to_pylist()
    rows += removed.select(["id", "source_path", "source_offset"]).to_pylist()
    handles = {}
    for row in rows:
        fh = handles.setdefault(row["source_path"], open(row["source_path"], "rb"))  # noqa: SIM115
        fh.seek(row["source_offset"])
        record = next(iter(ArchiveIterator(fh)))
        assert record.rec_headers.get_header("WARC-Record-ID") == row["id"]
    for fh in handles.values():
        fh.close()
    assert manifest.verify(str(output)) == []


def test_a_rerun_redoes_a_stage_whose_shard_changed_and_leaves_a_finished_run_alone(
    spark, sample_dir, tmp_path, capsys
):
    out = tmp_path / "flip"
    run(spark, str(sample_dir), out, "stages=[extract, stats, report]")
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    run(spark, str(sample_dir), out, "stages=[extract, stats, report]")
    assert "extract: up to date" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == written  # nothing rewritten

    shard = out / "filtered" / "part-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, readable footer: only its sha256 tells
    shard.write_bytes(bytes(data))
    assert any("filtered/part-00001.parquet has sha256" in p for p in manifest.verify(str(out)))
    run(spark, str(sample_dir), out, "stages=[extract, stats, report]")
    assert "filtered/part-00001.parquet has changed since it was written (sha256); redoing" in capsys.readouterr().err
    assert manifest.verify(str(out)) == []


def test_local_mode_retries_failed_tasks(spark):
    assert spark.sparkContext.master == "local[2,4]"  # local[N] gives up at a task's first failure
