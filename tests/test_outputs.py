"""What an output folder promises users: runs of other inputs are not overwritten by accident, an interrupted
redo never passes for complete, Ctrl-C says one line, and the funnel prints without Spark."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.audit.manifest import load, verify
from corpus.config import ConfigError, load_config
from corpus.jobs.run import run_stages

BIN = Path(sys.executable).parent


def corpus(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "corpus"), *args], capture_output=True, text=True, **kwargs)


@pytest.mark.spark
def test_a_run_of_other_inputs_is_refused_then_replaced_with_overwrite(spark, sample_output, sample_dir, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(sample_output, copy)
    one_file = tmp_path / "one"
    one_file.mkdir()
    shutil.copy(sorted(sample_dir.glob("*.warc.gz"))[0], one_file)
    settings = [f"input={one_file}", f"output={copy}", "crawl=test", "stages=[extract, stats]"]
    with pytest.raises(ConfigError, match="holds a run over other inputs"):
        run_stages(load_config(None, settings), spark)
    assert verify(str(copy)) == []  # untouched
    old_dedup = sorted(p.name for p in (copy / "deduped").iterdir())
    assert old_dedup
    run = run_stages(load_config(None, [*settings, "overwrite=true"]), spark)
    assert [Path(p).name for p in run.inputs] == [p.name for p in one_file.iterdir()]
    assert not (copy / "deduped").exists() or not any((copy / "deduped").iterdir())  # the old run's shards went
    assert verify(str(copy)) == []


@pytest.mark.spark
@pytest.mark.slow
def test_interrupted_redo_is_pending_and_ctrl_c_says_one_line(sample_output, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(sample_output, copy)
    assert (copy / "report.html").exists()
    command = [str(BIN / "corpus"), "dedup", f"output={copy}",
               "dedup.minhash.seed=2", "spark.master=local[2]", "spark.ui.enabled=false"]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("corpus: dedup: "):  # the redo started
            time.sleep(2)
            proc.send_signal(signal.SIGINT)
            break
    after = proc.stderr.read().splitlines()
    assert proc.wait(timeout=120) == 130
    assert len(after) <= 2 and "interrupted" in after[-1] and "dedup" in after[-1], after[-40:]
    problems = verify(str(copy))
    assert "dedup: pending (not finished: rerun the command to complete it)" in problems
    assert not (copy / "report.html").exists()  # it showed the old dedup: gone, not stale
    result = corpus("verify", str(copy))
    assert result.returncode == 1 and "dedup: pending" in result.stdout and "extract: finished" in result.stdout


@pytest.mark.spark
def test_stats_prints_the_funnel_without_spark(sample_output):
    result = corpus("stats", str(sample_output), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and "dedup:" in result.stdout and "tokens:" in result.stdout
    assert result.stderr == ""  # no Spark started (it would say so on stderr)
    stats = json.loads((sample_output / "stats" / "stats.json").read_text())
    assert f"{stats['documents']:,} documents" in result.stdout
    assert load(str(sample_output)) is not None
