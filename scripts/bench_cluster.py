"""Benchmark: the same recipe in Spark local mode (local[2]) and on a standalone cluster of this machine (two
1-core workers from scripts/cluster-up), both sent with scripts/submit, on the same input.

Input: the shared ccdev crawl (../shared/data/ccdev, or $CORPUS_SHARED_DATA/ccdev) when present, else the
generated sample crawl (scripts/make_sample.py). The job is jobs/extract.py (the extract and stats stages) with
conf/fineweb.yaml unless --config/--job say otherwise. Both runs use the same driver settings (--driver-memory);
local mode runs the tasks in the driver's JVM, the cluster in two executors (spark.executor.memory 1g each).

`--modes` may name the cluster's size: `cluster:1,cluster:2` runs the job on a 1-worker and on a 2-worker cluster
(each worker `--cores` cores) and prints how close to linear the second is (the extract stage's documents/s per
worker, the larger cluster's against the smaller's).

Reported per mode: wall seconds of the submitted application (spark-submit start to exit: driver and, on the
cluster, executor start-up included; cluster-up is timed separately), documents (rows of filtered/, removed/
and skipped/: every record of the input), documents per second of that wall time, the extract stage's own
seconds and documents per second (from the driver's last progress line: Python workers' start-up included,
JVM start-up and the stats stage not), and whether the two outputs hold the same rows.

    python scripts/bench_cluster.py [--input DIR] [--modes local,cluster] [--out bench-out/cluster]
    python scripts/bench_cluster.py --modes cluster:1,cluster:2 --copies 2     # scaling with workers
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
SHARED = Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data"))


def default_input(work: Path) -> Path:
    ccdev = SHARED / "ccdev"
    if any(ccdev.glob("*.warc.gz")):
        return ccdev
    sample = work / "sample"
    subprocess.run([sys.executable, str(SCRIPTS / "make_sample.py"), str(sample)], check=True)
    return sample


def submit(master: str, args: argparse.Namespace, input_dir: Path, output: Path, log: Path) -> float:
    """Run the job with scripts/submit; return its wall seconds."""
    if output.exists():
        shutil.rmtree(output)
    cmd = [
        str(SCRIPTS / "submit"), "--master", master, "--driver-memory", args.driver_memory,
        "--conf", "spark.ui.showConsoleProgress=false",
        args.job, "--config", args.config, f"input={input_dir}", f"output={output}",
    ]  # fmt: skip
    print(f"$ {shlex.join(cmd)}", file=sys.stderr)
    start = time.monotonic()
    with open(log, "w") as fh:
        code = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - start
    if code:
        raise SystemExit(f"{args.job} on {master} failed ({code}); see {log}")
    return wall


#: The driver's progress line at the end of the extract stage (corpus/jobs/progress.py).
PROGRESS = re.compile(r"corpus: extract: (\d+)/(\d+) files, ([\d,]+) documents, ([\d,.]+) documents/s")


def extract_rate(log: Path) -> tuple[float, float] | None:
    """(seconds, documents/s) of the extract stage, from the last progress line of the driver's log."""
    found = PROGRESS.findall(log.read_text(errors="replace"))
    if not found:
        return None
    docs, rate = int(found[-1][2].replace(",", "")), float(found[-1][3].replace(",", ""))
    return (docs / rate if rate else 0.0), rate


def documents(output: Path) -> dict[str, int]:
    manifest = json.loads((output / "manifest.json").read_text())
    outputs = manifest["stages"]["extract"]["outputs"]
    return {folder: sum(shard["rows"] for shard in outputs[folder]) for folder in ("filtered", "removed", "skipped")}


def same_rows(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.glob("*/*.parquet"))
    if files != sorted(p.relative_to(b) for p in b.glob("*/*.parquet")):
        return False
    return all(pq.read_table(a / f).equals(pq.read_table(b / f)) for f in files)


def copied_input(source: Path, copies: int, work: Path) -> Path:
    """A folder holding every WARC of `source` `copies` times (symbolic links), for a longer extract stage."""
    folder = work / f"input-x{copies}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for copy in range(copies):
        for path in sorted(source.glob("*.warc.gz")):
            (folder / f"copy{copy}-{path.name}").symlink_to(path.resolve())
    return folder


