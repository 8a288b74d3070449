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
