"""Quality classifiers without Spark: fastText scores as fastText computes them, embeddings as
sentence-transformers computes them, training and the gate, LLM pre-labels against a loopback server, active
learning, Label Studio round trips."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pytest

from corpus.config import ClassifierModelSettings, ConfigError, load_config
from corpus.io.labels import labels_table, read_labels, read_rows, write_labels
from corpus.quality import train
from corpus.quality.gate import EVAL_SET, train_classifier
from corpus.quality.models import CARD, load_model
from tests.conftest import shared_path

HPLT = ("labels", "hplt-web-annotations", "dev.jsonl.gz")
EDGE_TEXTS = ["", "   ", "__label__1 a label token", "tab\tvertical\x0bform\x0cfeed\rreturn", "x" * 300 + " long",
              "é" * 100, "ünïcödé wörds and 中文没有空格的句子", "null\x00byte", "line one\nline two\n\n"]  # fmt: skip


def hplt_rows(n: int | None = None) -> list[dict]:
    table = read_labels(str(shared_path(*HPLT)), label="unnatural")
    rows = table.to_pylist()
    return rows[:n] if n else rows


def _fasttext_file(tmp_path: Path, rows: list[dict], **params) -> str:
    """A fastText model trained in a fresh process: this fastText build can hit NaN when one process trains
    several models one after another."""
    data, path = tmp_path / "train.txt", tmp_path / "model.bin"
    data.write_text("".join(f"__label__{int(r['label'])} {train.fasttext_line(r['text'])}\n" for r in rows))
    code = (f"import fasttext; fasttext.train_supervised({str(data)!r}, verbose=0, thread=1, seed=1, **{params!r})"
            f".save_model({str(path)!r})")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
    return str(path)


FASTTEXT_PARAMS = [
    {"wordNgrams": 3, "dim": 16, "bucket": 20_000, "epoch": 2, "lr": 0.1},
    {"wordNgrams": 2, "dim": 16, "bucket": 50_000, "epoch": 3},
    {"wordNgrams": 1, "dim": 8, "bucket": 20_000, "epoch": 2, "minn": 2, "maxn": 4},
]


@pytest.mark.shared
@pytest.mark.parametrize("params", FASTTEXT_PARAMS)
def test_fasttext_scores_are_fasttexts(tmp_path, params, monkeypatch):
    """Our batch scorer gives fastText's own `predict` on every text (folded models and the fallback alike)."""
    from corpus.quality.fasttext import FastTextModel

    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "cache"))
    rows = hplt_rows()
    model = FastTextModel(_fasttext_file(tmp_path, rows[:1500], **params))
    assert (model.row_scores is None) == ("maxn" in params)  # character n-grams: fastText's own predictor
    texts = [r["text"] for r in rows[1500:]] + EDGE_TEXTS
    ours = model.predict(texts)
    for text, row in zip(texts, ours):
        labels, probs = model.model.predict(text.replace("\n", " "), k=-1)
        expected = dict(zip(labels, probs))
        for i, label in enumerate(model.labels):
            assert row[i] == pytest.approx(expected.get(f"__label__{label}", 0.0), abs=2e-6), text[:80]


def test_embeddings_are_sentence_transformers():
    """all-MiniLM-L6-v2 run by onnxruntime from the packaged weights gives the vectors sentence-transformers 6.2
    (PyTorch 2.13, CPU) gave for these sentences; the numbers below are what it printed."""
    from corpus.quality.embed import SentenceEncoder

    sentences = ["The cat sits on the mat.", "A dog is playing in the garden.",
                 "Quantum chromodynamics describes the strong interaction."]  # fmt: skip
    reference_first_dims = [[0.13417712, -0.03290031, -0.02480376, 0.04143898],
                            [0.01731834, -0.07788234, 0.03794942, -0.03794334],
                            [-0.11158381, -0.00781709, -0.02487361, 0.08682521]]  # fmt: skip
    reference_cosines = {(0, 1): 0.15538138, (0, 2): -0.01658852, (1, 2): 0.00307821}
    vectors = SentenceEncoder().encode(sentences)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[:, :4], reference_first_dims, atol=2e-5)
    for (a, b), cosine in reference_cosines.items():
        assert float(vectors[a] @ vectors[b]) == pytest.approx(cosine, abs=2e-5)


