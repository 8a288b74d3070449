"""A real Spark standalone cluster on loopback: scripts/cluster-up (a master and two 1-core workers), jobs sent
with scripts/submit, faults injected while they run, and scripts/cluster-down.

The executors (and the submitted drivers) run a *bare* interpreter: a virtualenv whose site-packages points at
the project virtualenv's through a plain path line, so every dependency imports but the editable install of
`corpus` (a meta-path finder installed by a .pth file of the project virtualenv, which a path line does not
process) does not. `corpus` can then only come from the zip that scripts/submit ships with --py-files: the
fixture checks that the bare interpreter cannot import it, and one test asks the executors where they imported
it from.

The fault tests draw their random moments from one seed, printed with every failure; rerun with the same
moments with CORPUS_FAULT_SEED=<seed>.

Slow by nature (JVM start-ups, executors and their Python workers launched per application): about 20 s for
the cluster and 30-60 s per submitted application on the team's 2-core machine, more when it is busy. Run
alone with `pytest -m cluster`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="java not found: Spark needs a Java 17+ runtime"),
]

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
SUBMIT_TIMEOUT = 900
EXTRACT_FOLDERS = ("filtered", "removed", "skipped")
#: Copies of each of the two sample WARC files in the fault tests' input (2 x 6 = 12 input files, one task each).
FAULT_COPIES = 6
#: Input files of the interrupted run (the first of the fault tests' input; with extract.files_per_job=1, one
#: Spark job each).
RESUME_FILES = 6

SEED = int(os.environ.get("CORPUS_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))

#: Submitted by the tests (a file outside the package, so scripts/submit sends it as it is). It records, from
#: inside the tasks, where `corpus` was imported from, then (with `hold`) keeps both executors busy so that
#: cluster-down has executor JVMs and Python workers to stop.
PROBE_APP = """
import json, os, sys, time
from pyspark.sql import SparkSession

def where(_):
    import corpus, corpus.filters, corpus.jobs
    yield {"corpus": corpus.__file__, "filters": corpus.filters.__file__, "jobs": corpus.jobs.__file__,
           "python": sys.executable, "cwd": os.getcwd()}

spark = SparkSession.builder.getOrCreate()
rows = spark.sparkContext.parallelize(range(2), 2).mapPartitions(where).collect()
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(rows, f)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
if sys.argv[2:] == ["hold"]:
    spark.sparkContext.parallelize(range(2), 2).foreach(lambda _: time.sleep(600))
"""


@dataclass
class Cluster:
    master: str
    state: Path


@dataclass
class Proc:
    pid: int
    ppid: int
    ticks: int  # CPU time used so far (user + system, in clock ticks)
    cmdline: str
    ours: bool  # carries the cluster's environment marker (a daemon, an executor or one of their children)
    cwd: str


def processes(cluster: Cluster) -> dict[int, Proc]:
    """Every live process of the machine (zombies aside), with what tells whether it belongs to the cluster."""
    marker = f"CORPUS_CLUSTER_DIR={cluster.state}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except (OSError, IndexError):
            continue  # gone meanwhile
        found[int(proc.name)] = Proc(
            int(proc.name), int(fields[1]), int(fields[11]) + int(fields[12]), cmdline, marker in environ, cwd
        )
    return found


def cluster_processes(cluster: Cluster) -> list[str]:
    """Every live process that cluster-up started, directly or not: a process with the cluster's environment
    marker, a command line naming the state directory, or a working directory in its work/. (A driver that
    submitted to the cluster is not one of them: it was started by whoever submitted.)"""
    work = str(cluster.state / "work") + "/"
    return [
        f"{p.pid}: {p.cmdline[:160]}"
        for p in processes(cluster).values()
        if p.ours or str(cluster.state) in p.cmdline or (p.cwd + "/").startswith(work)
    ]


def python_workers(cluster: Cluster) -> list[Proc]:
    """The executors' Python workers: the processes that pyspark.daemon forks, one per running task."""
    procs = processes(cluster)
    return [
        p
        for p in procs.values()
        if p.ours and "pyspark.daemon" in p.cmdline and p.ppid in procs and "pyspark.daemon" in procs[p.ppid].cmdline
    ]


