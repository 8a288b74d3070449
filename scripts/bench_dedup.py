"""Benchmark: MinHash dedup, ours on Spark vs datatrove and datasketch, side by side.

Part 1, signatures per second per core, on the same generated documents (Zipf(1.1) vocabulary of 20k words,
200-800 words each):
  - datatrove 0.10.1 `MinhashDedupSignature` (FineWeb config: sha1, 64-bit, 14 x 8, 5-grams; spaCy words),
    in-process, per CPU-second;
  - datasketch `MinHash(num_perm=112).update_batch` on the same 5-gram strings (its default: sha1 per
    shingle, a new object per document), per CPU-second;
  - ours in-process, with the default hashing and with datatrove's (`sha1` + `mersenne`), per CPU-second;
  - ours inside Spark: the dedup stage's key computation (`mapInArrow`, local[2]) timed as one Spark job over
    already-written Parquet; per core = documents / (job wall seconds x 2 cores).
Part 2, the whole dedup (`corpus dedup`, local[2]) on generated corpora of N documents (5 % exact copies, 10 %
near copies): wall time, CPU seconds of the whole process tree (sampled from /proc: robust to a loaded machine
where wall is not), total shuffle bytes written (from Spark's event log), peak RSS of the JVM (in local mode the
driver is also the executor), the Python driver and the largest Python worker, what was kept and removed, and
the load average before and after. `--before EXE` runs another checkout's `corpus` (e.g. main's, for the code
before a change) on the same corpus, side by side, prints the ratios and checks both wrote the same deduped/.

    python scripts/bench_dedup.py [--sizes 100000,1000000] [--signature-docs 4000] [--out bench-out/dedup]
        [--before /work/main/.venv/bin/corpus] [--before-max 1000000] [--only ours|before]
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
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def cpu_time(fn, items) -> float:
    start = time.process_time()
    for item in items:
        fn(item)
    return time.process_time() - start


def signature_rates(n_docs: int, work: Path) -> dict[str, float]:
    from datasketch import MinHash
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    from corpus.minhash import MinHasher, MinhashParams, simplify_text
    from corpus.synthetic import SyntheticCorpus

    corpus = SyntheticCorpus.create(seed=1)
    docs = list(corpus.documents(n_docs))
    rates: dict[str, float] = {}

    reference = MinhashDedupSignature(
        output_folder=str(work / "dt-sigs"), config=MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
    )
    sample = docs[: max(200, n_docs // 10)]  # datatrove is slow: a tenth of the documents
    reference.get_signature(reference.get_shingles(sample[0]))
    rates["datatrove MinhashDedupSignature (sha1, spaCy)"] = len(sample) / cpu_time(
        lambda t: reference.get_signature(reference.get_shingles(t)), sample
    )

    def datasketch(text: str) -> None:
        words = simplify_text(text).split()
        grams = {" ".join(words[i : i + 5]).encode() for i in range(len(words) - 4)}
        m = MinHash(num_perm=112)
        m.update_batch(list(grams))

    rates["datasketch MinHash(num_perm=112), default sha1"] = len(docs) / cpu_time(datasketch, docs)
    for label, params in (
        ("ours in-process, default hashing", MinhashParams()),
        (
            "ours in-process, datatrove's hashing (sha1 + mersenne)",
            MinhashParams(shingle_hash="sha1", permutation="mersenne"),
        ),
    ):
        hasher = MinHasher(params)
        hasher.keys(docs[:500])  # warm the word memos
        rates[label] = len(docs) / cpu_time(hasher.keys, [docs])

    # Inside Spark: the dedup stage's key function, as one job over a Parquet file.
    from pyspark.sql import functions as F

    from corpus.config import load_config
    from corpus.jobs.session import spark_session
    from corpus.jobs.stages.dedup import KEYS_SCHEMA, keys_function

    path = work / "sig-docs.parquet"
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(docs))], "text": docs}), path, row_group_size=2000)
    config = load_config(None, ["spark.master=local[2]", "spark.ui.showConsoleProgress=false"])
    spark = spark_session(config)
    df = (
        spark.read.parquet(str(path))
        .repartition(8)
        .select(F.lit(0).alias("_shard"), F.monotonically_increasing_id().alias("_row"), "text")
        .cache()
    )
    df.count()
    keys = df.mapInArrow(keys_function(config.to_dict()), KEYS_SCHEMA)
    keys.write.format("noop").mode("overwrite").save()  # warm the Python workers
    walls = []
    for _ in range(3):
        start = time.monotonic()
        keys.write.format("noop").mode("overwrite").save()
        walls.append(time.monotonic() - start)
    rates["ours in Spark (local[2], mapInArrow), per core"] = len(docs) / min(walls) / 2
    spark.stop()
    return rates


def generate(n: int, folder: Path, shards: int = 16) -> dict[str, int]:
    """n documents (200-300 words): 85 % originals, 5 % exact copies, 10 % near copies (1-5 % of words changed)."""
    from corpus.synthetic import SyntheticCorpus

    folder.mkdir(parents=True, exist_ok=True)
    corpus = SyntheticCorpus.create(seed=7)
    rng = np.random.default_rng(8)
    lengths = rng.integers(200, 301, n)
    texts: list[str] = []
    counts = {"originals": 0, "exact": 0, "near": 0}
    vocab = np.array(corpus.vocabulary, dtype=object)
    # The words of every document, drawn as one `rng.choice(len(vocab), total, p=...)` would draw them (one
    # uniform each, inverse CDF), but a million at a time from a copy of the stream: 3M documents' words at once
    # would take 6 GB. The main stream then skips them, so the rest of the corpus is drawn as before.
    cdf = np.cumsum(corpus.probabilities)
    cdf /= cdf[-1]
    word_rng = np.random.Generator(type(rng.bit_generator)())
    word_rng.bit_generator.state = rng.bit_generator.state
    rng.bit_generator.advance(int(lengths.sum()))
    words, offset = np.empty(0, dtype=np.int64), 0
    for i in range(n):
        if offset + lengths[i] > len(words):
            words = np.concatenate([words[offset:], cdf.searchsorted(word_rng.random(1 << 20), side="right")])
            offset = 0
        kind = rng.random() if texts else 0.0
        if kind < 0.85:
            texts.append(" ".join(vocab[words[offset : offset + lengths[i]]]) + ".")
            counts["originals"] += 1
        elif kind < 0.90:
            texts.append(texts[int(rng.integers(len(texts)))])
            counts["exact"] += 1
        else:
            texts.append(corpus.variant(texts[int(rng.integers(len(texts)))], float(rng.uniform(0.01, 0.05))))
            counts["near"] += 1
        offset += lengths[i]
    ids = [f"gen-{i:08d}" for i in range(n)]
    per = (n + shards - 1) // shards
    for s in range(shards):
        table = pa.table({"id": ids[s * per : (s + 1) * per], "text": texts[s * per : (s + 1) * per]})
        pq.write_table(table, folder / f"part-{s:05d}.parquet", compression="zstd")
    return counts


def whole_dedup(n: int, work: Path, corpus: str, label: str, shuffle_partitions: int | None = None) -> dict:
    """One `corpus dedup` run (the executable `corpus`, e.g. another checkout's, for the side-by-side) on the
    generated corpus of n documents: wall, CPU seconds of the whole process tree (JVM, Python driver and
    workers), shuffle bytes written, peak RSS of the JVM, the Python driver and the largest Python worker."""
    from bench_extract import _sample, _tree

    data = work / f"gen-{n}"
    counts = generate(n, data) if not data.exists() else json.loads((work / f"gen-{n}.json").read_text())
    (work / f"gen-{n}.json").write_text(json.dumps(counts))
    out, events = work / f"out-{label}-{n}", work / f"events-{label}-{n}"
    for old in (out, events):  # a finished output would make the run a no-op, old event logs add shuffle
        shutil.rmtree(old, ignore_errors=True)
    events.mkdir(parents=True)
    cmd = [
        corpus, "dedup", f"input={data}", f"output={out}",
        "spark.master=local[2]", "spark.driver.memory=6g", "spark.eventLog.enabled=true",
        f"spark.eventLog.dir=file://{events}", "spark.eventLog.compress=false", "spark.ui.showConsoleProgress=false",
    ]  # fmt: skip
    if shuffle_partitions:
        cmd.append(f"spark.sql.shuffle.partitions={shuffle_partitions}")
    peaks = {"jvm": 0, "python_driver": 0, "python_worker": 0}
    cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree (workers come and go)
    load_before = os.getloadavg()
    start = time.monotonic()
    with open(work / f"dedup-{label}-{n}.log", "w") as log:
        proc = subprocess.Popen(  # cwd: not a checkout, whose corpus/ would shadow the executable's own package
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CORPUS_SPARK_LOG_LEVEL": "ERROR"}, cwd=work
        )
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                for pid in _tree(proc.pid):
                    try:
                        command = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    sample = _sample(pid)
                    if not sample:
                        continue
                    cpu[pid] = max(cpu.get(pid, 0.0), sample[0])
                    if pid == proc.pid:
                        kind = "python_driver"
                    elif b"pyspark.daemon" in command or b"pyspark.worker" in command:
                        kind = "python_worker"
                    elif command.split(b"\0", 1)[0].endswith(b"java"):
                        kind = "jvm"
                    else:  # the launcher's shell scripts
                        continue
                    peaks[kind] = max(peaks[kind], sample[1])
                done.wait(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = proc.wait()
        done.set()
        watcher.join()
    wall = time.monotonic() - start
    if code:
        raise SystemExit(f"corpus dedup failed ({code}); see {work / f'dedup-{label}-{n}.log'}")
    shuffle = 0
    for event_file in (p for p in events.rglob("*") if p.is_file()):
        with open(event_file) as fh:
            for line in fh:
                if '"SparkListenerTaskEnd"' in line:
                    metrics = json.loads(line).get("Task Metrics") or {}
                    shuffle += (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
    stats = json.loads((out / "stats" / "dedup.json").read_text())
    return {
        "label": label,
        "corpus": corpus,
        "documents": n,
        "generated": counts,
        "wall_s": wall,
        "cpu_s": sum(cpu.values()),
        "load_average_before_after": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "shuffle_write_mib": shuffle / 2**20,
        "peak_rss_mib": {k: v / 2**20 for k, v in peaks.items()},
        "removed": stats["removed"],
        "kept": stats["kept"],
        "components_rounds": stats["components_rounds"],
        "candidate_edges": stats["candidate_edges"],
    }


def same_kept(work: Path, n: int) -> bool:
    """Whether both runs kept the same documents, and wrote the same deduped/ rows (order included)."""
    folders = [work / f"out-{label}-{n}" / "deduped" for label in ("ours", "before")]
    names = [sorted(p.name for p in folder.glob("*.parquet")) for folder in folders]
    if names[0] != names[1]:
        return False
    for name in names[0]:  # file by file: the whole output does not need to fit in memory twice
        a, b = (pq.read_table(folder / name, columns=["id", "text"]) for folder in folders)
        if not a.equals(b):
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signature-docs", type=int, default=20000)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "dedup"))
    parser.add_argument(
        "--before", help="another checkout's `corpus` executable (e.g. /work/main/.venv/bin/corpus): run side by side"
    )
    parser.add_argument("--before-max", type=int, default=1_000_000, help="largest size to run --before at")
    parser.add_argument("--only", choices=["ours", "before"], help="run one side only (e.g. to run them apart)")
    args = parser.parse_args()
    work = Path(args.out).resolve()  # the runs start in it
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    if args.signature_docs:
        print(f"signatures on {args.signature_docs} generated documents ...", flush=True)
        results["signatures_per_cpu_s"] = rates = signature_rates(args.signature_docs, work)
        base = rates["datatrove MinhashDedupSignature (sha1, spaCy)"]
        for name, rate in rates.items():
            print(f"  {name:58s} {rate:8.0f} docs/s per core   ({rate / base:5.1f}x datatrove)")
    results["dedup"] = []
    ours = str(Path(sys.executable).parent / "corpus")
    peers = [("ours", ours)] + ([("before", args.before)] if args.before else [])
    peers = [(label, exe) for label, exe in peers if args.only in (None, label)]
    for n in [int(s) for s in args.sizes.split(",") if s]:
        runs = {}
        for label, executable in peers:
            if label == "before" and n > args.before_max:
                continue
            print(f"whole dedup, {n} documents, {label} ({executable}) ...", flush=True)
            r = runs[label] = whole_dedup(n, work, executable, label)
            results["dedup"].append(r)
            rss = r["peak_rss_mib"]
            print(f"  wall {r['wall_s']:.0f} s ({n / r['wall_s']:.0f} docs/s), CPU {r['cpu_s']:.0f} s "
                  f"({r['cpu_s'] / n * 1e6:.0f} CPU-s per 1M docs), shuffle written {r['shuffle_write_mib']:.0f} MiB "
                  f"({r['shuffle_write_mib'] * 2**20 / n:.0f} B/doc), peak RSS JVM {rss['jvm']:.0f} MiB / Python "
                  f"driver {rss['python_driver']:.0f} MiB / largest Python worker {rss['python_worker']:.0f} MiB, "
                  f"kept {r['kept']}, removed {r['removed']} of generated {r['generated']}, "
                  f"{r['components_rounds']} component rounds, load average before/after "
                  f"{r['load_average_before_after']}")  # fmt: skip
        if "before" in runs and "ours" in runs:
            a, b = runs["ours"], runs["before"]
            print(f"  ours / before: wall {a['wall_s'] / b['wall_s']:.2f}x, CPU {a['cpu_s'] / b['cpu_s']:.2f}x, "
                  f"shuffle {a['shuffle_write_mib'] / b['shuffle_write_mib']:.2f}x, JVM peak "
                  f"{a['peak_rss_mib']['jvm'] / b['peak_rss_mib']['jvm']:.2f}x")  # fmt: skip
        if all((work / f"out-{label}-{n}" / "deduped").exists() for label in ("ours", "before")):
            print(f"  ours and before wrote the same deduped/ (ids and texts, file by file): {same_kept(work, n)}")
    (work / f"results-{args.only or 'all'}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
