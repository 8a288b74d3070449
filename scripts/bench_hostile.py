"""Hostile inputs (corpus.hostile) through the HTML recipe and the config loader: outcome, wall time and peak RSS of
each, in a fresh process per case, printed as the table in docs/RELIABILITY.md.

    python scripts/bench_hostile.py                       # every case, with this checkout
    python scripts/bench_hostile.py --before 3626fe3      # and side by side with the code of that commit
    python scripts/bench_hostile.py --peer PYTHON          # or with another checkout's interpreter
    python scripts/bench_hostile.py --spark               # also every WARC case at once through `corpus run`
    python scripts/bench_hostile.py --overhead 3          # the sandbox's cost per real page (ccdev), 3 rounds
    python scripts/bench_hostile.py --read --before 3626fe3   # the reader's cost on the shared archives, both codes

Peak RSS is the largest single process of the case (the recipe's process or its sandboxed extraction worker:
RUSAGE_CHILDREN covers descendants once reaped). A case that exceeds --timeout seconds is killed and shown as
such; --memory caps each case's address space (a runaway peer must not take the machine down).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus import hostile  # noqa: E402

#: name -> (what it is, builder of the file's bytes, whether the attribute guard is switched off)
WARC_CASES = {
    "cut-gzip-60": ("a per-record gzip member cut at 60 %", lambda: hostile.cut_last_record(True, 0.6), False),
    "cut-plain": ("a plain .warc ending mid-record", lambda: hostile.cut_last_record(False, 0.6), False),
    "short-http-body": ("half the body its HTTP Content-Length announces", hostile.short_http_body, False),
    "cut-chunked": ("a chunked body without its last chunk", hostile.cut_chunked_body, False),
    "cc-truncated": ("Common Crawl's own cut (WARC-Truncated: length)", hostile.crawler_truncated, False),
    "length-1e12": ("Content-Length 10^12 (plain)", lambda: hostile.lying_length("1000000000000", False), False),
    "length-negative-gz": ("Content-Length -5 in a .warc.gz", lambda: hostile.lying_length("-5", True), False),
    "length-abc": ("Content-Length abc (plain)", lambda: hostile.lying_length("abc", False), False),
    "length-empty": ("an empty Content-Length (plain)", lambda: hostile.lying_length("", False), False),
    "length-+300": ("Content-Length 300 too long (plain)", lambda: hostile.shifted_length(300), False),
    "corrupt-member": ("bytes overwritten in a gzip member", hostile.corrupt_member, False),
    "attributes-1M": ("one element with 10^6 attributes (5.5 MB)", hostile.attribute_bomb, False),
    "attributes-200k-unguarded": ("200,000 attributes, guard off", lambda: hostile.attribute_bomb(200_000), True),
    "chunked-gzip-1GiB": ("1 GiB of gzip zeros in one HTTP chunk", lambda: hostile.chunked_gzip_bomb(1 << 30), False),
    "chunked-gzip-4GiB": ("4 GiB of gzip zeros in 4 HTTP chunks", lambda: hostile.chunked_gzip_bomb(4 << 30, 4), False),
    "utf16-as-utf8": ("a UTF-16 page sent as charset=utf-8", hostile.utf16_lie, False),
}  # fmt: skip
YAML_CASES = {
    "yaml-laughs-9^9": ("9^9 billion laughs under storage.options.s3", lambda: hostile.billion_laughs(9, 9)),
    "yaml-laughs-9^7": ("9^7 laughs", lambda: hostile.billion_laughs(7, 9)),
    "yaml-list-bomb": ("9^8 laughs given to a list field", hostile.list_bomb),
    "yaml-self-alias": ("an alias inside itself", hostile.self_alias),
    "yaml-deep-100k": ("100,000 nested lists", hostile.deep_nesting),
}

#: `corpus config FILE`, run directly as the case's process (so that its own peak RSS is measured, killed or not).
_CONFIG = "import sys; from corpus.cli import main; sys.exit(main())"
_RECIPE = """
import json, sys, time
t0 = time.time()
from corpus.config import load_config
from corpus.recipes import FineWebRecipe
if {unguarded}:
    import corpus.recipes.fineweb as fineweb
    fineweb.too_many_attributes = lambda html: False