def workers_reading(cluster: Cluster, folder: Path) -> list[int]:
    """Python workers with a file of `folder` open: the ones in an extract task (a task streams its WARC file;
    an idle worker, waiting for its next task, has none open)."""
    found = []
    for worker in python_workers(cluster):
        try:
            fds = list(Path(f"/proc/{worker.pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd).startswith(f"{folder.resolve()}/"):
                    found.append(worker.pid)
                    break
            except OSError:
                continue
    return sorted(found)


def executor_logs(cluster: Cluster) -> str:
    """The end of every executor's stderr, for failure messages."""
    parts = []
    for path in sorted(cluster.state.glob("work/worker-*/app-*/*/stderr")):
        parts.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(parts[-4:])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("cluster")
    up = [str(SCRIPTS / "cluster-up"), "--workers", "2", "--cores", "1", "--memory", "1g", "--dir", str(state)]
    try:
        started = time.monotonic()
        proc = subprocess.run(up, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"cluster-up failed:\n{proc.stderr[-4000:]}"
        master = proc.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"spark://127\.0\.0\.1:\d+", master), proc.stdout
        assert {"master.pid", "worker-1.pid", "worker-2.pid", "cluster.env"} <= {p.name for p in state.iterdir()}
        print(f"cluster-up: {master} in {time.monotonic() - started:.1f}s", file=sys.stderr)
        yield Cluster(master, state)
    finally:
        subprocess.run([str(SCRIPTS / "cluster-down"), "--dir", str(state)], timeout=120, check=False)


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An interpreter with the project's dependencies but without the project itself."""
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # Every site-packages folder this interpreter sees (its own, and any its .pth files add), as plain lines
    dependencies = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (site / "project-dependencies.pth").write_text("".join(f"{p}\n" for p in dependencies))
    python = venv / "bin" / "python"
    check = subprocess.run(
        [str(python), "-c", "import pyarrow, pandas, pyspark, trafilatura; import corpus"],
        capture_output=True,
        text=True,
        cwd=venv,
    )
    if "No module named 'corpus'" not in check.stderr:
        pytest.fail(f"the bare interpreter must have the dependencies but not `corpus`; got:\n{check.stderr}")
    return python


def submit_command(cluster: Cluster, *args: str, ui: bool = False) -> list[str]:
    return [
        str(SCRIPTS / "submit"),
        "--master", cluster.master,
        "--executor-memory", "1g",
        "--conf", f"spark.ui.enabled={str(ui).lower()}",
        "--conf", "spark.sql.shuffle.partitions=4",
        *args,
    ]  # fmt: skip


def submit(cluster: Cluster, python: Path, *args: str, ui: bool = False) -> str:
    """scripts/submit to the cluster, with `python` for the driver and the executors; must succeed. Returns the
    driver's output (spark-submit passes the Python driver's stderr to its stdout)."""
    cmd = submit_command(cluster, *args, ui=ui)
    started = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=submit_env(python),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=SUBMIT_TIMEOUT,
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{executor_logs(cluster)}"
    print(f"submit {args[0]}: {time.monotonic() - started:.1f}s", file=sys.stderr)
    return proc.stdout


def submit_in_background(cluster: Cluster, python: Path, log: Path, *args: str) -> subprocess.Popen:
    """scripts/submit in its own process group (spark-submit's JVM and the Python driver), output to `log`."""
    with log.open("w") as fh:
        return subprocess.Popen(
            submit_command(cluster, *args),
            cwd=ROOT,
            env=submit_env(python),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(60)


def submit_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PYSPARK_GATEWAY")}
    return {**env, "PYSPARK_PYTHON": str(python), "PYSPARK_DRIVER_PYTHON": str(python)}


def output_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def snapshot(paths: list[Path]) -> dict[str, tuple[int, int, int]]:
    """Identity of files: inode, modification time (ns) and size. A file written again (Spark writes a new file
    and it is moved into place) gets a new inode."""
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in paths}


def shard_index(name: str) -> int:
    return int(re.search(r"part-(\d{5})\.parquet$", name).group(1))  # type: ignore[union-attr]


def assert_same_extract_output(clean: Path, out: Path, files: int | None = None) -> None:
    """filtered/, removed/ and skipped/ of `out` hold the shards of `clean` (the first `files` input files'),
    row for row, and no shard has an id twice."""
    expected = [
        f for f in output_files(clean) if f.split("/")[0] in EXTRACT_FOLDERS and f.rsplit("/", 1)[-1][0] not in "._"
    ]
    if files is not None:
        expected = [f for f in expected if shard_index(f) < files]
    found = [f for f in output_files(out) if f.split("/")[0] in EXTRACT_FOLDERS and f.rsplit("/", 1)[-1][0] not in "._"]
    assert found == expected
    for name in expected:
        a, b = pq.read_table(clean / name), pq.read_table(out / name)
        ids = b.column("id").to_pylist()
        assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
        assert a.column("id").to_pylist() == ids, f"{name}: not the same ids"
        assert a.equals(b), f"{name}: the rows differ"


def shard_summary(manifest: dict) -> dict:
    """Per stage and folder, the shards' paths, rows and sizes (the sha256 is compared separately)."""
    return {
        stage: {
            folder: [(s["path"], s["rows"], s["bytes"]) for s in shards] for folder, shards in st["outputs"].items()
        }
        for stage, st in manifest["stages"].items()
    }


def corpus_verify(output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corpus.cli", "verify", str(output)], capture_output=True, text=True, timeout=300
    )


def test_recipe_on_cluster_equals_local_mode(
    cluster: Cluster, bare_python: Path, sample_dir: Path, sample_output: Path, tmp_path: Path
):
    """The whole FineWeb recipe (conf/fineweb.yaml: extract, stats, dedup, tokenize, report) submitted to the
    cluster as one application writes what local mode writes (the suite's `sample_output`: the built-in
    settings, which conf/fineweb.yaml spells out), and the driver prints the link to its Spark UI."""
    local, remote = sample_output, tmp_path / "cluster"
    args = ("run", "conf/fineweb.yaml", f"input={sample_dir}", f"output={remote}", "crawl=test")
    log = submit(cluster, bare_python, "corpus/cli.py", *args, ui=True)
    assert re.search(r"^corpus: Spark UI: http://[\w.-]+:\d+", log, re.M), log[-2000:]
    assert corpus_verify(remote).returncode == 0

    def visible(root: Path) -> list[str]:
        return [f for f in output_files(root) if f.rsplit("/", 1)[-1][0] not in "._"]

    assert visible(remote) == visible(local)
    assert {"filtered", "removed", "skipped", "deduped", "tokenized", "report.html"} <= {
        f.split("/")[0] for f in visible(local)
    }
    for name in visible(local):
        if name.endswith(".parquet"):
            a, b = pq.read_table(local / name), pq.read_table(remote / name)
            assert a.schema == b.schema, name
            assert a.num_rows == b.num_rows, name
            assert a.equals(b), f"{name}: the rows differ"  # row for row, in order
        elif name.endswith(".json") and name != "manifest.json":
            assert json.loads((local / name).read_text()) == json.loads((remote / name).read_text()), name

    m_local = json.loads((local / "manifest.json").read_text())
    m_remote = json.loads((remote / "manifest.json").read_text())
    assert m_remote["inputs"] == m_local["inputs"]
    assert set(m_remote["stages"]) == {"extract", "stats", "dedup", "tokenize", "report"} == set(m_local["stages"])
    # report.html names its own output folder and times: its size is not the run's data
    for summary in (shard_summary(m_remote), shard_summary(m_local)):
        summary["report"].pop("report.html")
    assert {k: v for k, v in shard_summary(m_remote).items() if k != "report"} == {
        k: v for k, v in shard_summary(m_local).items() if k != "report"
    }
    profile = [shard_summary(m)["report"]["stats"] for m in (m_remote, m_local)]
    assert profile[0] == profile[1]
    # The sha256 are not compared. Parquet files differ in bytes between any two JVMs: parquet-mr lists each
    # column chunk's encodings from a HashSet of enum constants, whose order follows the JVM's identity hash
    # codes. The JSON statistics hold the same counts (compared above) but may list equal counts in another order
    # (Counter.most_common keeps the order in which Spark returned the groups).


MY_FILTER = """
from corpus.filters import KEEP, Filter


class ShortDocuments(Filter):
    name = "short_documents"

    def __init__(self, min_words: int = 20) -> None:
        self.min_words = min_words

    def filter(self, doc):
        return KEEP if len((doc.text or "").split()) >= self.min_words else (False, "too_short")
"""


def test_a_users_own_filter_by_import_path_runs_on_the_executors(
    cluster: Cluster, bare_python: Path, sample_dir: Path, tmp_path: Path
):
    """`filters.short.class=my_filters:ShortDocuments`: a module only the driver can import (on its PYTHONPATH);
    the run ships it to the executors, whose bare interpreter could not import it otherwise."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "my_filters.py").write_text(MY_FILTER)
    out = tmp_path / "out"
    args = ("corpus/cli.py", "extract", "conf/fineweb.yaml", f"input={sample_dir}", f"output={out}", "crawl=test",
            "filters.short.class=my_filters:ShortDocuments", "filters.short.min_words=400")  # fmt: skip
    cmd = submit_command(cluster, *args)
    proc = subprocess.run(
        cmd, cwd=ROOT, env={**submit_env(bare_python), "PYTHONPATH": str(code)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=SUBMIT_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{executor_logs(cluster)}"
    assert "my_filters.py" in proc.stdout  # said that it shipped the module
    removed = pq.read_table(out / "removed").to_pylist()
    short = [r for r in removed if r["removed_by"] == "short"]
    assert short and {r["reason"] for r in short} == {"too_short"}
    assert corpus_verify(out).returncode == 0


@pytest.fixture(scope="module")
def fault_input(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Copies of the sample's WARC files under other names: a longer crawl of known content."""
    folder = tmp_path_factory.mktemp("fault-input")
    for copy in range(FAULT_COPIES):
        for src in sorted(sample_dir.glob("*.warc.gz")):
            shutil.copyfile(src, folder / f"copy{copy:02d}-{src.name}")
    return sorted(folder.glob("*.warc.gz"))


@pytest.fixture(scope="module")
def clean_output(fault_input: list[Path], spark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extract and stats stages over the fault tests' input, undisturbed (local mode: the first test shows
    that the cluster writes the same)."""
    from corpus.config import load_config
    from corpus.jobs.run import run_stages

    output = tmp_path_factory.mktemp("clean") / "out"
    config = load_config(
        str(ROOT / "conf" / "sample.yaml"),
        [f"input={fault_input[0].parent}", f"output={output}", "stages=[extract,stats]"],
    )
    started = time.monotonic()
    run_stages(config, spark)
    print(f"clean run (local mode): {time.monotonic() - started:.1f}s", file=sys.stderr)
    return output


def staged_files(output: Path) -> set[str]:
    """Input files whose task has written its shards (`_tmp/extract-*/<status>-<file>-attempt-<n>.parquet`; a shard
    of these small inputs is written when its task ends)."""
    return {p.name.split("-")[1] for p in output.glob("_tmp/extract-*/*-attempt-*.parquet")}


def test_killed_python_worker_mid_extract(
    cluster: Cluster, bare_python: Path, fault_input: list[Path], clean_output: Path, tmp_path: Path
):
    """A Python worker killed (SIGKILL) in the middle of the extract job while it reads an input file, at a
    random moment in the first half of the job (after a random number of committed files, plus up to half a
    second): its task is retried, the job finishes, and the output is the clean run's."""
    rng = random.Random(f"{SEED}-worker")
    after, delay = rng.randint(1, len(fault_input) // 2), rng.uniform(0.0, 0.5)
    about = f"CORPUS_FAULT_SEED={SEED}: kill a Python worker in a task {delay:.2f}s after {after} committed file(s)"
    print(about, file=sys.stderr)
    output, log, spark_log = tmp_path / "out", tmp_path / "driver.log", tmp_path / "spark.log"
    # the console gets one line per problem; task failures go to the Spark log file (corpus/data/log4j2.properties)
    java = f"-Dlog4j2.configurationFile=file:{ROOT}/corpus/data/log4j2.properties -Dcorpus.spark.log={spark_log}"
    args = ("--driver-java-options", java, "jobs/extract.py", "--config", "conf/sample.yaml",
            f"input={fault_input[0].parent}", f"output={output}")  # fmt: skip
    proc = submit_in_background(cluster, bare_python, log, *args)
    try:
        deadline = time.monotonic() + SUBMIT_TIMEOUT
        while len(staged_files(output)) < after:
            assert proc.poll() is None, f"{about}: the job ended before the kill\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{about}: not enough files committed in time"
            time.sleep(0.05)
        time.sleep(delay)
        victims: list[int] = []
        while not victims:
            assert proc.poll() is None and not (output / "manifest.json").exists(), (
                f"{about}: the job ended before the kill; make the input longer (FAULT_COPIES)"
            )
            victims = workers_reading(cluster, fault_input[0].parent)
        victim = rng.choice(victims)
        done = len(staged_files(output))
        os.kill(victim, signal.SIGKILL)
        print(f"{about}: killed {victim} with {done} of {len(fault_input)} files committed", file=sys.stderr)
        assert proc.wait(SUBMIT_TIMEOUT) == 0, f"{about}\n{log.read_text()[-4000:]}\n{executor_logs(cluster)}"
    finally:
        stop_group(proc)
    driver_log = spark_log.read_text()
    assert re.search(r"Lost task \S+ in stage", driver_log), f"{about}: no task was lost\n{driver_log[-3000:]}"
    assert 0 < done < len(fault_input), about  # the kill was mid-job: some files committed, not all
    assert corpus_verify(output).returncode == 0
    assert_same_extract_output(clean_output, output)
    clean_stats = json.loads((clean_output / "stats" / "stats.json").read_text())
    stats = json.loads((output / "stats" / "stats.json").read_text())
    # `samples` are the smallest ids per removal reason: the copies tie on ids, so which copy is named may vary
    assert {k: v for k, v in stats.items() if k != "samples"} == {
        k: v for k, v in clean_stats.items() if k != "samples"
    }


@dataclass
class Resumed:
    about: str
    output: Path
    args: tuple[str, ...]
    done_at_kill: list[int]  # input files recorded as published when the job was killed
    unfinished_verify: subprocess.CompletedProcess[str]
    unfinished_had_manifest: bool
    published_before: dict[str, tuple[int, int, int]]  # the shards of those files, before the rerun
    published_after: dict[str, tuple[int, int, int]]
    rerun_log: str


@pytest.fixture(scope="module")
def resumed(
    cluster: Cluster, bare_python: Path, fault_input: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Resumed:
    """An extract job (extract.files_per_job=1) whose driver is killed with its whole process group at a random
    moment (after a random number of published files, plus up to half a second), then the same command again."""
    rng = random.Random(f"{SEED}-driver")
    after, delay = rng.randint(1, RESUME_FILES - 2), rng.uniform(0.0, 0.5)
    about = f"CORPUS_FAULT_SEED={SEED}: kill the driver {delay:.2f}s after {after} published file(s)"
    print(about, file=sys.stderr)
    folder = tmp_path_factory.mktemp("resume")
    output = folder / "out"
    inputs = ",".join(str(p) for p in fault_input[:RESUME_FILES])
    args = (
        "jobs/extract.py", "--config", "conf/sample.yaml", f"input={inputs}", f"output={output}",
        "extract.files_per_job=1",
    )  # fmt: skip
    progress = output / "_progress" / "extract.json"
    proc = submit_in_background(cluster, bare_python, folder / "killed.log", *args)
    try:
        deadline = time.monotonic() + SUBMIT_TIMEOUT
        while len(json.loads(progress.read_text())["done"] if progress.exists() else []) < after:
            assert proc.poll() is None, f"{about}: the job ended early\n{(folder / 'killed.log').read_text()}"
            assert time.monotonic() < deadline, f"{about}: not enough files published in time"
            time.sleep(0.05)
        time.sleep(delay)
        assert proc.poll() is None, f"{about}: the job ended before the kill"
        os.killpg(proc.pid, signal.SIGKILL)  # spark-submit's JVM and the Python driver, at once
        proc.wait(60)
    finally:
        stop_group(proc)
    done = json.loads(progress.read_text())["done"]
    print(f"{about}: killed with files {done} of {RESUME_FILES} published", file=sys.stderr)
    assert 0 < len(done) < RESUME_FILES, f"{about}: the kill was not mid-way ({done})"
    unfinished_verify = corpus_verify(output)
    had_manifest = (output / "manifest.json").exists()
    shards = [p for f in EXTRACT_FOLDERS for p in (output / f).glob("part-*.parquet") if shard_index(p.name) in done]
    before = snapshot(shards)

    rerun_log = submit(cluster, bare_python, *args)
    return Resumed(about, output, args, done, unfinished_verify, had_manifest, before, snapshot(shards), rerun_log)


def test_killed_job_resumes_without_redoing_finished_files(resumed: Resumed, clean_output: Path):
    """The driver's whole process group killed mid-way: the partial output has no manifest and fails `corpus
    verify`; the rerun (files_per_job=1) starts after the published files, keeps their shards as they were, and
    ends with the clean run's output."""
    about = resumed.about
    assert not resumed.unfinished_had_manifest, about
    assert resumed.unfinished_verify.returncode != 0, f"{about}: partial output passed verify"
    assert "manifest.json is missing" in resumed.unfinished_verify.stdout

    assert f"extract: resuming, {len(resumed.done_at_kill)} of {RESUME_FILES} files were done" in resumed.rerun_log
    assert resumed.published_before, about
    assert resumed.published_after == resumed.published_before, f"{about}: finished files were redone"
    assert corpus_verify(resumed.output).returncode == 0
    assert not (resumed.output / "_progress").exists() and not (resumed.output / "_tmp").exists()
    assert_same_extract_output(clean_output, resumed.output, files=RESUME_FILES)


def test_second_run_of_finished_stages_is_a_no_op(cluster: Cluster, bare_python: Path, resumed: Resumed):
    """The same command over a finished output skips every stage and changes no file."""
    files = [p for p in resumed.output.rglob("*") if p.is_file()]
    before = snapshot(files)
    manifest = (resumed.output / "manifest.json").read_bytes()
    log = submit(cluster, bare_python, *resumed.args)
    assert "extract: up to date (same settings and inputs), skipped" in log
    assert "stats: up to date (same settings and inputs), skipped" in log
    assert snapshot([p for p in resumed.output.rglob("*") if p.is_file()]) == before
    assert (resumed.output / "manifest.json").read_bytes() == manifest


@pytest.fixture(scope="module")
def held_app(cluster: Cluster, bare_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict]]:
    """The probe application, left running with both executors busy; yields what the executors reported."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe_app.py").write_text(PROBE_APP)
    report = folder / "imports.json"
    log = folder / "driver.log"
    proc = submit_in_background(cluster, bare_python, log, str(folder / "probe_app.py"), str(report), "hold")
    try:
        deadline = time.monotonic() + SUBMIT_TIMEOUT
        while not report.exists():
            assert proc.poll() is None, log.read_text()[-4000:] + executor_logs(cluster)
            assert time.monotonic() < deadline, "the probe application did not report in time"
            time.sleep(0.5)
        yield json.loads(report.read_text())
    finally:
        stop_group(proc, signal.SIGTERM)


def test_executors_import_corpus_from_the_shipped_zip(held_app: list[dict], bare_python: Path, cluster: Cluster):
    assert len(held_app) == 2
    for row in held_app:
        assert row["python"] == str(bare_python)
        assert row["cwd"].startswith(str(cluster.state / "work") + "/")  # an executor launched by a worker
        assert re.search(r"/corpus-[0-9a-f]{16}\.zip/corpus/__init__\.py$", row["corpus"]), row
        zip_path = row["corpus"].removesuffix("/corpus/__init__.py")
        assert row["filters"] == f"{zip_path}/corpus/filters/__init__.py"
        assert row["jobs"] == f"{zip_path}/corpus/jobs/__init__.py"
        assert not row["corpus"].startswith(str(ROOT))


def test_cluster_down_stops_everything_it_started(held_app: list[dict], cluster: Cluster):
    """With an application running (two executor JVMs and their Python workers), cluster-down leaves nothing."""
    deadline = time.monotonic() + 120
    while len(python_workers(cluster)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)  # wait for both Python workers to be in their tasks
    running = cluster_processes(cluster)
    assert len(running) >= 3 + 2 + 2, running  # master, 2 workers, 2 executors, their Python workers

    started = time.monotonic()
    down = subprocess.run([str(SCRIPTS / "cluster-down"), "--dir", str(cluster.state)], capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    print(f"cluster-down: {time.monotonic() - started:.1f}s", file=sys.stderr)
    assert cluster_processes(cluster) == []
    assert not list(cluster.state.glob("*.pid"))

    again = subprocess.run([str(SCRIPTS / "cluster-down"), "--dir", str(cluster.state)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "nothing was running" in again.stderr
