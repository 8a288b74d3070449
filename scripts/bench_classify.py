"""Quality classifiers, side by side in one run (one process, one core):

1. fastText apply, docs/s/core: ours (corpus.quality.fasttext, whole Arrow batches) vs datatrove's
   FastTextClassifierFilter (document by document, as its pipeline runs it), on the same model and texts, with
   the largest score difference between the two;
2. the embedding classifier's docs/s/core (all-MiniLM-L6-v2 on onnxruntime, one thread);
3. F1 of each kind on the HPLT `unnatural` labels, trained by `corpus train-classifier`'s code with its defaults:
   validation (the threshold was chosen there: in-sample for the threshold) and test (held out).

    python scripts/bench_classify.py [--docs 20000] [--model MODEL.bin] [--embed-docs 200] [--skip-f1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HPLT = (
    Path(os.environ.get("CORPUS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    / "labels/hplt-web-annotations/dev.jsonl.gz"
)


def hplt() -> list[dict]:
    with gzip.open(HPLT, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def fasttext_apply(model_path: str, texts: list[str]) -> None:
    from datatrove.data import Document
    from datatrove.pipeline.filters import FastTextClassifierFilter

    from corpus.quality.fasttext import FastTextModel

    ours = FastTextModel(model_path)
    batch = 1000
    arrays = [pa.array(texts[i : i + batch], pa.large_string()) for i in range(0, len(texts), batch)]
    ours.predict(arrays[0])  # warm: the folded table is computed or read once per worker
    ours_seconds = timed(lambda: [ours.predict(a) for a in arrays])
    scores = np.concatenate([ours.predict(a)[:, ours.labels.index("1")] for a in arrays])

    peer = FastTextClassifierFilter(model_path, keep_labels=("1", 0.5), newline_replacement=" ")
    peer.model  # noqa: B018 (load before timing)

    def run_peer() -> list:
        docs = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
        return list(peer.run(docs))

    peer_seconds = timed(run_peer)
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    for doc in docs:
        peer.filter(doc)
    peer_scores = np.array([d.metadata.get("__label__1", 0.0) for d in docs])
    n = len(texts)
    print(f"fastText apply, {n} docs of {np.mean([len(t) for t in texts]):.0f} chars, "
          f"model {Path(model_path).name} ({os.path.getsize(model_path) / 1e6:.0f} MB):")  # fmt: skip
    print(f"  ours (Arrow batches of {batch}):        {n / ours_seconds:9.0f} docs/s/core")
    print(f"  datatrove FastTextClassifierFilter:  {n / peer_seconds:9.0f} docs/s/core")
    print(f"  ratio ours / datatrove: {peer_seconds / ours_seconds:.2f}x; "
          f"largest score difference {np.abs(scores - peer_scores).max():.2e}")  # fmt: skip


def embedding_apply(texts: list[str]) -> None:
    from corpus.quality.embed import SentenceEncoder

    for max_tokens in (256, 128):
        encoder = SentenceEncoder(max_tokens=max_tokens)
        encoder.encode(texts[:8])
        seconds = timed(lambda enc=encoder: enc.encode(texts), repeat=1)
        print(f"embedding (all-MiniLM-L6-v2, onnxruntime, 1 thread, max_tokens={max_tokens}): "
              f"{len(texts) / seconds:.1f} docs/s/core ({len(texts)} docs)")  # fmt: skip


def f1_by_kind(kinds: list[str]) -> None:
    from corpus.config import load_config
    from corpus.quality.gate import train_classifier

    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config(None, [f"classifier.kind={kind}", "gate.min_f1=0"])
            start = time.perf_counter()
            _, card = train_classifier(config, str(HPLT), "unnatural", str(Path(tmp) / kind))
            val, test = card["metrics"], card["test"]
            print(f"F1 on HPLT `unnatural`, kind={kind} (defaults, seed 0, splits {card['training']['splits']}, "
                  f"{time.perf_counter() - start:.0f} s):")  # fmt: skip
            print(f"  validation (threshold {val['threshold']:.4f} chosen here): F1 {val['f1']:.3f} "
                  f"P {val['precision']:.3f} R {val['recall']:.3f}")  # fmt: skip
            print(f"  test (held out):                      F1 {test['f1']:.3f} P {test['precision']:.3f} "
                  f"R {test['recall']:.3f}")  # fmt: skip


def plain_baseline(rows: list[dict], seeds: int = 3) -> None:
    """The reference point the issue quotes: plain fastText (25 epochs, word bigrams, its default threshold)
    trained on one half of the file and scored on the other half."""
    import subprocess

    from sklearn.metrics import f1_score, precision_score, recall_score
    from sklearn.model_selection import train_test_split

    from corpus.quality.train import fasttext_line

    y = np.array([bool(r["unnatural"]) for r in rows])
    results = []
    for seed in range(seeds):
        first, second = train_test_split(np.arange(len(rows)), test_size=0.5, stratify=y, random_state=seed)
        with tempfile.TemporaryDirectory() as tmp:
            data, model = Path(tmp) / "train.txt", Path(tmp) / "model.bin"
            data.write_text("".join(f"__label__{int(y[i])} {fasttext_line(rows[i]['text'])}\n" for i in first))
            code = (f"import fasttext; fasttext.train_supervised({str(data)!r}, epoch=25, wordNgrams=2, verbose=0)"
                    f".save_model({str(model)!r})")  # fmt: skip
            subprocess.run([sys.executable, "-c", code], check=True)
            import fasttext

            labels, _ = fasttext.load_model(str(model)).predict([fasttext_line(rows[i]["text"]) for i in second])
        predicted = np.array([label[0] == "__label__1" for label in labels])
        results.append((f1_score(y[second], predicted), precision_score(y[second], predicted),
                        recall_score(y[second], predicted)))  # fmt: skip
    f1, p, r = np.mean(results, axis=0)
    print(f"plain fastText (25 epochs, bigrams, default threshold), half/half, {seeds} seeds: F1 {f1:.3f} "
          f"P {p:.3f} R {r:.3f} (per seed F1: {', '.join(f'{x[0]:.3f}' for x in results)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000, help="documents for the fastText comparison")
    parser.add_argument("--model", help="a fastText .bin to apply (default: one trained here on HPLT)")
    parser.add_argument("--embed-docs", type=int, default=200)
    parser.add_argument("--skip-f1", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("CORPUS_CACHE_DIR", tempfile.mkdtemp(prefix="bench-classify-"))
    rows = hplt()
    texts = [r["text"] for r in rows]
    texts = (texts * (args.docs // len(texts) + 1))[: args.docs]
    model = args.model
    if model is None:
        from corpus.config import load_config
        from corpus.quality import train

        folder = Path(tempfile.mkdtemp(prefix="bench-model-"))
        examples = train.examples_from_labels(
            pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows],
                      "label": [r["unnatural"] for r in rows], "annotator": ["hplt"] * len(rows)}),
            "unnatural", None, 3.0,
        )  # fmt: skip
        train.train_fasttext(examples, load_config(None, []).classifier.train, folder)
        model = str(folder / "model.bin")
    fasttext_apply(model, texts)
    embedding_apply(texts[: args.embed_docs])
    if not args.skip_f1:
        plain_baseline(rows)
        f1_by_kind(["fasttext", "embedding"])


if __name__ == "__main__":
    main()
