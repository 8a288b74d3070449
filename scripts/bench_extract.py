"""Benchmark: the extraction stage, ours on Spark local[2] vs datatrove's FineWeb base pipeline, side by side.

datatrove runs job 0 of its examples/fineweb.py (WarcReader -> URLFilter -> Trafilatura -> LanguageFilter(["en"])
-> Gopher repetition -> Gopher quality -> C4 -> FineWeb quality, every filter with its exclusion writer,
JsonlWriter) with LocalPipelineExecutor(workers=2), one task per file; ours runs `corpus extract` (stage
`extract` only) with spark.master=local[2]. Both read the same WARCs, with the same trafilatura and the same
lid.176.ftz.

Each system runs on a small and a large input, each in a fresh process. The marginal throughput
(HTML records in large - small) / (wall time in large - small) cancels fixed start-up costs (Spark's JVM,
datatrove's blocklist loading) and is what matters at scale. Peak RSS and CPU seconds are sampled from /proc
over the whole process tree (driver, JVM, Python workers, datatrove's forkserver workers and extraction
sandboxes) every 0.2 s; CPU of a process that exits between two samples is counted up to its last sample.

The CPU is also split by process: trafilatura's sandbox, Spark's Python workers (the rest of the recipe), the JVM;
with the peak RSS of one Python worker (alone, and with the sandbox it started). `--before CHECKOUT` runs another
checkout's code (its own .venv) in the same invocation, interleaved with ours.

`--split` instead runs the recipe in process (no Spark) over the data and prints where the CPU of each HTML
record goes: trafilatura's sandbox, then per step in the worker (reader, charset, guard, sandbox IPC, URL filter,
each filter, Arrow conversion), for ours and `--before`, alternating `--repeat` times.

    python scripts/bench_extract.py [--data ../shared/data/ccdev] [--copies 2] [--out bench-out/extract]
                                    [--before /work/main] [--split [--repeat 2]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

DATATROVE_JOB = r"""
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
    GopherRepetitionFilter, LanguageFilter, URLFilter)
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers.jsonl import JsonlWriter
from corpus.lid import default_model_path

data, out, tasks = sys.argv[1], sys.argv[2], int(sys.argv[3])
DUMP = "bench"
# The same lid.176.ftz as ours (an instance attribute, so that it travels to the worker processes).
language = LanguageFilter(languages=["en"], exclusion_writer=JsonlWriter(
    f"{out}/2_non_english/", output_filename="${language}/" + DUMP + "/${rank}.jsonl.gz"))
language.model.MODEL_URL = default_model_path()
LocalPipelineExecutor(
    pipeline=[
        WarcReader(data, glob_pattern="*.warc.gz", default_metadata={"dump": DUMP}),
        URLFilter(exclusion_writer=JsonlWriter(f"{out}/removed/1_url/{DUMP}")),
        Trafilatura(favour_precision=True),
        language,
        GopherRepetitionFilter(exclusion_writer=JsonlWriter(f"{out}/removed/3_gopher_rep/{DUMP}")),
        GopherQualityFilter(exclusion_writer=JsonlWriter(f"{out}/removed/4_gopher_qual/{DUMP}")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=JsonlWriter(f"{out}/removed/5_c4/{DUMP}")),
        FineWebQualityFilter(exclusion_writer=JsonlWriter(f"{out}/removed/6_fineweb_qual/{DUMP}")),
        JsonlWriter(f"{out}/output/{DUMP}"),
    ],
    tasks=tasks,
    workers=2,
    logging_dir=f"{out}/logs",
).run()
"""


SPLIT_JOB = r"""
import collections, functools, glob, itertools, json, resource, sys, time
import corpus.document as document
import corpus.io.warc as warc
from corpus.config import config_from_dict
from corpus.recipes import fineweb, recipe_for

acc = collections.Counter()


def timed(owner, name, label):
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            acc[label] += time.process_time() - start

    setattr(owner, name, wrapper)


