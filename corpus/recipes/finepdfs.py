"""The PDF recipe (FinePDFs-style) over one input file: PDF records in, documents out (kept, removed or skipped).

    PDF records (MIME type, .pdf URL or %PDF magic) -> truncated ones to the refetch list -> URL filter
    -> extraction in a sandboxed process (corpus/pdf/) -> OCR of the pages that need it, one sandboxed call per
    page -> language ID per page, averaged -> the filters the config enables (conf/finepdfs.yaml: none of the
    HTML quality filters, as FinePDFs)

Extraction routes every page first without OCR; the pages it wants OCR'd (`PdfExtraction.ocr_wanted`) are then
OCR'd one at a time in a second sandbox whose limits are per page (`pdf.ocr_time_limit`, `pdf.ocr_memory_limit`),
so a page that hangs or runs out of memory costs that page, not the document; the document is then assembled
again with the OCR'd pages (headers, footers and reading order over all pages). A page whose OCR failed keeps
what text it had and is counted in `pdf.ocr_failed.<why>`.

A truncated PDF (WARC-Truncated, fewer bytes than Content-Length, or no %%EOF trailer) is not extracted: it is
removed with ``removed_by=refetch`` and ``reason=truncated:<why>``; those rows are the refetch list, and the
refetch stage writes what the origin returns as new WARC files that this recipe reads like any other (their
records carry WARC-Refers-To the truncated one). Nothing raises out of `process_file`: every PDF ends kept or
removed with a reason, including the ones whose extraction timed out, ran out of memory or crashed.
"""

from __future__ import annotations

from collections.abc import Iterator

from corpus.config import Config
from corpus.document import Document
from corpus.io.warc import WarcRecord
from corpus.lid import language_identifier
from corpus.pdf import (
    MAGIC_WINDOW,
    OcrPage,
    PdfExtraction,
    extract_pdf,
    is_pdf_record,
    ocr_page,
    resolve_engine,
    truncation_reason,
)
from corpus.recipes.loop import Recipe
from corpus.sandbox import Crashed, Failed, MemoryLimit, Ok, Sandbox, Timeout, removal_reason
from corpus.schema import STATUS_KEPT, STATUS_SKIPPED

#: How a page's OCR call ended when it did not return (signals `pdf.ocr_failed.<why>`).
_OCR_FAILURES = {Timeout: "timeout", MemoryLimit: "memory_limit", Crashed: "crashed", Failed: "failed"}
#: Pages with fewer letters than this get no language vote (FinePDFs: < 50 alphabetic characters -> unknown).
MIN_PAGE_LETTERS = 50
#: At most this many pages vote on a document's language (evenly spread over the document).
LID_PAGES = 32
#: Records the reader found cut short: refetched, with these reasons (`truncated:<reason>`).
REFETCHED_DEFECTS = {
    "truncated_record": "record_cut",
    "truncated_payload": "short_payload",
    "truncated_chunked": "chunked",
}


def page_texts(text: str, page_ends: list[int]) -> list[str]:
    starts = [0, *page_ends[:-1]]
    return [text[a:b] for a, b in zip(starts, page_ends, strict=True)]


def page_language(text: str, page_ends: list[int], model: str | None = None) -> tuple[dict[str, float], int]:
    """FinePDFs' document language: fastText on each page with enough letters, probabilities averaged over
    those pages (a label missing from a page's top 5 counts 0 there). Returns (label -> mean score, pages)."""
    lid = language_identifier(model)
    pages = [p for p in page_texts(text, page_ends) if sum(c.isalpha() for c in p) >= MIN_PAGE_LETTERS]
    if len(pages) > LID_PAGES:
        step = len(pages) / LID_PAGES
        pages = [pages[int(i * step)] for i in range(LID_PAGES)]
    if not pages:
        pages = [text]
    totals: dict[str, float] = {}
    for page in pages:
        for label, prob in lid.predict(page, k=5):
            totals[label] = totals.get(label, 0.0) + prob
    return {label: total / len(pages) for label, total in totals.items()}, len(pages)


