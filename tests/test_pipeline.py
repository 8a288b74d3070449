"""The HTML recipe over whole files, without Spark: every record accounted for, nothing raises."""

from __future__ import annotations

import io
import threading
import time

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpus.config import load_config
from corpus.html.limits import CpuTimeExceeded, cpu_budget
from corpus.io.warc import iter_records
from corpus.recipes import FineWebRecipe


@pytest.fixture(scope="module")
def pipeline():
    return FineWebRecipe(load_config())


@pytest.fixture(scope="module")
def sample_docs(pipeline, sample_dir):
    return {
        name: list(pipeline.process_file(str(sample_dir / name)))
        for name in ("sample-00000.warc.gz", "sample-00001.warc.gz")
    }


def by_url(docs, url):
    return next(d for d in docs if d.url == url)


def test_every_content_record_is_accounted_for(sample_docs, sample_dir):
    for name, docs in sample_docs.items():
        content = [r for r in iter_records(str(sample_dir / name)) if getattr(r, "rec_type", None) != "request"]
        assert len(docs) == len(content)
        assert {d.status for d in docs} <= {"kept", "removed", "skipped"}
        for d in docs:
            assert (d.status == "removed") == (d.removed_by is not None)


def test_sample_outcomes(sample_docs):
    first, second = sample_docs["sample-00000.warc.gz"], sample_docs["sample-00001.warc.gz"]
    kept = [d for d in first + second if d.status == "kept"]
    assert len(kept) >= 15
    for d in kept:
        assert d.text and d.language == "en" and d.language_score > 0.65 and d.crawl == d.source_path.split("/")[-2]
        assert d.signals["fineweb_quality.list_ratio"] >= 0
    german = by_url(first, "https://bibliothek.example.de/sommer")
    assert (german.removed_by, german.reason, german.language) == ("language", "other_language", "de")
    russian = by_url(first, "https://biblioteka.example.ru/")
    assert russian.charset == "cp1251/meta" and russian.language == "ru" and "библиотека" in russian.text.lower()
    blocked = next(d for d in first if d.url.startswith("https://videos.example.com/"))
    assert (blocked.removed_by, blocked.reason, blocked.text) == ("url", "hard_blacklisted", None)
    assert by_url(first, "https://docs.example.org/logo.png").reason == "content_type:image/png"
    assert any(d.reason == "revisit" and d.status == "skipped" for d in first)
    lam = by_url(second, "https://docs.example.org/reference/lambda.html")  # gzip content-encoding
    assert lam.text and "lambda" in lam.text
    lie = by_url(second, "https://docs.example.org/reference/while.html")  # UTF-8 behind a latin-1 label
    assert lie.charset == "utf-8/utf8" and "«while»" in lie.text
    missing = by_url(second, "https://docs.example.org/missing.html")
    assert (missing.removed_by, missing.reason) == ("reader", "http_status:404")
    assert by_url(second, "https://docs.example.org/guide.pdf").reason == "content_type:application/pdf"
    assert (second[-1].removed_by, second[-1].reason) == ("reader", "error:truncated_record")


def test_output_is_deterministic(pipeline, sample_dir, sample_docs):
    again = list(pipeline.process_file(str(sample_dir / "sample-00000.warc.gz")))
    assert again == sample_docs["sample-00000.warc.gz"]


def test_failures_become_removed_documents(sample_dir, monkeypatch):
    pipeline = FineWebRecipe(load_config())

    def broken(self, doc):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(type(pipeline.text_filters[2]), "filter", broken)  # gopher_quality
    docs = list(pipeline.process_file(str(sample_dir / "sample-00000.warc.gz")))
    errors = [d for d in docs if d.reason == "error:ZeroDivisionError"]
    assert errors and all(d.removed_by == "gopher_quality" for d in errors)


