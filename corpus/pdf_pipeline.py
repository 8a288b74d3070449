"""The PDF recipe (FinePDFs-style) over one input file: PDF records in, documents out (kept, removed or skipped).

    PDF records (MIME type, .pdf URL or %PDF magic) -> truncated ones to the refetch list -> URL filter
    -> extraction in a sandboxed process (corpus/pdf.py) -> language ID per page, averaged -> the filters the
    config enables (conf/finepdfs.yaml: none of the HTML quality filters, as FinePDFs)

A truncated PDF (WARC-Truncated, fewer bytes than Content-Length, or no %%EOF trailer) is not extracted: it is
removed with ``removed_by=refetch`` and ``reason=truncated:<why>``; those rows are the refetch list, and the
refetch stage writes what the origin returns as new WARC files that this pipeline reads like any other (their
records carry WARC-Refers-To the truncated one). Nothing raises out of `process_file`: every PDF ends kept or
removed with a reason, including the ones whose extraction timed out, ran out of memory or crashed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import cache

from corpus.config import Config, config_from_dict
from corpus.document import Document
from corpus.inputs import crawl_name
from corpus.lid import language_identifier
from corpus.pdf import PdfExtraction, extract_pdf, is_pdf_record, truncation_reason
from corpus.pipeline import (
    configured_filters,
    first_removal,
    read_error_document,
    record_document,
    status_allowed,
)
from corpus.refetch import RefetchItem
from corpus.sandbox import Crashed, Failed, MemoryLimit, Ok, Sandbox, Timeout
from corpus.schema import STATUS_KEPT, STATUS_REMOVED, STATUS_SKIPPED
from corpus.warc import CONTENT_RECORDS, ReadError, WarcRecord

#: Pages with fewer letters than this get no language vote (FinePDFs: < 50 alphabetic characters -> unknown).
MIN_PAGE_LETTERS = 50
#: At most this many pages vote on a document's language (evenly spread over the document).
LID_PAGES = 32


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


class PdfPipeline:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.url_filter, language, self.text_filters = configured_filters(config)
        self.languages: tuple[str, ...] | None = None
        self.language_threshold: float | None = None
        self.language_model: str | None = None
        if language is not None:  # per page, averaged (below), with the filter's languages and threshold
            languages = language.get("languages", ["en"])
            self.languages = tuple(languages) if languages else None
            self.language_threshold = float(language.get("threshold", 0.65))
            self.language_model = language.get("model")
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        """One sandbox per pipeline (so per Python worker): its zygote imports pymupdf once."""
        if self._sandbox is None:
            pdf = self.config.pdf
            self._sandbox = Sandbox(
                extract_pdf, timeout=pdf.time_limit, memory_limit=pdf.memory_limit, preload=["pymupdf"]
            )
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- one file -------------------------------------------------------------------------------------------
    def process_file(
        self, path: str, records: Iterator[WarcRecord | ReadError] | None = None, extract: bool = True
    ) -> Iterator[Document]:
        """Documents of one WARC file; `extract=False` stops before extraction (to list truncated PDFs)."""
        from corpus.warc import iter_records

        crawl = crawl_name(path, self.config.crawl)
        for item in records if records is not None else iter_records(path):
            if isinstance(item, ReadError):
                yield read_error_document(item, crawl)
                continue
            if item.rec_type not in CONTENT_RECORDS:
                continue
            doc = record_document(item, crawl)
            try:
                self.process_record(item, doc, extract)
            except Exception as exc:  # a bug or a surprise in a dependency: one document, never the task
                self._remove(doc, "reader", f"error:{type(exc).__name__}")
                print(f"corpus: PDF record {doc.id} failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            yield doc

    def refetch_items(self, path: str) -> Iterator[RefetchItem]:
        """The records of `path` this pipeline sends to refetch instead of extracting: the refetch list."""
        for doc in self.process_file(path, extract=False):
            if doc.removed_by == "refetch" and doc.url:
                yield RefetchItem(doc.url, doc.id, doc.reason or "truncated")

    # -- one record -----------------------------------------------------------------------------------------
    @staticmethod
    def _remove(doc: Document, step: str, reason: str) -> Document:
        doc.removed_by, doc.reason, doc.status = step, reason, STATUS_REMOVED
        return doc

    def process_record(self, rec: WarcRecord, doc: Document, extract: bool = True) -> Document:
        if rec.rec_type == "revisit":
            doc.status, doc.reason = STATUS_SKIPPED, "revisit"
            return doc
        limit = self.config.pdf.max_bytes
        payload: bytes | None = None
        too_large = False
        if not is_pdf_record(rec.payload_type, rec.url):
            payload, too_large = rec.payload(limit)  # the %PDF magic decides
            if not is_pdf_record(None, None, payload[:1024]):
                doc.status, doc.reason = STATUS_SKIPPED, f"content_type:{rec.payload_type or 'unknown'}"
                return doc
        doc.content_type = "application/pdf"
        if not status_allowed(rec.http_status, self.config.reader.allowed_http_status):
            return self._remove(doc, "reader", f"http_status:{rec.http_status}")
        if self.url_filter is not None:
            keep, reason = self.url_filter.filter(doc)
            if not keep:
                return self._remove(doc, "url", reason or "url")
        if rec.truncated:  # no need to read the payload
            return self._remove(doc, "refetch", f"truncated:{rec.truncated}")
        if payload is None:
            payload, too_large = rec.payload(limit)
        if too_large:
            return self._remove(doc, "reader", "error:payload_too_large")
        if not is_pdf_record(None, None, payload[:1024]):  # an error page or a login form served as a PDF
            return self._remove(doc, "extract", "error:not_pdf")
        why = truncation_reason(payload, None, rec.http_content_length)
        if why is not None:
            return self._remove(doc, "refetch", f"truncated:{why}")
        if not extract:
            return doc
        return self._extract(doc, payload)

    def _extract(self, doc: Document, payload: bytes) -> Document:
        pdf = self.config.pdf
        outcome = self.sandbox.run(payload, max_pages=pdf.max_pages, ocr_language=pdf.ocr_language, layout=pdf.layout)
        if isinstance(outcome, Timeout):
            return self._remove(doc, "extract", "error:timeout")
        if isinstance(outcome, MemoryLimit):
            return self._remove(doc, "extract", "error:memory_limit")
        if isinstance(outcome, Crashed):
            return self._remove(doc, "extract", f"error:crashed:{outcome.reason}")
        if isinstance(outcome, Failed):
            return self._remove(doc, "extract", f"error:{outcome.type}")
        assert isinstance(outcome, Ok)
        result: PdfExtraction = outcome.value
        doc.page_count = result.page_count
        doc.signals.update({f"pdf.{k}": float(v) for k, v in result.signals.items() if isinstance(v, int | float)})
        if result.status != "ok":
            return self._remove(doc, "extract", result.status)  # needs_ocr, empty, error:pdf_encrypted, ...
        doc.text, doc.page_ends = result.text, list(result.page_ends)
        if self.language_threshold is not None:  # as LanguageFilter, on the page-averaged scores
            scores, pages = page_language(doc.text, doc.page_ends, self.language_model)
            doc.signals["language.pages"] = float(pages)
            if not scores:
                return self._remove(doc, "language", "no_prediction")
            doc.language = max(scores, key=lambda k: (scores[k], k))
            doc.language_score = scores[doc.language]
            if self.languages is None:
                if doc.language_score <= self.language_threshold:
                    return self._remove(doc, "language", "low_score")
            elif not any(scores.get(lang, 0.0) > self.language_threshold for lang in self.languages):
                reason = "low_score" if doc.language in self.languages else "other_language"
                return self._remove(doc, "language", reason)
        removal = first_removal(doc, self.text_filters)
        if removal is not None:
            step, reason = removal
            return self._remove(doc, step, reason if isinstance(reason, str) else f"error:{type(reason).__name__}")
        doc.status = STATUS_KEPT
        return doc


@cache
def _pipeline_for(config_json: str) -> PdfPipeline:
    return PdfPipeline(config_from_dict(json.loads(config_json)))


def pdf_pipeline_for(config: Config) -> PdfPipeline:
    """One pipeline per config per Python worker (and so one sandbox, whose zygote has pymupdf loaded)."""
    return _pipeline_for(json.dumps(config.to_dict(), sort_keys=True))