class FinePdfsRecipe(Recipe):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._sandbox: Sandbox | None = None
        self._ocr_sandbox: Sandbox | None = None
        # payloads read while screening a record, handed to extraction (records are read once, in order)
        self._payload: bytes | None = None

    @property
    def sandbox(self) -> Sandbox:
        """One sandbox per recipe (so per Python worker): its zygote imports pymupdf once."""
        if self._sandbox is None:
            pdf = self.config.pdf
            self._sandbox = Sandbox(
                extract_pdf, timeout=pdf.time_limit, memory_limit=pdf.memory_limit, preload=["pymupdf"]
            )
        return self._sandbox

    @property
    def ocr_sandbox(self) -> Sandbox:
        """The OCR sandbox, started on the first page that needs OCR: one call per page, under per-page limits."""
        if self._ocr_sandbox is None:
            pdf = self.config.pdf
            self._ocr_sandbox = Sandbox(
                ocr_page,
                timeout=pdf.ocr_time_limit,
                memory_limit=pdf.ocr_memory_limit,
                max_rss=pdf.ocr_memory_limit,  # the models stay loaded in the worker: recycle it only when it grows
                preload=["pymupdf", "numpy"],
            )
        return self._ocr_sandbox

    def close(self) -> None:
        for sandbox in (self._sandbox, self._ocr_sandbox):
            if sandbox is not None:
                sandbox.close()
        self._sandbox = self._ocr_sandbox = None

    def truncated(self, path: str) -> Iterator[Document]:
        """The documents of `path` this recipe removes as truncated (`removed_by=refetch`), found without
        extracting anything: the refetch list."""
        for doc in self.loop(path, None, self.screen_record):
            if doc.removed_by == "refetch" and doc.url:
                yield doc

    def process_record(self, rec: WarcRecord, doc: Document) -> Document:
        self.screen_record(rec, doc)
        payload, self._payload = self._payload, None
        return doc if payload is None else self._extract(doc, payload)

    def screen_record(self, rec: WarcRecord, doc: Document) -> Document:
        """Everything before extraction: PDF or not, status, URL filter, size, truncation. A PDF that passes is
        left undecided, its payload in `self._payload`."""
        self._payload = None
        if rec.rec_type == "revisit":
            doc.status, doc.reason = STATUS_SKIPPED, "revisit"
            return doc
        limit = self.config.pdf.max_bytes
        payload: bytes | None = None
        too_large = False
        if not is_pdf_record(rec.payload_type, rec.url):
            payload, too_large = rec.payload(limit)  # the %PDF magic decides
            if not is_pdf_record(None, None, payload[:MAGIC_WINDOW]):
                doc.status, doc.reason = STATUS_SKIPPED, f"content_type:{rec.payload_type or 'unknown'}"
                return doc
        doc.content_type = "application/pdf"
        if (removed := self.screen(rec, doc)) is not None:
            return removed
        if rec.truncated:  # no need to read the payload
            return self.remove(doc, "refetch", f"truncated:{rec.truncated}")
        if payload is None:
            payload, too_large = rec.payload(limit)
        if too_large:
            return self.remove(doc, "reader", "error:payload_too_large")
        if (defect := rec.defect()) is not None:
            if defect in REFETCHED_DEFECTS:
                return self.remove(doc, "refetch", f"truncated:{REFETCHED_DEFECTS[defect]}")
            return self.remove(doc, "reader", f"error:{defect}")
        if not is_pdf_record(None, None, payload[:MAGIC_WINDOW]):  # an error page or a login form served as a PDF
            return self.remove(doc, "extract", "error:not_pdf")
        why = truncation_reason(payload, None, rec.http_content_length)
        if why is not None:
            return self.remove(doc, "refetch", f"truncated:{why}")
        self._payload = payload
        return doc

    def _ocr(self, payload: bytes, pages: list[int]) -> dict[int, OcrPage | str]:
        """OCR each page in the OCR sandbox; a page that fails maps to why (`timeout`, `memory_limit`, ...)."""
        pdf = self.config.pdf
        engine = resolve_engine(pdf.ocr_engine)
        results: dict[int, OcrPage | str] = {}
        for index in pages[: pdf.max_ocr_pages] if engine else ():
            outcome = self.ocr_sandbox.run(
                payload,
                index=index,
                engine=engine,
                dpi=pdf.ocr_dpi,
                max_pixels=pdf.ocr_max_pixels,
                language=pdf.ocr_language or "eng",
            )
            if isinstance(outcome, Ok):
                results[index] = outcome.value
            else:
                results[index] = _OCR_FAILURES[type(outcome)]
        return results

    def _extract(self, doc: Document, payload: bytes) -> Document:
        pdf = self.config.pdf
        options = {"max_pages": pdf.max_pages, "ocr_language": pdf.ocr_language, "layout": pdf.layout}
        outcome = self.sandbox.run(payload, **options, ocr_engine=None)  # route first; OCR below, page by page
        if (
            isinstance(outcome, Ok)
            and outcome.value.ocr_wanted
            and (ocr := self._ocr(payload, outcome.value.ocr_wanted))
        ):
            outcome = self.sandbox.run(payload, **options, ocr_engine=None, ocr_results=ocr)
        if not isinstance(outcome, Ok):
            return self.remove(doc, "extract", removal_reason(outcome))
        result: PdfExtraction = outcome.value
        doc.page_count = result.page_count
        doc.signals.update({f"pdf.{k}": float(v) for k, v in result.signals.items() if isinstance(v, int | float)})
        if result.status != "ok":
            return self.remove(doc, "extract", result.status)  # needs_ocr, empty, error:pdf_encrypted, ...
        doc.text, doc.page_ends = result.text, list(result.page_ends)
        if self.language_filter is not None:  # the language filter's decision, on page-averaged scores
            scores, pages = page_language(doc.text, doc.page_ends, self.language_filter.model)
            doc.signals["language.pages"] = float(pages)
            if not scores:
                return self.remove(doc, "language", "no_prediction")
            doc.language = max(scores, key=lambda k: (scores[k], k))
            doc.language_score = scores[doc.language]
            keep, reason = self.language_filter.decide(scores, doc.language)
            if not keep:
                return self.remove(doc, "language", reason or "language")
        if (removed := self.apply_filters(doc, self.quality_filters)) is not None:
            return removed
        doc.status = STATUS_KEPT
        return doc