def _separable(n: int, seed: int = 0, noise: float = 0.0, shifted: bool = False) -> list[dict]:
    """Generated documents whose class shows in their words (recipes vs match reports), `noise` of the labels
    flipped; `shifted`: the label means match reports instead (another concept under the same name)."""
    rng = random.Random(seed)
    cooking = "flour butter oven simmer garlic whisk dough saucepan onion bake recipe pepper".split()  # noqa: SIM905
    sport = "goal striker referee match league penalty midfield keeper score season coach stadium".split()  # noqa: SIM905
    if shifted:
        cooking, sport = sport, cooking
    common = ["the", "a", "and", "of", "to", "in", "with", "for", "on", "was", "it", "this", "that"]
    rows = []
    for i in range(n):
        positive = i % 3 == 0
        words = [rng.choice(cooking if positive else sport) if rng.random() < 0.3 else rng.choice(common)
                 for _ in range(rng.randint(30, 80))]  # fmt: skip
        label = positive if rng.random() >= noise else not positive
        rows.append({"id": f"doc{seed}-{i}", "text": " ".join(words), "label": label, "annotator": "generator",
                     "created": None, "guideline": "cooking"})  # fmt: skip
    return rows


def _train(tmp_path: Path, rows: list[dict], output: Path, *settings: str):
    labels = tmp_path / f"labels-{len(list(tmp_path.iterdir()))}.parquet"
    write_labels(labels_table(rows), str(labels))
    config = load_config(None, ["classifier.train.epoch=5", *settings])
    return train_classifier(config, str(labels), "label", str(output))


def test_gate_accepts_a_good_model_and_refuses_a_weak_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "cache"))
    published = tmp_path / "models" / "cooking"
    verdict, card = _train(tmp_path, _separable(600), published)
    assert verdict.passed, verdict.failures
    assert card["metrics"]["f1"] >= 0.85 and card["test"]["f1"] >= 0.85
    assert (published / CARD).is_file() and (published / EVAL_SET).is_file()
    first = (published / CARD).read_text()

    # labels with 45 % noise: nothing to learn; the gate names the figure and publishes nothing
    verdict, card = _train(tmp_path, _separable(600, seed=1, noise=0.45), published)
    assert not verdict.passed
    assert any("validation F1" in f and "< gate.min_f1 0.85" in f for f in verdict.failures)
    assert (published / CARD).read_text() == first
    assert json.loads((published.with_name("cooking.refused") / CARD).read_text())["gate"]["passed"] is False

    # good enough alone (min_f1 lowered), but worse than the published model on its pinned evaluation set
    verdict, card = _train(tmp_path, _separable(600, seed=2, shifted=True), published)
    assert card["metrics"]["f1"] >= 0.85
    assert card["pinned_eval"]["published_f1"] - card["pinned_eval"]["f1"] > 0.05
    assert not verdict.passed and any("drop" in f and "gate.max_drop 0.05" in f for f in verdict.failures)
    assert (published / CARD).read_text() == first

    # a model as good as the published one replaces it; the evaluation set stays pinned
    pinned = (published / EVAL_SET).read_bytes()
    verdict, card = _train(tmp_path, _separable(600, seed=3), published)
    assert verdict.passed and card["pinned_eval"]["documents"] > 0
    assert (published / CARD).read_text() != first and (published / EVAL_SET).read_bytes() == pinned