def start_cluster(args: argparse.Namespace, workers: int, state: Path) -> tuple[str, float]:
    cmd = [
        str(SCRIPTS / "cluster-up"), "--workers", str(workers), "--cores", str(args.cores),
        "--memory", args.worker_memory, "--dir", str(state),
    ]  # fmt: skip
    print(f"$ {shlex.join(cmd)}", file=sys.stderr)
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"cluster-up failed ({proc.returncode}); see {state / 'logs'}")
    return proc.stdout.strip().splitlines()[-1], time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, help="WARC folder (default: ../shared/data/ccdev, else the sample)")
    parser.add_argument("--config", default="conf/fineweb.yaml", help="recipe (default: conf/fineweb.yaml)")
    parser.add_argument("--job", default="jobs/extract.py", help="job file (default: jobs/extract.py)")
    parser.add_argument(
        "--modes", default="local,cluster", help="order of the runs: local, cluster, cluster:N (default: local,cluster)"
    )
    parser.add_argument("--copies", type=int, default=1, help="read the input's WARCs this many times (default: 1)")
    parser.add_argument("--local-master", default="local[2]", help="local-mode master (default: local[2])")
    parser.add_argument("--workers", type=int, default=2, help="cluster workers (default: 2)")
    parser.add_argument("--cores", type=int, default=1, help="cores per worker (default: 1)")
    parser.add_argument("--worker-memory", default="2g", help="memory per worker (default: 2g)")
    parser.add_argument("--driver-memory", default="2g", help="spark-submit --driver-memory (default: 2g)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "cluster", help="work folder")
    args = parser.parse_args()

    work = args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    input_dir = (args.input or default_input(work)).resolve()
    if args.copies > 1:
        input_dir = copied_input(input_dir, args.copies, work)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not all(re.fullmatch(r"local|cluster(:\d+)?", m) for m in modes):
        parser.error("--modes takes local, cluster and cluster:N")
    results: dict[str, dict] = {}
    cluster_up: dict[str, float] = {}
    for mode in modes:
        output = work / f"out-{mode.replace(':', '')}"
        log = work / f"{mode.replace(':', '')}.log"
        if mode == "local":
            wall = submit(args.local_master, args, input_dir, output, log)
            label = f"{args.local_master} (one JVM)"
            workers = 1
        else:
            workers = int(mode.split(":")[1]) if ":" in mode else args.workers
            state = work / "cluster-state"
            master, cluster_up[mode] = start_cluster(args, workers, state)
            try:
                wall = submit(master, args, input_dir, output, log)
            finally:
                subprocess.run([str(SCRIPTS / "cluster-down"), "--dir", str(state)], check=False)
            label = f"standalone {workers} x {args.cores} core(s)"
        counts = documents(output)
        total = sum(counts.values())
        stage = extract_rate(log)
        results[mode] = {
            "label": label,
            "workers": workers,
            "output": str(output),
            "wall": wall,
            "documents": total,
            "kept": counts["filtered"],
            "extract_seconds": stage[0] if stage else None,
            "extract_docs_per_s": stage[1] if stage else None,
        }

    print(f"\n    {shlex.join([sys.executable, *sys.argv])}\n")
    print(f"input: {input_dir}; recipe: {args.config}; job: {args.job}")
    for mode, seconds in cluster_up.items():
        print(f"cluster-up for {mode} (master and workers registered): {seconds:.1f} s (not in the table)")
    print("\n| mode | wall s | documents | docs/s (wall) | extract stage s | docs/s (extract stage) | kept |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results.values():
        stage_s = f"{r['extract_seconds']:.1f}" if r["extract_seconds"] is not None else "?"
        stage_rate = f"{r['extract_docs_per_s']:.1f}" if r["extract_docs_per_s"] is not None else "?"
        print(
            f"| {r['label']} | {r['wall']:.1f} | {r['documents']} | {r['documents'] / r['wall']:.1f} | {stage_s} "
            f"| {stage_rate} | {r['kept']} |"
        )
    runs = list(results.values())
    for other in runs[1:]:
        same = same_rows(Path(runs[0]["output"]), Path(other["output"]))
        print(f"\nsame rows in filtered/, removed/, skipped/ ({runs[0]['label']} vs {other['label']}): "
              f"{'yes' if same else 'NO'}")  # fmt: skip
    clusters = [r for m, r in results.items() if m.startswith("cluster") and r["extract_docs_per_s"]]
    if len(clusters) == 2 and clusters[0]["workers"] != clusters[1]["workers"]:
        small, large = sorted(clusters, key=lambda r: r["workers"])
        speedup = large["extract_docs_per_s"] / small["extract_docs_per_s"]
        ideal = large["workers"] / small["workers"]
        print(f"\nextract stage: {large['workers']} workers {speedup:.2f}x the rate of {small['workers']} "
              f"(linear: {ideal:.0f}x; {speedup / ideal:.0%} of linear)")  # fmt: skip
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