def records(path):
    it = warc.iter_records(path)
    while True:
        start = time.process_time()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            acc["reader (headers)"] += time.process_time() - start
        yield item


files = sorted(glob.glob(sys.argv[1] + "/*.warc.gz"))
recipe = recipe_for(config_from_dict({}))
# imports, lazy loads and the sandbox's start outside the timing (the sandbox's CPU is counted when it is reaped,
# at the end: it includes its start-up, once per run)
document.to_record_batch(list(itertools.islice(recipe.process_file(files[0]), 5)))
timed(fineweb, "decode_html", "charset")
timed(fineweb, "too_many_attributes", "guard")
timed(type(recipe.sandbox), "run", "sandbox IPC")
timed(type(recipe), "screen", "status + url")
for flt in recipe.text_filters:
    timed(flt, "filter", flt.name)
timed(document, "to_record_batch", "arrow")
html = 0
start = time.process_time()
for path in files:
    for batch in document.batched(recipe.process_file(path, records(path))):
        html += sum(t in fineweb.HTML_TYPES for t in batch.column("content_type").to_pylist())
total = time.process_time() - start
recipe.close()
children = resource.getrusage(resource.RUSAGE_CHILDREN)
acc["rest of the loop"] = total - sum(acc.values())
print(json.dumps({"html": html, "worker": total, "sandbox": children.ru_utime + children.ru_stime, "steps": acc}))
"""


def run_split(python: str, data: str) -> dict:
    """The in-process CPU split of one checkout's recipe over `data` (a fresh process)."""
    out = subprocess.run([python, "-c", SPLIT_JOB, data], capture_output=True, text=True, cwd="/tmp", check=False)
    if out.returncode != 0:
        raise SystemExit(f"{python} split failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def split_main(data: str, before: str | None, repeat: int) -> int:
    """--split: per-step CPU per HTML record, ours and `before`, alternating, the mean of `repeat` runs."""
    pythons = {"ours": sys.executable}
    if before:
        pythons = {"before": str(Path(before).resolve() / ".venv" / "bin" / "python"), **pythons}
    runs: dict[str, list[dict]] = {name: [] for name in pythons}
    for i in range(repeat):
        for name, python in pythons.items():
            print(f"split {name}, run {i + 1} (load {os.getloadavg()[0]:.2f})", flush=True)
            runs[name].append(run_split(python, data))
    steps = sorted(
        {k for rs in runs.values() for r in rs for k in r["steps"]}, key=lambda k: -runs["ours"][0]["steps"].get(k, 0)
    )
    print()
    print("CPU ms per HTML record, in process (mean of runs):")
    print(f"{'step':24} " + " ".join(f"{name:>8}" for name in pythons))

    def row(label: str, value: Callable[[dict], float]) -> None:
        cells = []
        for rs in runs.values():
            cells.append(sum(1000 * value(r) / r["html"] for r in rs) / len(rs))
        print(f"{label:24} " + " ".join(f"{c:8.2f}" for c in cells))

    row("trafilatura (sandbox)", lambda r: r["sandbox"])
    row("worker, all but it", lambda r: r["worker"])
    for step in steps:
        row(f"  {step}", lambda r, step=step: r["steps"].get(step, 0.0))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (of any of its threads), [] when it is gone."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return found


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(_children(pid))
    return pids


def _sample(pid: int, task: str = "") -> tuple[float, int] | None:
    """(CPU seconds, RSS bytes) of one process (or of its thread `task`, "task/<tid>"), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/{task}/stat" if task else f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK, int(fields[21]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


#: Process classes of the CPU split: trafilatura's sandbox (zygote and workers), Spark's Python workers (everything
#: of the recipe but trafilatura: reading, charset, LID, filters, Parquet), the JVM, and the rest (the driver's
#: Python, datatrove's processes).
CLASSES = ("sandbox", "python_worker", "jvm", "other")


def _jit_threads(pid: int) -> dict[int, float]:
    """CPU seconds of each JIT compiler thread of a JVM ({thread id: seconds}). The JIT is a fixed cost per JVM
    (it compiles what gets hot, once), so the marginal JVM cost per record is shown with and without it."""
    found: dict[int, float] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as fh:
                if "CompilerThre" not in fh.read():
                    continue
        except OSError:
            continue
        if (sample := _sample(pid, f"task/{task}")) is not None:
            found[int(task)] = sample[0]
    return found


def _classify(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return "other"
    if b"corpus.sandbox" in b" ".join(argv):
        return "sandbox"
    if argv and argv[0].endswith(b"java"):
        return "jvm"
    if b"pyspark.daemon" in argv or b"pyspark.worker" in argv:
        return "python_worker"
    return "other"


def measure(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> dict[str, float]:
    """Run `cmd`; return wall seconds, peak RSS of the process tree (MiB), sampled CPU seconds (in all and per
    process class) and the peak RSS of one Spark Python worker (with and without its sandbox processes)."""
    cpu: dict[int, float] = {}
    jit: dict[int, float] = {}  # per JIT compiler thread (they come and go: each one's last sample is kept)
    kind: dict[int, str] = {}
    peak = peak_worker = peak_worker_tree = 0
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        done = threading.Event()

        def watch() -> None:
            nonlocal peak, peak_worker, peak_worker_tree
            while not done.is_set():
                rss = 0
                for pid in _tree(proc.pid):
                    sample = _sample(pid)
                    if sample:
                        if kind.get(pid, "other") == "other":  # again until it has exec'd (Popen, spark-submit)
                            kind[pid] = _classify(pid)
                        cpu[pid] = max(cpu.get(pid, 0.0), sample[0])
                        rss += sample[1]
                        if kind[pid] == "jvm":
                            for tid, seconds in _jit_threads(pid).items():
                                jit[tid] = max(jit.get(tid, 0.0), seconds)
                        if kind[pid] == "python_worker":
                            peak_worker = max(peak_worker, sample[1])
                            # a worker with the sandbox it started (pyspark's daemon has no sandbox children)
                            tree = [_sample(p) for p in _tree(pid)[1:]]
                            tree_rss = sample[1] + sum(t[1] for t in tree if t)
                            peak_worker_tree = max(peak_worker_tree, tree_rss)
                peak = max(peak, rss)
                done.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = proc.wait()
        done.set()
        watcher.join()
    wall = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed with exit code {code}; see {log}")
    result = {"wall_s": wall, "peak_rss_mib": peak / 2**20, "cpu_s": sum(cpu.values())}
    for name in CLASSES:
        result[f"cpu_{name}_s"] = sum(c for pid, c in cpu.items() if kind.get(pid) == name)
    result["cpu_jvm_jit_s"] = sum(jit.values())
    result["worker_rss_mib"] = peak_worker / 2**20
    result["worker_tree_rss_mib"] = peak_worker_tree / 2**20
    return result


def html_records(files: list[Path]) -> int:
    from corpus.io.warc import WarcRecord, iter_records

    return sum(
        1
        for f in files
        for r in iter_records(str(f))
        if isinstance(r, WarcRecord)
        and r.rec_type == "response"
        and r.payload_type in ("text/html", "application/xhtml+xml")
    )


def make_input(folder: Path, sources: list[Path], copies: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for copy in range(copies):
        for src in sources:
            dst = folder / f"c{copy}-{src.name}"
            if not dst.exists():
                dst.symlink_to(src.resolve())
            files.append(dst)
    return files


def run_ours(data: Path, out: Path, env: dict[str, str], log: Path, corpus: str) -> dict[str, float]:
    cmd = [
        corpus, "extract", f"input={data}", f"output={out}",
        "spark.master=local[2]", "stages=[extract]", "spark.ui.showConsoleProgress=false",
    ]  # fmt: skip
    # from the checkout's own folder: Spark's Python workers put their working directory first on sys.path
    result = measure(cmd, env, log, Path(corpus).resolve().parent.parent.parent)
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    result["kept"] = sum(s["rows"] for s in stages["extract"]["outputs"]["filtered"])
    for name, info in stages.items():  # `corpus extract` also counts (stats) and profiles (report) what it wrote
        span = datetime.fromisoformat(info["finished"]) - datetime.fromisoformat(info["started"])
        result[f"stage_{name}_s"] = span.total_seconds()
    return result


def run_datatrove(data: Path, out: Path, tasks: int, env: dict[str, str], log: Path) -> dict[str, float]:
    result = measure([sys.executable, "-c", DATATROVE_JOB, str(data), str(out), str(tasks)], env, log)
    import gzip

    kept = 0
    for path in (out / "output").rglob("*.jsonl.gz"):
        with gzip.open(path, "rt") as fh:
            kept += sum(1 for _ in fh)
    result["kept"] = kept
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ccdev"))
    parser.add_argument("--small-files", type=int, default=2, help="files in the small input (default 2)")
    parser.add_argument("--copies", type=int, default=2, help="the large input is the data this many times")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "extract"))
    parser.add_argument("--skip-warmup", action="store_true")
    parser.add_argument(
        "--before", metavar="CHECKOUT", help="also run the code of another checkout with its own .venv (e.g. main)"
    )
    parser.add_argument("--split", action="store_true", help="the in-process CPU split per step instead")
    parser.add_argument("--repeat", type=int, default=2, help="--split: runs per checkout (default 2)")
    args = parser.parse_args()
    if args.split:
        return split_main(str(Path(args.data).resolve()), args.before, args.repeat)

    sources = sorted(Path(args.data).glob("*.warc.gz"))
    if not sources:
        raise SystemExit(f"no *.warc.gz under {args.data}")
    work = Path(args.out)
    shutil.rmtree(work, ignore_errors=True)
    small = make_input(work / "in-small", sources[: args.small_files], 1)
    large = make_input(work / "in-large", sources, args.copies)
    records = {"small": html_records(small), "large": html_records(large)}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "CORPUS_SPARK_LOG_LEVEL": "ERROR"}
    print(f"inputs: small {len(small)} files / {records['small']} HTML records, "
          f"large {len(large)} files / {records['large']} HTML records", flush=True)  # fmt: skip

    ours = str(Path(sys.executable).parent / "corpus")
    systems: dict[str, Callable[[Path, Path, int, Path], dict[str, float]]] = {
        "datatrove": lambda folder, out, files, log: run_datatrove(folder, out, files, env, log)
    }
    if args.before:
        before = str(Path(args.before).resolve() / ".venv" / "bin" / "corpus")
        systems["before"] = lambda folder, out, files, log: run_ours(folder, out, env, log, before)
    systems["ours"] = lambda folder, out, files, log: run_ours(folder, out, env, log, ours)

    if not args.skip_warmup:  # fill caches (blocklists, page cache) outside the timed runs
        print("warm-up runs ...", flush=True)
        for system, run in systems.items():
            run(work / "in-small", work / f"warm-{system}", len(small), work / f"warm-{system}.log")

    results: dict[str, dict[str, dict[str, float]]] = {system: {} for system in systems}
    for size, files in (("small", small), ("large", large)):
        for system, run in systems.items():  # interleaved, so that a change of load hits every system alike
            print(f"{system}, {size} ... (load {os.getloadavg()[0]:.2f})", flush=True)
            results[system][size] = run(work / f"in-{size}", work / f"{system}-{size}", len(files),
                                        work / f"{system}-{size}.log")  # fmt: skip
    load = os.getloadavg()

    print()
    print(f"{'system':10} {'input':6} {'records':>8} {'wall s':>8} {'rec/s':>7} {'CPU s':>7} {'rec/CPU-s':>9} "
          f"{'peak RSS MiB':>12} {'worker MiB':>10} {'kept':>6}")  # fmt: skip
    marginal = {}
    d_records = records["large"] - records["small"]
    for system, runs in results.items():
        for size, r in runs.items():
            n = records[size]
            worker = f"{r['worker_tree_rss_mib']:10.0f}" if r["worker_tree_rss_mib"] else f"{'-':>10}"
            print(f"{system:10} {size:6} {n:8d} {r['wall_s']:8.1f} {n / r['wall_s']:7.1f} {r['cpu_s']:7.1f} "
                  f"{n / r['cpu_s']:9.1f} {r['peak_rss_mib']:12.0f} {worker} {int(r['kept']):6d}")  # fmt: skip
        large_run, small_run = runs["large"], runs["small"]
        marginal[system] = {
            "records_per_s": d_records / (large_run["wall_s"] - small_run["wall_s"]),
            "records_per_cpu_s": d_records / (large_run["cpu_s"] - small_run["cpu_s"]),
            **{
                f"ms_{name}": 1000 * (large_run[f"cpu_{name}_s"] - small_run[f"cpu_{name}_s"]) / d_records
                for name in (*CLASSES, "jvm_jit")
            },
            "worker_rss_mib": max(r["worker_rss_mib"] for r in runs.values()),
            "worker_tree_rss_mib": max(r["worker_tree_rss_mib"] for r in runs.values()),
        }
    print()
    cores = 2
    for system, m in marginal.items():
        print(f"marginal throughput {system:10}: {m['records_per_s']:6.1f} records/s wall "
              f"({m['records_per_s'] / cores:5.1f} per core of local[2]), "
              f"{m['records_per_cpu_s']:6.1f} records per CPU-second (sampled)")  # fmt: skip
    print()
    print("marginal CPU per HTML record (ms): sandbox = trafilatura (+ its IPC), python_worker = the rest of the")
    print("recipe (reading, charset, LID, filters, Parquet), jvm = Spark (scheduling; Parquet writing in code before")
    print("8ce04e4), other = driver")
    print("(jvm_jit: the part of jvm spent in the JIT compiler threads, a fixed cost per JVM that short runs do not")
    print("amortize; jvm - jvm_jit is what grows with the records)")
    names = (*CLASSES, "jvm_jit")
    print(f"{'system':10} " + " ".join(f"{name:>13}" for name in names) + f" {'total':>8} {'worker MiB':>10}")
    for system, m in marginal.items():
        total = sum(m[f"ms_{name}"] for name in CLASSES)
        print(f"{system:10} " + " ".join(f"{m[f'ms_{name}']:13.1f}" for name in names) +
              f" {total:8.1f} {m['worker_tree_rss_mib']:10.0f}")  # fmt: skip
    print()
    print("wall s of each stage of `corpus extract` (manifest times, whole seconds), small -> large; marginal ms per")
    print("HTML record (wall, both cores)")
    for system, runs in results.items():
        stages = [k for k in runs["large"] if k.startswith("stage_")]
        if stages:
            parts = []
            for key in stages:
                small_s, large_s = runs["small"].get(key, 0.0), runs["large"][key]
                per_record = 1000 * (large_s - small_s) / d_records
                parts.append(f"{key[6:-2]} {small_s:.0f} -> {large_s:.0f} ({per_record:.1f})")
            print(f"{system:10} " + ", ".join(parts))
    print()
    ratios = {}
    for system in marginal:
        if system == "datatrove":
            continue
        ratio = marginal[system]["records_per_s"] / marginal["datatrove"]["records_per_s"]
        cpu_ratio = marginal[system]["records_per_cpu_s"] / marginal["datatrove"]["records_per_cpu_s"]
        ratios[system] = {"wall": ratio, "cpu": cpu_ratio}
        print(f"ratio {system}/datatrove: {ratio:.2f}x (wall, marginal), {cpu_ratio:.2f}x (CPU, marginal)")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    (work / "results.json").write_text(
        json.dumps(
            {"records": records, "runs": results, "marginal": marginal, "ratios": ratios, "load": load}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