def test_train_classifier_command_and_card(tmp_path, monkeypatch, capsys):
    from corpus.cli import main

    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "cache"))
    labels = tmp_path / "labels.jsonl.gz"
    rows = _separable(300)
    for row in rows:  # strings as labels, two annotators
        row["label"], row["annotator"] = ("edu" if row["label"] else "other"), f"person{int(row['id'][-1]) % 2}"
    write_labels(labels_table(rows), str(labels))
    output = tmp_path / "edu"
    code = main(["train-classifier", f"labels={labels}", "label=label", f"output={output}", "positive=edu",
                 "classifier.train.epoch=5", "classifier.train.beta=0.5"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    card = json.loads((output / CARD).read_text())
    assert card["positive_means"] == "label == edu"
    assert card["training"]["counts"]["by_label"] == {"edu": 100, "other": 200}
    assert card["training"]["counts"]["by_source"] == {"person0": 150, "person1": 150}
    assert len(card["training"]["labels_sha256"]) == 64
    assert sum(card["training"]["splits"].values()) == 300
    for block in ("metrics", "test", "train"):
        assert {"f1", "precision", "recall", "threshold", "macro_f1", "per_class"} <= set(card[block])
    assert card["metrics"]["beta"] == 0.5 and card["metrics"]["pr_curve"]["precision"]
    assert card["versions"]["fasttext-numpy2-wheel"] and card["parameters"]["wordNgrams"] == 2
    # refused: non-zero exit, the failing figure on stderr
    code = main(["train-classifier", f"labels={labels}", f"output={tmp_path / 'strict'}", "positive=edu",
                 "classifier.train.epoch=1", "gate.min_f1=1.01"])  # fmt: skip
    assert code == 2  # a gate above 1 is a configuration error, said in one line
    assert "gate.min_f1" in capsys.readouterr().err


@pytest.mark.slow
def test_embedding_classifier_regression_head(tmp_path):
    """FineWeb-Edu style: a ridge head over embeddings trained on 0-5 scores, rounded at apply time."""
    rows = []
    rng = random.Random(0)
    for i, row in enumerate(_separable(90)):
        row["label"] = rng.choice([3, 4, 5]) if row["label"] else rng.choice([0, 1])
        row["id"] = f"e{i}"
        rows.append(row)
    verdict, card = _train(tmp_path, rows, tmp_path / "edu", "classifier.kind=embedding",
                           "classifier.train.head=ridge", "gate.min_f1=0")  # fmt: skip
    assert verdict.passed and card["kind"] == "embedding" and card["positive_means"] == "label >= 3"
    assert card["test"]["f1"] > 0.8
    model = load_model(ClassifierModelSettings(model=str(tmp_path / "edu"), round=True))
    scores = model.score("edu", pa.array([r["text"] for r in rows[:20]]))
    assert set(np.unique(scores.score)) <= {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}
    assert set(scores.signals) == {"edu.score", "edu.int_score"}


# -- LLM pre-labels against a loopback chat-completions server -------------------------------------------------


class StandIn(BaseHTTPRequestHandler):
    """A deterministic stand-in for an OpenAI-compatible server (a real LLM cannot run here): the score is the
    document's count of the word "lesson" (at most 5); a document containing "flaky" gets a 429 first, one
    containing "broken" always gets a 500, one containing "rambling" an answer without the score line."""

    requests: ClassVar[list[str]] = []
    seen: ClassVar[set[str]] = set()

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][0]["content"]
        document = prompt.split("<extract>\n", 1)[1].split("\n</extract>", 1)[0]
        StandIn.requests.append(document)
        if "broken" in document:
            return self._send(500, {"error": {"message": "internal error"}})
        if "flaky" in document and document not in StandIn.seen:
            StandIn.seen.add(document)
            return self._send(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "10"})
        score = min(5, document.count("lesson"))
        answer = "I would not grade this." if "rambling" in document else f"Reasons.\nEducational score: {score}"
        self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": answer}}],
                         "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split()),
                                   "total_tokens": 0}})  # fmt: skip

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def chat_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StandIn.requests, StandIn.seen = [], set()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_annotate_retries_parses_strictly_and_caches(tmp_path, chat_server, capsys):
    from corpus.cli import main

    docs = [
        {"id": f"d{i}", "text": " ".join(["lesson"] * i + ["filler"] * 5), "url": f"https://x/{i}"} for i in range(6)
    ]
    docs += [{"id": "flaky", "text": "a flaky lesson"}, {"id": "broken", "text": "broken page"},
             {"id": "rambling", "text": "rambling lesson"}]  # fmt: skip
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))
    settings = [f"input={source}", f"output={tmp_path / 'llm.parquet'}", f"annotate.endpoint={chat_server}",
                "annotate.model=stand-in", f"annotate.cache={tmp_path / 'cache.sqlite'}", "annotate.retries=2",
                "annotate.concurrency=3"]  # fmt: skip
    assert main(["annotate", *settings]) == 0
    totals = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    import pyarrow.parquet as pq

    rows = {r["id"]: r for r in pq.read_table(tmp_path / "llm.parquet").to_pylist()}  # failures have no label
    assert [rows[f"d{i}"]["label"] for i in range(6)] == [0, 1, 2, 3, 4, 5]
    assert rows["flaky"]["label"] == 1 and StandIn.requests.count("a flaky lesson") == 2  # 429, then retried
    assert rows["broken"]["label"] is None and rows["broken"]["error"] == "api:http_500"
    assert StandIn.requests.count("broken page") == 3  # the first try and 2 retries
    assert rows["rambling"]["label"] is None and rows["rambling"]["error"] == "malformed_answer"
    assert rows["d3"]["annotator"] == "llm:stand-in" and rows["d3"]["guideline"].startswith("edu-additive-v1@")
    assert rows["d3"]["url"] == "https://x/3"
    assert totals["labelled"] == 7 and totals["failed"] == 2 and totals["cached"] == 0
    assert totals["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows.values()) > 0

    # a rerun asks only for what failed: the well-formed answers come from the cache, at no token cost
    before = len(StandIn.requests)
    assert main(["annotate", *settings[:1], f"output={tmp_path / 'again.jsonl'}", *settings[2:]]) == 0
    totals = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert totals["cached"] == 7 and sorted(set(StandIn.requests[before:])) == ["broken page", "rambling lesson"]
    again = {r["id"]: r for r in read_rows(str(tmp_path / "again.jsonl"))}
    assert all(again[k]["label"] == rows[k]["label"] for k in rows)


def test_parse_answer_is_strict():
    from corpus.quality.annotate import parse_answer

    assert parse_answer("blah\nEducational score: 4\n\n") == 4
    assert parse_answer("Educational score: **3**") == 3
    for bad in ("Educational score: 6", "Educational score: 4 out of 5", "score 4", "", None,
                "Educational score: 3\nThanks!"):  # fmt: skip
        assert parse_answer(bad) is None


# -- active learning and Label Studio ---------------------------------------------------------------------------


def test_uncertain_selection_round_trips_through_label_studio(tmp_path, capsys):
    import pyarrow.parquet as pq

    from corpus.cli import main
    from corpus.quality.active import allocate

    assert allocate({"en": 80, "de": 15, "fr": 5}, 10) == {"en": 7, "de": 2, "fr": 1}  # 1 each, then 7 by size
    rng = np.random.default_rng(0)
    languages = ["en"] * 80 + ["de"] * 15 + ["fr"] * 5
    scores = rng.random(100)
    table = pa.table({"id": [f"d{i}" for i in range(100)], "text": [f"text {i}" for i in range(100)],
                      "language": languages, "quality_score": scores})  # fmt: skip
    pq.write_table(table, tmp_path / "scored.parquet")
    tasks = tmp_path / "tasks.json"
    assert main(["labels", "uncertain", f"input={tmp_path / 'scored.parquet'}", f"output={tasks}", "n=10",
                 "threshold=0.3"]) == 0  # fmt: skip
    exported = json.loads(tasks.read_text())
    picked = {t["data"]["id"]: t["data"] for t in exported}
    by_language = {lang: sum(d["language"] == lang for d in picked.values()) for lang in ("en", "de", "fr")}
    assert by_language == {"en": 7, "de": 2, "fr": 1}
    for lang in ("en", "de", "fr"):  # within each language, the nearest to the threshold
        distances = sorted(abs(s - 0.3) for s, lg in zip(scores, languages) if lg == lang)
        chosen = sorted(abs(d["quality_score"] - 0.3) for d in picked.values() if d["language"] == lang)
        assert chosen == distances[: len(chosen)]

    # people label the tasks in Label Studio; its JSON export comes back in the labels schema
    for number, task in enumerate(exported):
        task["id"] = number
        task["annotations"] = [{"completed_by": {"email": "ann@example.org"}, "created_at": "2026-01-01T00:00:00Z",
                                "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                            "value": {"choices": ["good" if number % 2 else "bad"]}}]}]  # fmt: skip
    export = tmp_path / "export.json"
    export.write_text(json.dumps(exported))
    assert main(["labels", "import", f"input={export}", "label=label", f"output={tmp_path / 'round.parquet'}"]) == 0
    back = read_labels(str(tmp_path / "round.parquet")).to_pylist()
    assert {r["id"] for r in back} == set(picked)
    assert {r["annotator"] for r in back} == {"labelstudio:ann@example.org"}
    assert {r["label"] for r in back} == {"good", "bad"} and all(r["language"] for r in back)


def test_classifier_settings_errors_are_one_line():
    for settings, key in [
        (["classifier.classifiers.a.model=x", "classifier.classifiers.b.model=y"], "classifier.decide"),
        (["classifier.model=x", "classifier.decide=best"], "classifier.decide"),
        (["classifier.model=x", "classifier.top_fraction=1.5"], "classifier.top_fraction"),
        (["classifier.classifiers.a.model=x", "classifier.classifiers.b.model=y", "classifier.decide=all",
          "classifier.top_fraction=0.1"], "classifier.top_fraction"),
        (["classifier.kind=bert"], "classifier.kind"),
        (["classifier.classifiers.a.treshold=0.2"], "classifier.classifiers.a.threshold"),
        (["gate.min_f1=2"], "gate.min_f1"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError) as error:
            load_config(None, settings)
        assert key in str(error.value) and "\n" not in str(error.value)
