"""Shared fixtures: one local-mode SparkSession per test session, the generated sample crawl, and the team's
shared data (../shared/data, or $CORPUS_SHARED_DATA), whose tests skip cleanly when it is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under the shared data folder; skips the calling test if it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def spark():
    from corpus.config import load_config
    from corpus.jobs.session import spark_session

    config = load_config(
        None,
        [
            "spark.master=local[2]",
            "spark.app_name=corpus-tests",
            "spark.ui.enabled=false",
            "spark.sql.shuffle.partitions=4",
        ],
    )
    session = spark_session(config)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_output(spark, sample_dir, tmp_path_factory) -> Path:
    """The whole recipe (extract, stats, dedup, report) over the sample crawl, run once per session."""
    from corpus.config import load_config
    from corpus.jobs.run import run_stages

    output = tmp_path_factory.mktemp("out") / "sample"
    run_stages(load_config(None, [f"input={sample_dir}", f"output={output}", "crawl=test"]), spark)
    return output
