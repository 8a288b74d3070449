"""The PDF recipe: PDF records found in WARCs, truncated ones sent to refetch, the rest extracted in the sandbox,
language by page; then the whole recipe on Spark over ccdev, with the refetch stage fetching the truncated PDFs
from a local copy of their origin site (the HTTPS origin server of tests/test_refetch.py)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpus.config import load_config
from corpus.recipes.finepdfs import FinePdfsRecipe, page_texts
from tests.conftest import shared_path
from tests.test_refetch import servers, tls_servers  # noqa: F401  (fixtures: the origin sites)

pymupdf = pytest.importorskip("pymupdf")

ENGLISH = (
    "The committee met on Tuesday to review the annual budget of the public library. Members agreed that the "
    "reading rooms should stay open later in the winter months, and that the children's section needs new "
    "shelves. The treasurer reported that donations rose by twelve percent compared with last year. "
)
GERMAN = (
    "Der Ausschuss hat am Dienstag den Jahreshaushalt der öffentlichen Bibliothek geprüft. Die Mitglieder "
    "waren sich einig, dass die Lesesäle im Winter länger geöffnet bleiben sollen und die Kinderabteilung "
    "neue Regale braucht. Der Kassenwart berichtete, dass die Spenden um zwölf Prozent gestiegen sind. "
)


OPENINGS = [
    "Spring brought heavy rain to the valley, and the river rose above its banks twice in April.",
    "Our volunteers planted three hundred trees along the northern path during the autumn weekend.",
    "A new bus route now links the station with the hospital, the school and the market square.",
]


def chapter(number: int, repeats: int) -> str:
    """Distinct openings per page (lines repeated at the top of every page would be taken for running headers)."""
    return OPENINGS[number - 1] + " " + ENGLISH * repeats


def make_pdf(pages: list[str], encrypt: bool = False) -> bytes:
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 523, 770), text, fontsize=11)
    options = {}
    if encrypt:
        options = {"encryption": pymupdf.PDF_ENCRYPT_AES_256, "owner_pw": "owner", "user_pw": "secret"}
    data = doc.tobytes(**options)
    doc.close()
    return data


def image_only_pdf() -> bytes:
    """A scan: a page of text rendered to pixels, placed as the only content of a page (no text layer)."""
    source = pymupdf.open(stream=make_pdf([ENGLISH * 3]))
    pix = source[0].get_pixmap(dpi=100)
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, pixmap=pix)
    data = doc.tobytes()
    doc.close()
    source.close()
    return data


def warc_with(records: list[dict]) -> bytes:
    """A WARC of response records: dicts with url, body, and optionally mime, headers (HTTP), warc_headers."""
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=True)
    for r in records:
        http = [("Content-Type", r.get("mime", "application/pdf")), *r.get("headers", [])]
        if not any(k == "Content-Length" for k, _ in http):
            http.append(("Content-Length", str(len(r["body"]))))
        record = writer.create_warc_record(
            r["url"],
            "response",
            payload=io.BytesIO(r["body"]),
            http_headers=StatusAndHeaders("200 OK", http, protocol="HTTP/1.1"),
            warc_headers_dict=r.get("warc_headers", {}),
        )
        writer.write_record(record)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pipeline():
    pipe = FinePdfsRecipe(load_config(Path(__file__).parent.parent / "conf" / "finepdfs.yaml", ["pdf.ocr_engine=null"]))
    yield pipe
    pipe.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory, pipeline: FinePdfsRecipe) -> dict[str, object]:
    good = make_pdf([chapter(1, 3), chapter(2, 2), chapter(3, 1)])
    records = {
        "good": {"url": "https://a.test/report.pdf", "body": good},
        "magic": {"url": "https://a.test/download?id=7", "mime": "application/octet-stream", "body": good},
        "variant": {"url": "https://a.test/doc", "mime": "application/x-pdf; qs=0.001", "body": good},
        "header_truncated": {
            "url": "https://a.test/big.pdf",
            "body": good[:2000],
            "warc_headers": {"WARC-Truncated": "length"},
        },
        "short": {"url": "https://a.test/short.pdf", "body": good, "headers": [("Content-Length", "999999")]},
        "no_eof": {"url": "https://a.test/cut.pdf", "body": good[: len(good) // 2]},
        "encrypted": {"url": "https://a.test/secret.pdf", "body": make_pdf([ENGLISH], encrypt=True)},
        "scan": {"url": "https://a.test/scan.pdf", "body": image_only_pdf()},
        "german": {"url": "https://a.test/bericht.pdf", "body": make_pdf([GERMAN * 3, GERMAN * 2])},
        "not_pdf": {"url": "https://a.test/error.pdf", "body": b"<html><body>Please log in</body></html>"},
        "html": {"url": "https://a.test/page.html", "mime": "text/html", "body": b"<html><p>hello</p></html>"},
    }
    path = tmp_path_factory.mktemp("pdfwarc") / "pdfs.warc.gz"
    path.write_bytes(warc_with(list(records.values())))
    docs = list(pipeline.process_file(str(path)))
    return {"docs": dict(zip(records, docs, strict=True)), "path": str(path), "good": good}


def test_every_record_ends_with_a_status(synthetic):
    docs = synthetic["docs"]
    assert len(docs) == 11
    outcome = {name: (d.status, d.removed_by, d.reason) for name, d in docs.items()}
    assert outcome["good"] == ("kept", None, None)
    assert outcome["magic"] == ("kept", None, None)  # application/octet-stream, no .pdf: found by %PDF
    assert outcome["variant"] == ("kept", None, None)
    assert outcome["header_truncated"] == ("removed", "refetch", "truncated:length")
    assert outcome["short"] == ("removed", "refetch", "truncated:short_payload")
    assert outcome["no_eof"] == ("removed", "refetch", "truncated:no_eof")
    assert outcome["encrypted"] == ("removed", "extract", "error:pdf_encrypted")
    assert outcome["scan"] == ("removed", "extract", "needs_ocr")  # pdf.ocr_engine=null: never OCR
    assert docs["scan"].signals["pdf.ocr_wanted.no_text_layer"] == 1  # the router still says why
    assert outcome["german"] == ("removed", "language", "other_language")
    assert outcome["not_pdf"] == ("removed", "extract", "error:not_pdf")
    assert outcome["html"] == ("skipped", None, "content_type:text/html")


def test_kept_pdfs_carry_pages_and_language(synthetic):
    doc = synthetic["docs"]["good"]
    assert doc.content_type == "application/pdf"
    assert doc.page_count == 3 and len(doc.page_ends) == 3
    assert doc.page_ends == sorted(doc.page_ends) and doc.page_ends[-1] == len(doc.text)
    pages = page_texts(doc.text, doc.page_ends)
    assert [" ".join(p.split()).count("committee met on Tuesday") for p in pages] == [3, 2, 1]
    assert [" ".join(page.split()).startswith(OPENINGS[n]) for n, page in enumerate(pages)] == [True] * 3
    assert doc.language == "en" and doc.language_score > 0.65
    assert doc.signals["language.pages"] == 3
    german = synthetic["docs"]["german"]
    assert german.language == "de" and german.page_count == 2


def test_refetch_list_is_what_extraction_skips(synthetic, pipeline):
    listed = list(pipeline.truncated(synthetic["path"]))
    docs = synthetic["docs"]
    expected = {(docs[n].url, docs[n].id, docs[n].reason) for n in ("header_truncated", "short", "no_eof")}
    assert {(d.url, d.id, d.reason) for d in listed} == expected
    assert pipeline.sandbox.counters.calls > 0  # extraction ran in the sandbox, not in this process


def ocr_recipe(tmp_path: Path, *overrides: str) -> tuple[list, int]:
    """The recipe with OCR on (RapidOCR's bundled models) over a WARC holding the scan: its documents, and the
    calls the OCR sandbox served."""
    pytest.importorskip("rapidocr")
    pipe = FinePdfsRecipe(load_config(Path(__file__).parent.parent / "conf" / "finepdfs.yaml", list(overrides)))
    path = tmp_path / "scan.warc.gz"
    path.write_bytes(warc_with([{"url": "https://a.test/scan.pdf", "body": image_only_pdf()}]))
    try:
        return list(pipe.process_file(str(path))), pipe.ocr_sandbox.counters.calls
    finally:
        pipe.close()


def test_scanned_pdf_is_read_by_ocr_in_its_own_sandbox(tmp_path):
    """The scan (a page of text rendered at 100 dpi, no text layer) is OCR'd page by page in the OCR sandbox and
    kept: its text is read back, its route and reason are in the signals."""
    [doc], ocr_calls = ocr_recipe(tmp_path)
    assert (doc.status, doc.removed_by) == ("kept", None)
    assert "committee met on Tuesday to review the annual budget" in " ".join(doc.text.split())
    assert doc.signals["pdf.pages_ocr"] == 1 and doc.signals["pdf.ocr_wanted.no_text_layer"] == 1
    assert doc.signals["pdf.ocr_failed"] == 0 and doc.signals["pdf.ocr_seconds"] > 0
    assert doc.language == "en"
    assert ocr_calls == 1  # OCR ran in the OCR sandbox, one call for the one page


def test_ocr_page_over_its_budget_costs_the_page(tmp_path):
    """A per-page OCR time limit no page can meet: the page's worker is killed, the document ends as it would
    without an engine (needs_ocr), and the signals say the page's OCR timed out."""
    [doc], _ = ocr_recipe(tmp_path, "pdf.ocr_time_limit=0.001")
    assert (doc.status, doc.removed_by, doc.reason) == ("removed", "extract", "needs_ocr")
    assert doc.signals["pdf.ocr_failed"] == 1 and doc.signals["pdf.ocr_failed.timeout"] == 1
    assert doc.signals["pdf.pages_ocr"] == 0 and doc.signals["pdf.pages_no_text"] == 1


def test_ocr_page_over_its_memory_budget_costs_the_page(tmp_path):
    """A per-page memory budget far below what rendering and the OCR models need: the page fails (as a
    MemoryError, or an allocation failure the C++ runtime reports otherwise), the document ends as needs_ocr."""
    [doc], _ = ocr_recipe(tmp_path, f"pdf.ocr_memory_limit={16 << 20}")
    assert (doc.status, doc.reason) == ("removed", "needs_ocr")
    assert doc.signals["pdf.ocr_failed"] == 1
    assert doc.signals.get("pdf.ocr_failed.memory_limit", 0) + doc.signals.get("pdf.ocr_failed.failed", 0) == 1


def test_a_pdf_that_hangs_costs_one_document(tmp_path):
    """A time limit too short for any PDF: every extraction is killed, each ends removed, the file goes on."""
    pipe = FinePdfsRecipe(
        load_config(Path(__file__).parent.parent / "conf" / "finepdfs.yaml", ["pdf.time_limit=0.001"])
    )
    try:
        path = tmp_path / "x.warc.gz"
        body = make_pdf([ENGLISH])
        path.write_bytes(warc_with([{"url": f"https://a.test/{i}.pdf", "body": body} for i in range(3)]))
        docs = list(pipe.process_file(str(path)))
    finally:
        pipe.close()
    assert [(d.removed_by, d.reason) for d in docs] == [("extract", "error:timeout")] * 3


def test_pii_masking_keeps_page_boundaries():
    from corpus.filters.pii import PIIMasker

    pages = ["Write to jane.doe@example.org today.\n", "Server 8.8.8.8 answered.\n", "No PII here.\n"]
    text = "".join(pages)
    ends = [len(pages[0]), len(pages[0]) + len(pages[1]), len(text)]
    masked, emails, ips, new_ends = PIIMasker().mask_pages(text, ends)
    assert (emails, ips) == (1, 1)
    got = page_texts(masked, new_ends)
    assert "jane.doe" not in got[0] and got[0].startswith("Write to ") and got[0].endswith("today.\n")
    assert "8.8.8.8" not in got[1] and got[1].endswith("answered.\n")
    assert got[2] == pages[2] and new_ends[-1] == len(masked)


# -- the recipe on Spark, over ccdev, with refetch ------------------------------------------------------------
@pytest.fixture(scope="module")
def ccdev_run(spark, servers, tmp_path_factory: pytest.TempPathFactory) -> dict:  # noqa: F811
    ccdev = shared_path("ccdev")
    if servers.ca_file is None:
        pytest.skip("the openssl command is needed to make the test CA")
    for site in (ccdev / "origin").iterdir():
        servers.origin.sites[site.name] = site
    config = load_config(
        Path(__file__).parent.parent / "conf" / "finepdfs.yaml",
        [f"input={ccdev}", "crawl=ccdev", "pdf.ocr_engine=null", "spark.master=local[2]"],
    )
    config.output = str(tmp_path_factory.mktemp("finepdfs") / "out")
    config.refetch = servers.settings(
        tls_hosts=tuple(servers.origin.sites), per_host_delay=0.01, max_bytes=64 << 20, total_timeout=30.0
    )
    from corpus.jobs.run import run_stages

    run = run_stages(config, spark)
    return {"run": run, "out": Path(config.output), "ccdev": ccdev, "config": config, "spark": spark}


@pytest.mark.spark
@pytest.mark.shared
def test_ccdev_pdfs_are_all_accounted_for_and_truncated_ones_refetched(ccdev_run):
    out, ccdev = ccdev_run["out"], ccdev_run["ccdev"]
    truth = [json.loads(line) for line in (ccdev / "ccdev.truth.jsonl").read_text().splitlines() if line.strip()]
    pdfs = [t for t in truth if t["kind"] == "pdf"]
    stats = json.loads((out / "stats" / "refetch.json").read_text())
    truncated = sum(t["truncated"] for t in pdfs)
    assert stats["outcomes"]["ok"] == truncated == 16, stats
    assert len(list((out / "refetched").glob("*.warc.gz"))) >= 1

    kept = pq.read_table(out / "filtered").to_pylist()
    removed = [row for f in sorted((out / "removed").glob("part-*.parquet")) for row in pq.read_table(f).to_pylist()]
    skipped = pq.read_table(out / "skipped", columns=["id", "reason"]).to_pylist()
    from_inputs = [d for d in kept + removed if d["source_path"].startswith(str(ccdev))]
    assert len(from_inputs) == len(pdfs)  # every PDF record of the crawl: kept or removed, never lost
    assert all(s["reason"].startswith("content_type:") for s in skipped)
    assert not [d for d in removed if d["reason"] and d["reason"].startswith(("error:timeout", "error:crashed"))]

    refetch_rows = [d for d in removed if d["removed_by"] == "refetch"]
    assert Counter(d["reason"] for d in refetch_rows)["truncated:length"] == 16
    refetched = [d for d in kept + removed if "/refetched/" in d["source_path"]]
    assert len(refetched) == 16  # each refetched copy went through extraction
    assert not [d for d in refetched if d["removed_by"] == "refetch"]
    original_ids = {d["id"] for d in refetch_rows}
    assert not original_ids & {d["id"] for d in refetched}  # the refetch record's own id (DESIGN §4)

    assert kept, "some PDFs are kept"
    for doc in kept:
        assert doc["content_type"] == "application/pdf" and doc["language"] == "en"
        assert doc["page_count"] >= len(doc["page_ends"]) >= 1 and doc["page_ends"][-1] == len(doc["text"])


@pytest.mark.spark
@pytest.mark.shared
def test_ccdev_pdf_recipe_runs_to_tokens_and_verifies(ccdev_run, capsys):
    from corpus.audit.manifest import verify

    out = ccdev_run["out"]
    assert verify(str(out)) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["refetch", "extract", "stats", "dedup", "tokenize", "report"]
    deduped = pq.read_table(out / "deduped", columns=["text", "page_ends"]).to_pylist()
    assert deduped and all(d["page_ends"][-1] == len(d["text"]) for d in deduped)  # PII masks moved them
    assert pq.read_table(out / "tokenized", columns=["token_count"]).num_rows == len(deduped)

    from corpus.jobs.run import run_stages

    capsys.readouterr()
    run_stages(ccdev_run["config"], ccdev_run["spark"])  # a second run: nothing to do, nothing fetched again
    log = capsys.readouterr().err
    for stage in ("refetch", "extract", "stats", "dedup", "tokenize", "report"):
        assert f"{stage}: up to date" in log, log


def test_refetch_is_only_in_the_pdf_recipe(tmp_path):
    from corpus.config import ConfigError
    from corpus.jobs.run import run_stages

    with pytest.raises(ConfigError, match="refetch is a stage of the PDF recipe"):
        run_stages(load_config(None, ["stages=[refetch]", f"input={tmp_path}", f"output={tmp_path / 'o'}"]))


def test_unknown_ocr_engine_is_a_config_error():
    from corpus.config import ConfigError

    with pytest.raises(ConfigError, match="ocr_engine"):
        load_config(Path(__file__).parent.parent / "conf" / "finepdfs.yaml", ["pdf.ocr_engine=easyocr"])
    config = load_config(Path(__file__).parent.parent / "conf" / "finepdfs.yaml", ["pdf.ocr_engine=null"])
    assert config.pdf.ocr_engine is None
