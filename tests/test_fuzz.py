"""Fuzzing in CI: every target of tests/fuzz_targets.py runs briefly under atheris (scripts/fuzz runs them for as
long as asked), and every input a fuzzer ever failed on is replayed as a regression test."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fuzz_targets import TARGETS, write_seeds

pytest.importorskip("atheris")

#: Seconds per target in CI (five targets: about a minute and a half with start-up).
CI_SECONDS = 12

#: Inputs that made a target fail, and what was wrong (each fixed; the test replays them).
REGRESSIONS: list[tuple[str, bytes, str]] = [
    ("config", b"input: a\x00b\n", "PyYAML's reader raised outside the loader's error handling: a traceback"),
    ("config", b"filters:\n  24:\n    micece:ngth: t4", "a key that is not a string: TypeError in 'did you mean'"),
]


@pytest.mark.parametrize(
    ("target", "data", "why"), REGRESSIONS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(REGRESSIONS)]
)
def test_inputs_the_fuzzers_failed_on(target, data, why):
    TARGETS[target](data)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_each_target_briefly(target, tmp_path):
    corpus = tmp_path / target
    write_seeds(target, corpus)
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_targets", target, str(corpus), f"-max_total_time={CI_SECONDS}",
         "-timeout=30", "-rss_limit_mb=3000", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=CI_SECONDS + 240,
    )  # fmt: skip
    found = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    assert done.returncode == 0 and not found, f"{found}\n{done.stderr[-3000:]}"
    assert "Done" in done.stderr  # it ran (libFuzzer's summary)
