"""The FineWeb HTML recipe over one input file: records in, documents out (kept, removed or skipped).

    URL filter -> charset decoding -> trafilatura -> fastText LID -> Gopher repetition -> Gopher quality
    -> C4 -> FineWeb quality

Plain Python: the Spark job calls `HtmlPipeline.process_file` inside a task, tests call it directly. Nothing
raises out of `process_file`: unreadable records, undecodable or oversized payloads, extractor failures and
filter errors all become removed documents whose `reason` starts with ``error:``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from corpus.charset import decode_html
from corpus.config import Config, config_from_dict
from corpus.document import Document
from corpus.filters import Filter
from corpus.filters.c4 import C4QualityFilter
from corpus.filters.fineweb import FINEWEB_2024_STOP_CHARS, FineWebQualityFilter
from corpus.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from corpus.filters.language import LanguageFilter
from corpus.filters.url import URLFilter
from corpus.html import HtmlExtractor, clean_text
from corpus.inputs import crawl_name
from corpus.limits import CpuTimeExceeded
from corpus.schema import STATUS_KEPT, STATUS_REMOVED, STATUS_SKIPPED
from corpus.text import splitter
from corpus.warc import CONTENT_RECORDS, ReadError, WarcRecord, sniff_type

if TYPE_CHECKING:
    from corpus.pdf_pipeline import PdfPipeline

log = logging.getLogger(__name__)

#: The recipe's filters, in the order FineWeb applies them (the URL filter runs before extraction).
FILTERS: dict[str, type[Filter]] = {
    "url": URLFilter,
    "language": LanguageFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb_quality": FineWebQualityFilter,
}
#: `removed_by` values of the steps that are not filters, in pipeline order (used by the stats).
STEPS = ("reader", "url", "extract", "language", "gopher_repetition", "gopher_quality", "c4", "fineweb_quality")

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

#: What FineWeb's 2024 code did differently, as filter parameters (explicit config values still win).
FINEWEB_2024: dict[str, dict[str, Any]] = {
    "language": {"newline_replacement": "", "top_k": 1},
    "gopher_quality": {"count_distinct_stop_words": False},
    "fineweb_quality": {
        "stop_chars": FINEWEB_2024_STOP_CHARS,
        "skip_empty_lines": False,
        "strict_comparisons": False,
    },
}


def filter_params(config: Config, name: str) -> dict[str, Any] | None:
    """Constructor arguments for filter `name`, or None if it is disabled."""
    params = dict(FINEWEB_2024.get(name, {})) if config.compat == "fineweb-2024" else {}
    params.update(config.filters.get(name, {}))
    if not params.pop("enabled", True):
        return None
    return params


def status_allowed(status: int | None, allowed: list[str]) -> bool:
    if status is None:
        return True
    code = f"{status:03d}"
    return any(code == a or (a.endswith("xx") and code[0] == a[0]) for a in allowed)


def read_error_document(error: ReadError, crawl: str) -> Document:
    """The removed row that stands for an unreadable record or file (every recipe writes the same one)."""
    return Document(
        id=f"<urn:corpus:read-error:{error.path}@{error.offset}>",
        text=None,
        url=None,
        crawl=crawl,
        source_path=error.path,
        source_offset=error.offset,
        removed_by="reader",
        reason=f"error:{error.kind}",
        status=STATUS_REMOVED,
    )


def record_document(rec: WarcRecord, crawl: str) -> Document:
    """A document for a WARC record, with its provenance and no text yet."""
    return Document(
        id=rec.record_id,
        text=None,
        url=rec.url,
        crawl=crawl,
        fetch_time=rec.date,
        content_type=rec.payload_type,
        source_path=rec.path,
        source_offset=rec.offset,
        http_status=rec.http_status,
    )


def configured_filters(config: Config) -> tuple[URLFilter | None, dict[str, Any] | None, list[Filter]]:
    """The filters the config enables: the URL filter, the language filter's parameters (the HTML and PDF
    pipelines apply language ID each their own way) and the quality filters, in FILTERS order."""
    words = splitter(config.compat)
    url_filter: URLFilter | None = None
    language: dict[str, Any] | None = None
    quality: list[Filter] = []
    for name, cls in FILTERS.items():
        params = filter_params(config, name)
        if params is None:
            continue
        if name == "url":
            url_filter = URLFilter(**params)
        elif name == "language":
            language = params
        else:
            quality.append(cls(**params, words=words))
    return url_filter, language, quality


class HtmlPipeline:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.url_filter, language, quality = configured_filters(config)
        self.text_filters: list[Filter] = [LanguageFilter(**language)] if language is not None else []
        self.text_filters += quality
        ex = config.extract
        self.extractor = HtmlExtractor(
            favor_precision=ex.favor_precision,
            include_comments=ex.include_comments,
            include_tables=ex.include_tables,
            deduplicate=ex.deduplicate,
            cpu_time_limit=ex.cpu_time_limit,
            fast_xpath=ex.fast_xpath,
        )
        self._warned: set[str] = set()

    # -- one file -------------------------------------------------------------------------------------------
    def process_file(self, path: str, records: Iterator[WarcRecord | ReadError] | None = None) -> Iterator[Document]:
        from corpus.warc import iter_records

        self.extractor.start_file()
        crawl = crawl_name(path, self.config.crawl)
        for item in records if records is not None else iter_records(path):
            if isinstance(item, ReadError):
                yield read_error_document(item, crawl)
                continue
            if item.rec_type not in CONTENT_RECORDS:
                continue
            try:
                doc = self.process_record(item, crawl)
            except Exception as exc:  # a bug or a surprise in a dependency: one document, never the task
                doc = record_document(item, crawl)
                self._remove(doc, "reader", exc)
            yield doc

    # -- one record -----------------------------------------------------------------------------------------
    def _remove(self, doc: Document, step: str, reason: str | BaseException) -> Document:
        if isinstance(reason, BaseException):
            kind = type(reason).__name__
            if kind not in self._warned:
                self._warned.add(kind)
                print(f"corpus: {step} failed on {doc.id} ({kind}: {reason}); counted as error:{kind}", file=sys.stderr)
            reason = f"error:{kind}"
        doc.removed_by, doc.reason, doc.status = step, reason, STATUS_REMOVED
        return doc

    def process_record(self, rec: WarcRecord, crawl: str) -> Document:
        doc = record_document(rec, crawl)
        if rec.rec_type == "revisit":
            doc.status, doc.reason = STATUS_SKIPPED, "revisit"
            return doc
        limit = self.config.reader.max_payload_bytes
        is_text = rec.rec_type == "conversion" and rec.payload_type == "text/plain"  # WET: text already extracted
        if rec.payload_type not in HTML_TYPES and not is_text:
            if rec.payload_type is not None:
                doc.status, doc.reason = STATUS_SKIPPED, f"content_type:{rec.payload_type}"
                return doc
            try:
                payload, too_large = rec.payload(limit)
            except Exception as exc:
                return self._remove(doc, "reader", exc)
            doc.content_type = sniff_type(payload)
            if doc.content_type not in HTML_TYPES:
                doc.status, doc.reason = STATUS_SKIPPED, f"content_type:{doc.content_type or 'unknown'}"
                return doc
        else:
            payload = None
        if not status_allowed(rec.http_status, self.config.reader.allowed_http_status):
            return self._remove(doc, "reader", f"http_status:{rec.http_status}")

        if self.url_filter is not None:
            keep, reason = self.url_filter.filter(doc)
            if not keep:
                return self._remove(doc, "url", reason or "url")

        if payload is None:
            try:
                payload, too_large = rec.payload(limit)
            except Exception as exc:
                return self._remove(doc, "reader", exc)
        if too_large:
            return self._remove(doc, "reader", "error:payload_too_large")

        decoded = decode_html(payload, rec.http_content_type)
        doc.charset = decoded.label
        if is_text:
            doc.text = clean_text(decoded.text).strip() or None
        else:
            try:
                doc.text = self.extractor.extract(decoded.text)
            except CpuTimeExceeded:
                return self._remove(doc, "extract", "error:cpu_time_limit")
            except Exception as exc:
                return self._remove(doc, "extract", exc)
        if not doc.text:
            return self._remove(doc, "extract", "empty")

        removal = first_removal(doc, self.text_filters)
        if removal is not None:
            return self._remove(doc, *removal)
        doc.status = STATUS_KEPT
        return doc


def first_removal(doc: Document, filters: list[Filter]) -> tuple[str, str | BaseException] | None:
    """The first of `filters` (in order) that removes `doc`: its name and its reason, or the exception it raised
    (a filter's bug costs one document, not the task); None when every filter keeps it."""
    for flt in filters:
        try:
            keep, reason = flt.filter(doc)
        except Exception as exc:
            return flt.name, exc
        if not keep:
            return flt.name, reason or flt.name
    return None


@cache
def _pipeline_for(config_json: str) -> HtmlPipeline:
    return HtmlPipeline(config_from_dict(json.loads(config_json)))


def pipeline_for(config: Config) -> HtmlPipeline | PdfPipeline:
    """The recipe's pipeline, one per config per Python worker: models, blocklists and tokenizer rules load once."""
    if config.recipe == "finepdfs":
        from corpus.pdf_pipeline import pdf_pipeline_for

        return pdf_pipeline_for(config)
    return _pipeline_for(json.dumps(config.to_dict(), sort_keys=True))