recipe = FineWebRecipe(load_config())
start = time.time()
rows = [(d.url, d.status, d.reason) for d in recipe.process_file({path!r})]
end = time.time()
getattr(recipe, "close", lambda: None)()
print(json.dumps({{"rows": rows, "seconds": end - start}}))
"""


_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.time()
try:
    done = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))
    out, err, code = done.stdout, done.stderr, done.returncode
except subprocess.TimeoutExpired as exc:
    out, err, code = "", "", "timeout"
print(json.dumps({"out": out, "err": err, "code": code, "wall": time.time() - start,
                  "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_case(argv: list[str], timeout: float, memory: int, cwd: Path) -> dict:
    """Run `argv` in a fresh process under a fresh wrapper process, whose RUSAGE_CHILDREN then holds the peak RSS
    of the largest process of the case alone (its sandboxed workers included, once reaped). The case's JSON output
    (its last stdout line), else its exit code and last stderr line, with its wall time and peak RSS."""

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    wrapped = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(timeout), *argv],
        capture_output=True, text=True, preexec_fn=limits, cwd=cwd,  # (not ROOT: its corpus/ would be imported)
    )  # fmt: skip
    report = json.loads(wrapped.stdout.strip().splitlines()[-1])
    measured = {"wall": report["wall"], "rss": report["rss"]}
    if report["code"] == "timeout":
        return {"outcome": f"killed after {timeout:.0f} s", **measured}
    lines = report["out"].strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if not isinstance(result, dict) or not result:
        tail = (report["err"].strip().splitlines() or ["(no message)"])[-1]
        return {"outcome": f"exit {report['code']}: {tail.split('.yaml: ')[-1][:100]}", **measured}
    return {**result, **measured}


def peer_from_commit(commit: str) -> str:
    """An interpreter that runs `commit`'s code with this virtualenv's packages: the commit's corpus/, filters/ and
    jobs/ laid out as the installed package (corpus.filters, corpus.jobs) first on PYTHONPATH."""
    import shutil

    root = Path(tempfile.mkdtemp(prefix=f"bench-hostile-{commit}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "corpus", "filters", "jobs"],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    package = root / "pkg" / "corpus"
    shutil.copytree(root / "corpus", package)
    for name in ("filters", "jobs"):
        (package / name).symlink_to(root / name)
    wrapper = root / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={root / "pkg"} PYTHONDONTWRITEBYTECODE=1 exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def describe(rows: list) -> str:
    bad = [r for r in rows if r[1] != "kept"]
    kept = sum(1 for r in rows if r[1] == "kept")
    reasons = ", ".join(f"{(u or 'error row').rsplit('/', 2)[-1]}: {reason}" for u, _, reason in bad)
    return f"{len(rows)} rows, {kept} kept" + (f"; {reasons}" if reasons else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", help="another checkout's python, run side by side")
    parser.add_argument("--before", metavar="COMMIT", help="run side by side with this commit's code (this venv)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case before it is killed")
    parser.add_argument("--memory", type=float, default=8.0, help="GiB of address space per case")
    parser.add_argument("--spark", action="store_true", help="also run the WARC cases through `corpus run`")
    parser.add_argument("--overhead", type=int, metavar="ROUNDS", help="only measure the sandbox's cost per page")
    parser.add_argument("--read", action="store_true", help="only measure reading the shared archives")
    parser.add_argument("cases", nargs="*", help="only these cases")
    args = parser.parse_args()
    if args.read:
        peer = peer_from_commit(args.before) if args.before else args.peer
        read_speed({"this": sys.executable, **({"peer": peer} if peer else {})})
        return
    if args.overhead:
        overhead(args.overhead)
        return
    memory = int(args.memory * (1 << 30))
    if args.before:
        args.peer = peer_from_commit(args.before)
    pythons = {"this": sys.executable, **({"peer": args.peer} if args.peer else {})}
    workdir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    print(f"machine: {os.cpu_count()} cores, shared and loaded (times are wall clock); files in {workdir}")
    header = "| case | input | outcome | s (file / process) | peak RSS MiB |"
    header += " peer outcome | peer s | peer RSS MiB |" if args.peer else ""
    print(header)
    print("|" + "|".join(["---"] * (header.count("|") - 1)) + "|")
    for name, (what, build, unguarded) in WARC_CASES.items():
        if args.cases and name not in args.cases:
            continue
        data = build()
        path = workdir / (f"{name}.warc.gz" if data[:2] == b"\x1f\x8b" else f"{name}.warc")
        path.write_bytes(data)
        cells = [name, f"{what} ({len(data):,} bytes)"]
        for python in pythons.values():
            script = _RECIPE.format(path=str(path), unguarded=unguarded)
            result = run_case([python, "-c", script], args.timeout, memory, workdir)
            outcome = describe(result["rows"]) if "rows" in result else result["outcome"]
            seconds = (
                f"{result['seconds']:.2f} / {result['wall']:.1f}" if "seconds" in result else f"{result['wall']:.1f}"
            )
            cells += [outcome, seconds, f"{result['rss']:.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    for name, (what, build) in YAML_CASES.items():
        if args.cases and name not in args.cases:
            continue
        path = workdir / f"{name}.yaml"
        path.write_text(build())
        cells = [name, what]
        for python in pythons.values():
            result = run_case([python, "-c", _CONFIG, "config", str(path)], args.timeout, memory, workdir)
            cells += [result["outcome"], f"{result['wall']:.1f}", f"{result['rss']:.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.spark:
        spark_run(workdir)


_OVERHEAD = """
import glob, json, os, resource, sys, time
from corpus.config import load_config
from corpus.recipes import FineWebRecipe
files = sorted(glob.glob(os.path.join({shared!r}, "ccdev", "*.warc.gz")))
recipe = FineWebRecipe(load_config(None, ["extract.cpu_time_limit={limit}"]))
list(recipe.process_file(files[0]))  # warm: models, the sandbox's zygote
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    sandbox = recipe._sandbox
    for pid, fields in ((sandbox and sandbox.zygote_pid, (13, 14, 15, 16)), (sandbox and sandbox.worker_pid, (13, 14))):
        if pid:  # the zygote's own time and its reaped workers', the live worker's
            values = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
            total += sum(int(values[i - 2]) for i in fields) / tick
    return total