def test_payload_limit_and_cpu_limit(sample_dir, tmp_path):
    small = FineWebRecipe(load_config(None, ["reader.max_payload_bytes=2000"]))
    docs = list(small.process_file(str(sample_dir / "sample-00000.warc.gz")))
    assert any(d.reason == "error:payload_too_large" for d in docs)

    # A page that needs far more than its CPU budget (~1 s of trafilatura for 0.05 s allowed): the signal is
    # handled between bytecodes, so the budget must be small against the work, not merely tiny.
    html = (
        "<html><body>"
        + "".join(
            f"<div class='c{i}'><p>Paragraph {i} of a long page, with <a href='/x{i}'>a link</a> and words.</p></div>"
            for i in range(3000)
        )
        + "</body></html>"
    )
    path = tmp_path / "huge.warc.gz"
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(
                "https://a.test/huge", "response", payload=io.BytesIO(html.encode()), http_headers=headers
            )
        )
    strict = FineWebRecipe(load_config(None, ["extract.cpu_time_limit=0.05"]))
    [doc] = strict.process_file(str(path))
    assert (doc.removed_by, doc.reason) == ("extract", "error:cpu_time_limit")


def test_cpu_budget_stops_busy_code_and_only_that():
    with pytest.raises(CpuTimeExceeded), cpu_budget(0.05):
        while True:
            pass
    with cpu_budget(5):
        time.sleep(0.2)  # sleeping uses no CPU: wall-clock time does not count
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(cpu_budget(0.01).enabled))
    thread.start()
    thread.join()
    assert outcome == [False]  # signals reach only the main thread: disabled elsewhere, never misfired


def test_filters_in_batches_decide_as_one_document_at_a_time(monkeypatch, sample_dir):
    """The loop runs the text filters over batches of documents (for the CPU's caches); the documents, their
    order and every field are what deciding each document right after its extraction gives. A batch also ends
    when its texts reach FILTER_BATCH_CHARS."""
    from corpus.document import to_record_batch
    from corpus.recipes import loop

    held_texts: list[int] = []
    finish = loop.Recipe.finish

    def recording_finish(self, held):  # type: ignore[no-untyped-def]
        held_texts.append(sum(len(doc.text or "") > 0 for doc, _ in held))
        return finish(self, held)

    def rows(batch: int, chars: int = loop.FILTER_BATCH_CHARS) -> list[dict]:
        monkeypatch.setattr(loop, "FILTER_BATCH", batch)
        monkeypatch.setattr(loop, "FILTER_BATCH_CHARS", chars)
        recipe = FineWebRecipe(load_config())
        try:
            docs = [d for name in ("sample-00000.warc.gz", "sample-00001.warc.gz")
                    for d in recipe.process_file(str(sample_dir / name))]  # fmt: skip
        finally:
            recipe.close()
        return to_record_batch(docs).to_pylist()

    one_at_a_time, batched = rows(1), rows(7)  # 7: batches end inside each file, and each file ends one
    assert batched == one_at_a_time
    assert {r["_status"] for r in batched} == {"kept", "removed", "skipped"}
    assert {r["removed_by"] for r in batched} >= {"language", "gopher_quality", "url"}
    monkeypatch.setattr(loop.Recipe, "finish", recording_finish)
    assert rows(64, chars=1) == one_at_a_time
    assert max(held_texts) == 1  # every text reaches the bound: each batch ends at its first text


def test_a_status_code_that_is_not_three_digits_is_named(tmp_path):
    """An HTTP status line whose code is not three digits (a block of CDX lines once gave 20090123145549, which
    no int32 column holds) is not a status: the page is removed as http_status:invalid, and the row is written."""
    from corpus.document import to_record_batch

    path = tmp_path / "codes.warc.gz"
    page = b"<html><body><p>A page with some words in it.</p></body></html>"
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        for code in ("20090123145549 x", "000 Unknown", "2000 OK", "404 Not Found"):
            headers = StatusAndHeaders(code, [("Content-Type", "text/html")], protocol="HTTP/1.1")
            record = writer.create_warc_record(
                f"https://a.test/{code.split()[0]}", "response", payload=io.BytesIO(page), http_headers=headers
            )
            writer.write_record(record)
    docs = list(FineWebRecipe(load_config()).process_file(str(path)))
    assert [(d.http_status, d.removed_by, d.reason) for d in docs] == [
        (None, "reader", "http_status:invalid"),
        (None, "reader", "http_status:invalid"),
        (None, "reader", "http_status:invalid"),
        (404, "reader", "http_status:404"),
    ]
    assert to_record_batch(docs).num_rows == 4
