"""Benchmark: reading WARC files, our reader with FastWARC (the default) vs with warcio alone, side by side with the
peers (FastWARC's and warcio's own iterators, datatrove's WarcReader) on the same files; then the memory of a
reader, and of each Spark Python worker, on a generated multi-GB WARC.

1. Speed (--data, default ../shared/data/ccdev: five Common-Crawl-style files). Each reader reads every file as
   its users do: ours (`corpus.io.warc.iter_records`, reader "warcio" and "auto") as the recipes do, every
   content record's payload (cap 10 MiB, chunking and content encoding undone) then its defect; FastWARC's
   ArchiveIterator and warcio's ArchiveIterator every content record's payload as stored (no checks); datatrove's
   WarcReader.read_file its HTML records, decoded to text (it does that much more). Rates are per CPU-second of
   this process (best of --repeat), records (all of them, as our reader counts them) and MB (input bytes as
   stored): the machine is shared, CPU time is what is comparable.
2. Memory (--big-gb N, 0 to skip). A generated WARC of about N GB laid out like Common Crawl's (request, response
   and metadata per URL, a gzip member each; the responses are 256 KiB images of random bytes, stored, and an
   English page every twentieth; and three 300 MB HTML responses: plain, chunked, and with no type, which the
   recipe reads to sniff it) in a temporary folder, deleted afterwards. Each of
   our readers reads it in a fresh process as the recipes do: wall, CPU and peak RSS (VmHWM). Then `corpus
   extract` on Spark local[2] over two names of it (one task each): the peak RSS of each Python process under
   the JVM (pyspark's workers and their extraction sandboxes) from /proc/<pid>/status VmHWM, sampled every 0.2 s.

    python scripts/bench_read.py [--data ../shared/data/ccdev] [--repeat 3] [--big-gb 3] [--tmp /tmp]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CAP = 10 << 20
CONTENT = ("response", "resource", "conversion", "revisit")


def ours(reader: str) -> Callable[[str], int]:
    from corpus.io.warc import WarcRecord, iter_records

    def read(path: str) -> int:
        n = 0
        for item in iter_records(path, reader):
            if isinstance(item, WarcRecord):
                n += 1
                if item.rec_type in CONTENT:
                    item.payload(CAP)
                    item.defect()
        return n

    return read


def fastwarc_alone(path: str) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    content = WarcRecordType.response | WarcRecordType.resource | WarcRecordType.conversion | WarcRecordType.revisit
    n = 0
    for record in ArchiveIterator(path, parse_http=True):
        n += 1
        if record.record_type & content:
            record.reader.read()
    return n


def warcio_alone(path: str) -> int:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh):
            n += 1
            if record.rec_type in CONTENT:
                record.content_stream().read()
    return n


def datatrove_reader(path: str) -> int:
    from datatrove.pipeline.readers import WarcReader

    reader = WarcReader(str(Path(path).parent))
    return sum(1 for _ in reader.read_file(Path(path).name))


READERS: dict[str, Callable[[str], int]] = {
    "ours, FastWARC (auto)": ours("auto"),
    "ours, warcio alone": ours("warcio"),
    "FastWARC ArchiveIterator alone": fastwarc_alone,
    "warcio ArchiveIterator alone": warcio_alone,
    "datatrove WarcReader (+ decoding)": datatrove_reader,
}


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def speed(files: list[Path], repeat: int) -> None:
    size = sum(f.stat().st_size for f in files)
    records = sum(ours("warcio")(str(f)) for f in files)  # (also warms the page cache)
    print(f"speed: {len(files)} files, {size / 1e6:.1f} MB, {records} records (warcinfo excluded); {load()}")
    rates: dict[str, tuple[float, float]] = {}
    for name, read in READERS.items():
        read(str(files[0]))  # (imports and first-use costs outside the timed runs)
        best_cpu, best_wall = float("inf"), float("inf")
        for _ in range(repeat):
            cpu, wall = time.process_time(), time.perf_counter()
            for f in files:
                read(str(f))
            best_cpu = min(best_cpu, time.process_time() - cpu)
            best_wall = min(best_wall, time.perf_counter() - wall)
        rates[name] = (best_cpu, best_wall)
    base = rates["ours, warcio alone"][0]
    print(f"  {'reader':36s} {'CPU s':>7s} {'wall s':>7s} {'records/CPU-s':>14s} {'MB/CPU-s':>9s} {'vs warcio':>9s}")
    for name, (cpu, wall) in rates.items():
        print(f"  {name:36s} {cpu:7.3f} {wall:7.3f} {records / cpu:14.0f} {size / 1e6 / cpu:9.1f} {base / cpu:8.2f}x")
    print(f"  ({load()})")


# --- 2. memory --------------------------------------------------------------------------------------------------


def _response(url: str, body_parts: int, piece: bytes, *, chunked: bool = False, typed: bool = True) -> bytes:
    """The WARC and HTTP headers of an HTML response whose body is `piece` written `body_parts` times."""
    if chunked:
        body_len = body_parts * (len(b"%x\r\n" % len(piece)) + len(piece) + 2) + 5
        http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    else:
        body_len = body_parts * len(piece)
        http = b"HTTP/1.1 200 OK\r\n" + (b"Content-Type: text/html\r\n" if typed else b"")
        http += b"Content-Length: %d\r\n\r\n" % body_len
    typed_header = b"WARC-Identified-Payload-Type: text/html\r\n" if typed else b""
    return (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:%s>\r\nWARC-Target-URI: %s\r\n"
        b"WARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\n%s"
        b"Content-Length: %d\r\n\r\n" % (url.encode(), url.encode(), typed_header, len(http) + body_len)
    ) + http


def _member(data: bytes, level: int) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def generate(path: Path, gigabytes: float) -> tuple[int, int]:
    """The multi-GB WARC of part 2, laid out like Common Crawl's (request, response, metadata per URL, a gzip
    member each); returns (records, bytes)."""
    from corpus import hostile

    image = os.urandom(1 << 18)
    html_piece = (b"<p>" + b"lorem ipsum dolor sit amet " * 37 + b"</p>\n") * 1024
    html_piece = html_piece[: 1 << 20]
    records = pages = 0
    with open(path, "wb") as out:
        target = int(gigabytes * 1e9)
        huge = {target // 4: {}, target // 2: {"chunked": True}, 3 * target // 4: {"typed": False}}
        while out.tell() < target:
            pages += 1
            url = f"http://big.example/{pages}"
            request = f"GET /{pages} HTTP/1.1\r\nHost: big.example\r\nUser-Agent: bench\r\n\r\n".encode()
            out.write(_member(hostile.warc_record(url, request, rec_type="request", name=f"req{pages}"), 6))
            if pages % 20 == 0:
                page = hostile.english_page(f"Page {pages}", start=pages)
                out.write(_member(hostile.html_record(url, page), 6))
            else:  # an image of 256 KiB of random bytes, stored (deflate level 0: generating it stays fast)
                block = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n" + pages.to_bytes(8, "big") + image
                record = hostile.warc_record(url, block, headers=[("WARC-Identified-Payload-Type", "image/jpeg")])
                out.write(_member(record, 0))
            metadata = b"fetchTimeMs: 120\r\ncharset-detected: UTF-8\r\n"
            out.write(_member(hostile.warc_record(url, metadata, rec_type="metadata", name=f"meta{pages}"), 6))
            records += 3
            for mark in [m for m in huge if out.tell() >= m]:
                options = huge.pop(mark)
                records += 1
                with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as member:
                    piece = html_piece
                    member.write(_response(f"http://huge.example/{records}", 300, piece, **options))
                    for _ in range(300):
                        member.write(b"%x\r\n%s\r\n" % (len(piece), piece) if options.get("chunked") else piece)
                    member.write((b"0\r\n\r\n" if options.get("chunked") else b"") + b"\r\n\r\n")
        return records, out.tell()


READ_SCRIPT = """
import sys, time
from corpus.io.warc import WarcRecord, iter_records
path, reader = sys.argv[1], sys.argv[2]
cpu, wall = time.process_time(), time.perf_counter()
n = too_large = 0
for item in iter_records(path, reader):
    if isinstance(item, WarcRecord):
        n += 1
        if item.rec_type == "response" and item.payload_type != "image/jpeg":
            too_large += item.payload(10 << 20)[1]
        item.defect()
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
print(n, too_large, time.process_time() - cpu, time.perf_counter() - wall, int(peak) // 1024)
"""


def _status(pid: int) -> tuple[str, int] | None:
    """(command name, VmHWM in KiB) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    peak = fields.get("VmHWM", "0 kB").split()[0]
    return fields.get("Name", "?").strip(), int(peak)


def spark_workers(data: Path, out: Path, log: Path) -> dict[str, object]:
    """Run `corpus extract` on local[2] over `data`; peak RSS of each Python process under the JVM."""
    from bench_extract import _children

    cmd = [
        str(Path(sys.executable).parent / "corpus"), "extract", f"input={data}", f"output={out}",
        "spark.master=local[2]", "stages=[extract]", "spark.ui.showConsoleProgress=false",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "CORPUS_SPARK_LOG_LEVEL": "ERROR"}
    peaks: dict[int, tuple[str, int]] = {}
    driver_peak = 0
    start = time.monotonic()
    with open(log, "w") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        done = threading.Event()

        def watch() -> None:
            nonlocal driver_peak
            while not done.is_set():
                status = _status(proc.pid)
                if status:
                    driver_peak = max(driver_peak, status[1])
                todo = [(c, False) for c in _children(proc.pid)]
                while todo:  # (the JVM, then the Python processes it starts and theirs)
                    pid, under_jvm = todo.pop()
                    status = _status(pid)
                    if status is None:
                        continue
                    name, peak = status
                    if under_jvm and name.startswith("python"):
                        peaks[pid] = (name, max(peak, peaks.get(pid, ("", 0))[1]))
                    todo.extend((c, under_jvm or name == "java") for c in _children(pid))
                done.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = proc.wait()
        done.set()
        watcher.join()
    if code != 0:
        raise SystemExit(f"corpus extract failed ({code}); see {log}")
    manifest = json.loads((out / "manifest.json").read_text())["stages"]["extract"]
    mib = sorted((peak // 1024 for _, peak in peaks.values()), reverse=True)
    return {
        "wall_s": round(time.monotonic() - start, 1),
        "python_processes": len(mib),
        "peak_rss_mib_per_python_process": mib,
        "driver_peak_rss_mib": driver_peak // 1024,
        "rows": {k: sum(s["rows"] for s in v) for k, v in manifest["outputs"].items() if isinstance(v, list)},
    }


def memory(gigabytes: float, tmp: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-read-", dir=tmp))
    try:
        path = work / "in" / "big.warc.gz"
        path.parent.mkdir()
        started = time.perf_counter()
        records, size = generate(path, gigabytes)
        print(f"memory: generated {path} ({size / 1e9:.2f} GB, {records} records) in "
              f"{time.perf_counter() - started:.0f} s; {load()}")  # fmt: skip
        for reader in ("auto", "warcio"):
            result = subprocess.run(
                [sys.executable, "-c", READ_SCRIPT, str(path), reader], capture_output=True, text=True, check=True
            )
            n, too_large, cpu, wall, peak = result.stdout.split()
            print(
                f"  read in one process, reader={reader:6s}: {n} records ({too_large} over the cap), "
                f"{float(cpu):.1f} CPU s, {float(wall):.1f} s wall, {size / 1e6 / float(cpu):.0f} MB/CPU-s, "
                f"peak RSS {peak} MiB"
            )
        os.symlink(path, work / "in" / "big-copy.warc.gz")  # two files: a task per Spark worker
        result = spark_workers(work / "in", work / "out", work / "extract.log")
        print(f"  corpus extract on local[2] over two names of it: {json.dumps(result)}")
        print(f"  ({load()})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ccdev"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-gb", type=float, default=3.0, help="size of the generated WARC (0: skip part 2)")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where the generated WARC goes")
    args = parser.parse_args()
    files = sorted(p for p in Path(args.data).rglob("*") if p.is_file() and ".warc" in p.name)
    if not files:
        raise SystemExit(f"no WARC files under {args.data}")
    speed(files, args.repeat)
    if args.big_gb > 0:
        memory(args.big_gb, args.tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