t0, c0 = time.time(), cpu()
docs = [d for f in files for d in recipe.process_file(f)]
pages = sum(1 for d in docs if d.charset)
kept = sum(d.status == "kept" for d in docs)
texts = sorted((d.id, d.text or "") for d in docs)
print(json.dumps({{"pages": pages, "cpu": cpu() - c0, "wall": time.time() - t0, "kept": kept, "texts": texts}}))
recipe.close()
"""


_READ = """
import glob, json, os, time
from corpus.io.warc import WarcRecord, iter_records
shared = {shared!r}
files = sorted(glob.glob(os.path.join(shared, "ccdev", "*.warc.gz")))
files += sorted(glob.glob(os.path.join(shared, "warc", "**", "*.warc.gz"), recursive=True))
best = None
for _ in range(3):
    start, records, size = time.process_time(), 0, 0
    for path in files:
        for item in iter_records(path):
            if isinstance(item, WarcRecord):
                records += 1
                size += len(item.payload(10 << 20)[0])
    took = time.process_time() - start
    best = took if best is None else min(best, took)
print(json.dumps({{"files": len(files), "records": records, "mib": size / (1 << 20), "cpu": best}}))
"""


def read_speed(pythons: dict[str, str]) -> None:
    """Every record and payload of the shared .warc.gz files (ccdev and warc/), best CPU time of 3 passes."""
    shared = os.environ.get("CORPUS_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    seconds = {}
    for name, python in pythons.items():
        done = subprocess.run([python, "-c", _READ.format(shared=shared)], capture_output=True, text=True,
                              check=True, cwd=tempfile.gettempdir())  # fmt: skip
        result = json.loads(done.stdout.strip().splitlines()[-1])
        seconds[name] = result["cpu"]
        print(f"{name}: {result['files']} files, {result['records']} records, {result['mib']:.0f} MiB of payloads, "
              f"{result['cpu']:.2f} CPU s")  # fmt: skip
    if "peer" in seconds:
        print(f"ratio this / peer: {seconds['this'] / seconds['peer']:.2f}")


def overhead(rounds: int) -> None:
    """The HTML recipe over the ccdev pages with extraction in-process (cpu_time_limit=0) and in the sandbox (the
    default, 30 s), alternating, `rounds` times each: CPU per page of all processes involved, and the outputs."""
    shared = os.environ.get("CORPUS_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    totals: dict[str, list[float]] = {"in-process": [], "sandboxed": []}
    texts = {}
    for _ in range(rounds):
        for mode, limit in (("in-process", 0), ("sandboxed", 30)):
            done = subprocess.run([sys.executable, "-c", _OVERHEAD.format(shared=shared, limit=limit)],
                                  capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
            result = json.loads(done.stdout.strip().splitlines()[-1])
            totals[mode].append(1000 * result["cpu"] / result["pages"])
            texts[mode] = result["texts"]
            per_page = 1000 * result["cpu"] / result["pages"]
            print(f"{mode}: {result['pages']} pages, {result['cpu']:.1f} CPU s, {result['wall']:.1f} wall s, "
                  f"{per_page:.2f} CPU ms/page, {result['kept']} kept", flush=True)  # fmt: skip
    mean = {mode: sum(v) / len(v) for mode, v in totals.items()}
    print(f"CPU ms/page: in-process {mean['in-process']:.2f}, sandboxed {mean['sandboxed']:.2f}, "
          f"ratio {mean['sandboxed'] / mean['in-process']:.3f}; same documents and texts: "
          f"{texts['in-process'] == texts['sandboxed']}")  # fmt: skip


def spark_run(workdir: Path) -> None:
    """Every WARC case in one `corpus run` (local mode): the documents per reason, wall time, and the peak RSS of
    every process it started (sampled with psutil)."""
    import psutil

    output = workdir / "out"
    command = [str(Path(sys.executable).parent / "corpus"), "run", str(ROOT / "conf" / "fineweb.yaml"),
               f"input={workdir}", f"output={output}", "stages=[extract]", "spark.master=local[2]"]  # fmt: skip
    start = time.time()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: dict[str, float] = {}
    while proc.poll() is None:
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            family = []
        for p in family:
            try:
                kind = "jvm" if p.name() == "java" else "python"
                peaks[kind] = max(peaks.get(kind, 0), p.memory_info().rss / (1 << 20))
            except psutil.Error:
                pass
        time.sleep(0.2)
    log = proc.stdout.read() if proc.stdout else ""
    print(f"\ncorpus run over every case: exit {proc.returncode}, {time.time() - start:.0f} s wall, peak RSS of one "
          f"process: Python {peaks.get('python', 0):.0f} MiB, JVM {peaks.get('jvm', 0):.0f} MiB")  # fmt: skip
    print("\n".join(line for line in log.splitlines() if line.startswith("corpus:")))
    import pyarrow.dataset as ds

    for folder in ("filtered", "removed", "skipped"):
        if list((output / folder).glob("*.parquet")):
            table = ds.dataset(str(output / folder), format="parquet").to_table(columns=["reason"])
            counts: dict[str, int] = {}
            for reason in table.column("reason").to_pylist():
                counts[str(reason)] = counts.get(str(reason), 0) + 1
            print(f"{folder}: {table.num_rows} rows {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
