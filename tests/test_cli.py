"""The `corpus` command and `spark-submit jobs/extract.py`, as users run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def corpus(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "corpus"), *args], capture_output=True, text=True, **kwargs)


def test_help_explains_the_commands():
    result = corpus("--help")
    assert result.returncode == 0
    for word in ("run", "extract", "verify", "inspect", "key=value"):
        assert word in result.stdout
    assert "spark.master" in corpus("run", "--help").stdout + corpus("--help").stdout


def test_bad_config_is_a_clear_error():
    result = corpus("run", str(ROOT / "conf" / "fineweb.yaml"), "filters.c4.min_num_sentence=3")
    assert result.returncode == 2
    assert "filters.c4.min_num_sentence" in result.stderr and "min_num_sentences" in result.stderr
    result = corpus("run", str(ROOT / "conf" / "fineweb.yaml"), "output=/tmp/x")
    assert result.returncode == 2 and "input=PATH" in result.stderr
    result = corpus("extract", "input=/no/such/file.warc.gz", "output=/tmp/x")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_config_prints_the_resolved_settings():
    result = corpus("config", str(ROOT / "conf" / "sample.yaml"), "spark.master=local[3]")
    assert json.loads(result.stdout)["spark"]["master"] == "local[3]"


@pytest.mark.slow
def test_spark_submit_runs_the_extract_job(sample_dir, tmp_path):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYSPARK_PYTHON": sys.executable}
    out = tmp_path / "submitted"
    result = subprocess.run(
        [str(BIN / "spark-submit"), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
         str(ROOT / "jobs" / "extract.py"), "--config", str(ROOT / "conf" / "sample.yaml"),
         f"input={sample_dir}", f"output={out}", "stages=[extract, stats, report]"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "manifest.json").exists() and not (out / "_tmp").exists()
    assert corpus("verify", str(out)).returncode == 0
    inspected = corpus("inspect", str(out), "--folder", "removed", "--reason", "other_language", "-n", "1")
    assert inspected.returncode == 0 and "rows" in inspected.stdout
    (out / "manifest.json").unlink()
    failed = corpus("verify", str(out))
    assert failed.returncode == 1 and "missing" in failed.stdout


def test_usage_names_the_recipe_file_and_the_version():
    for command in ("extract", "dedup", "tokenize", "config", "refetch"):
        result = corpus(command, "--help")
        assert result.returncode == 0 and "[CONF.yaml]" in result.stdout, command
    assert "input=a.warc.gz" not in corpus("tokenize", "--help").stdout
    assert corpus("--version").stdout.startswith("corpus ")


def test_mistakes_are_caught_before_spark_starts(tmp_path):
    """Each of these used to start Spark (13-18 s) and then fail with a trace, or pass silently."""
    cases = [
        (("run", "input=data/sample", "output=o"), "needs a recipe file first"),
        (("config", "output_options.compression=lz0"), "'lz0' is not a Parquet codec (did you mean 'lz4'?)"),
        (("config", "spark.mastr=local[2]"), "did you mean 'spark.master'"),
    ]
    no_text = tmp_path / "no_text.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), no_text)
    cases.append((("dedup", f"input={no_text}", f"output={tmp_path / 'd'}"), "has no text column"))
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"id": "a", "text": "x"}\n')
    cases.append((("dedup", f"input={jsonl}", f"output={tmp_path / 'j'}"), "has no .parquet file"))
    for args, message in cases:
        result = corpus(*args, timeout=60)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr[-2000:])
        assert "Spark" not in result.stderr and "Traceback" not in result.stderr, args
    assert not (tmp_path / "d").exists()  # nothing written, no _tmp/ left behind


def test_output_folders_of_something_else_are_refused(tmp_path, sample_dir):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = corpus("extract", f"input={sample_dir}", f"output={mine}", timeout=60)
    assert result.returncode == 2 and "holds no corpus run" in result.stderr and "overwrite=true" in result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_inputs_that_are_not_warc_are_refused_in_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("a file of notes, not a crawl\n")
    result = corpus("extract", f"input={text}", f"output={tmp_path / 'o'}", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "is not a WARC/ARC/WET, JSONL or Parquet file" in result.stderr and "input_format=" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
