"""The record loop every recipe shares, and what it needs: records in, documents out (kept, removed or skipped).

A recipe (`Recipe` subclass) says what to do with one content record; the loop reads the file, turns unreadable
records into removed rows, skips structural records and makes sure nothing raises out of `process_file`: a
failure on one record (a bug, or a surprise in a dependency) costs that document, removed with
``reason=error:<exception>``, never the task.
"""

from __future__ import annotations

import inspect
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from corpus.config import Config
from corpus.document import Document
from corpus.filters import FILTERS, Filter, filter_class
from corpus.filters.fineweb import FINEWEB_2024_STOP_CHARS
from corpus.filters.language import LanguageFilter
from corpus.filters.url import URLFilter
from corpus.io.documents import JSONL, PARQUET, WARC, input_format, iter_documents
from corpus.io.inputs import crawl_name
from corpus.io.warc import CONTENT_RECORDS, FRAMING_DEFECTS, ReadError, WarcRecord, iter_records
from corpus.schema import STATUS_KEPT, STATUS_REMOVED
from corpus.text import splitter

#: `removed_by` values in pipeline order, the steps that are not filters included (the stats' funnel order).
STEPS = ("reader", "url", "extract", "language", "gopher_repetition", "gopher_quality", "c4", "fineweb_quality")

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

RecordStep = Callable[[WarcRecord, Document], Document]

#: A step's status for a document whose text still goes through the recipe's `text_filters`: the loop runs them
#: over up to FILTER_BATCH documents at a time and sets kept or removed (it is never written).
STATUS_PENDING = "pending"
#: Records whose documents are decided together. Run right after each page's extraction, the filters find
#: fastText's tables and the word memo evicted from the CPU's caches by it; over a batch they stay warm (about
#: 0.9 ms per HTML record less on ccdev, docs/BENCHMARKS.md), for the texts of at most this many documents,
#: and of fewer when their texts reach FILTER_BATCH_CHARS (pages of megabytes of text keep a worker's memory flat).
FILTER_BATCH = 64
FILTER_BATCH_CHARS = 8_000_000


def filter_params(config: Config, name: str) -> dict[str, Any] | None:
    """Constructor arguments for filter `name`, or None if it is disabled."""
    params = dict(FINEWEB_2024.get(name, {})) if config.compat == "fineweb-2024" else {}
    params.update(config.filters.get(name, {}))
    if not params.pop("enabled", True):
        return None
    return params


def configured_filters(config: Config) -> tuple[URLFilter | None, LanguageFilter | None, list[Filter]]:
    """The filters the config enables: the URL filter (it runs before extraction), the language filter and the
    quality filters: the built-in ones in FILTERS order, then the user's own (``filters.<name>.class``) in the
    config's order."""
    words = splitter(config.compat)
    url_filter: URLFilter | None = None
    language: LanguageFilter | None = None
    quality: list[Filter] = []
    own = [name for name in config.filters if name not in FILTERS]
    for name in [*FILTERS, *own]:
        params = filter_params(config, name)
        if params is None:
            continue
        cls = filter_class(name, params)
        params.pop("class", None)
        if name == "url":
            url_filter = cls(**params)  # type: ignore[assignment]
        elif name == "language":
            language = cls(**params)  # type: ignore[assignment]
        else:
            takes_words = "words" in inspect.signature(cls.__init__).parameters
            flt = cls(**params, words=words) if takes_words else cls(**params)
            if name not in FILTERS and flt.name != name:
                flt.name = name  # its removals say which configured filter made them  # type: ignore[misc]
            quality.append(flt)
    return url_filter, language, quality


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


def first_removal(doc: Document, filters: Iterable[Filter]) -> tuple[str, str | BaseException] | None:
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


class Recipe(ABC):
    """A recipe over one input file. Subclasses implement `process_record`; `process_file` is the loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.url_filter, self.language_filter, self.quality_filters = configured_filters(config)
        #: what the loop runs, in this order, over the documents a step leaves STATUS_PENDING
        self.text_filters: list[Filter] = []
        self._warned: set[str] = set()

    def start_file(self) -> None:  # noqa: B027 (a hook: most recipes keep no per-file state)
        """Called before the records of each file (state that must not leak from one file to the next)."""

    @abstractmethod
    def process_record(self, rec: WarcRecord, doc: Document) -> Document:
        """Decide `doc`, the document of content record `rec`: set its text and status, or remove it."""

    def process_file(self, path: str, records: Iterable[WarcRecord | ReadError] | None = None) -> Iterator[Document]:
        """The documents of one input file (`records`: already read records of it, for tests): WARC/ARC records
        through `process_record`, documents of a JSONL or Parquet file through `process_text`."""
        fmt = self.config.input_format if records is None else WARC
        if fmt == "auto":
            fmt = input_format(path)
        if fmt in (JSONL, PARQUET):
            return self.process_documents(path, fmt)
        return self.loop(path, records, self.process_record)

    def process_documents(self, path: str, fmt: str) -> Iterator[Document]:
        """Documents extracted elsewhere (a JSONL or Parquet file): the recipe's filters on their text."""
        self.start_file()
        crawl = crawl_name(path, self.config.crawl)
        config = self.config
        for item in iter_documents(path, fmt, crawl, config.id_column, config.text_column):
            if isinstance(item, ReadError):
                yield read_error_document(item, crawl)
                continue
            try:
                yield self.process_text(item)
            except Exception as exc:  # a bug or a surprise in a dependency: one document, never the task
                item.text = None
                yield self.remove(item, "reader", exc)

    def process_text(self, doc: Document) -> Document:
        """A document whose text is already extracted: the URL filter (when it has a URL), then the language
        and quality filters."""
        if doc.url and self.url_filter is not None:
            keep, reason = self.url_filter.filter(doc)
            if not keep:
                return self.remove(doc, "url", reason or "url")
        if not doc.text or not doc.text.strip():
            return self.remove(doc, "extract", "empty")
        language = [self.language_filter] if self.language_filter is not None else []
        if (removed := self.apply_filters(doc, [*language, *self.quality_filters])) is not None:
            return removed
        doc.status = STATUS_KEPT
        return doc

    def loop(self, path: str, records: Iterable[WarcRecord | ReadError] | None, step: RecordStep) -> Iterator[Document]:
        """The one record loop: `step` decides each content record's document, or leaves it STATUS_PENDING for
        `text_filters`, which the loop runs over batches of documents (in input order, as it yields them).

        A step that reads the payload checks `rec.defect()` and removes (or refetches) a record that is not whole.
        After the step the loop makes sure: a record whose bytes are broken (cut short, a lying length, a corrupt
        gzip member) is removed as ``error:<defect>`` whatever the step decided without looking at it, and no
        record that is not whole is ever kept."""
        self.start_file()
        crawl = crawl_name(path, self.config.crawl)
        held: list[tuple[Document, Document | None]] = []  # (document, the row that stands instead if it is kept)
        chars = 0  # of the texts held
        for item in records if records is not None else iter_records(path, self.config.reader.warc_reader):
            if isinstance(item, ReadError):
                held.append((read_error_document(item, crawl), None))
            elif item.rec_type in CONTENT_RECORDS:
                held.append(self.decide(item, crawl, step))
                chars += len(held[-1][0].text or "")
            if len(held) >= FILTER_BATCH or chars >= FILTER_BATCH_CHARS:
                yield from self.finish(held)
                held, chars = [], 0
        yield from self.finish(held)

    def decide(self, rec: WarcRecord, crawl: str, step: RecordStep) -> tuple[Document, Document | None]:
        """`step` on one record, and the loop's checks of its bytes: (its document, the reader's removal that
        replaces the document if it is kept after all)."""
        try:
            doc = step(rec, record_document(rec, crawl))
        except Exception as exc:  # a bug or a surprise in a dependency: one document, never the task
            doc = self.remove(record_document(rec, crawl), "reader", exc)
        decided = rec.defect_checked
        defect = rec.defect()
        if not defect:
            return doc, None
        broken = self.remove(record_document(rec, crawl), "reader", f"error:{defect}")
        if doc.status == STATUS_KEPT or (defect in FRAMING_DEFECTS and not decided):
            return broken, None
        return doc, broken

    def finish(self, held: list[tuple[Document, Document | None]]) -> Iterator[Document]:
        """Run `text_filters` over the pending documents of `held`, then yield every document in order."""
        for doc, _ in held:
            if doc.status == STATUS_PENDING and self.apply_filters(doc, self.text_filters) is None:
                doc.status = STATUS_KEPT
        for doc, broken in held:
            yield broken if broken is not None and doc.status == STATUS_KEPT else doc

    def remove(self, doc: Document, step: str, reason: str | BaseException) -> Document:
        """Mark `doc` removed by `step`; an exception becomes ``error:<its type>`` (reported once per type)."""
        if isinstance(reason, BaseException):
            kind = type(reason).__name__
            if kind not in self._warned:
                self._warned.add(kind)
                print(f"corpus: {step} failed on {doc.id} ({kind}: {reason}); counted as error:{kind}", file=sys.stderr)
            reason = f"error:{kind}"
        doc.removed_by, doc.reason, doc.status = step, reason, STATUS_REMOVED
        return doc

    def screen(self, rec: WarcRecord, doc: Document) -> Document | None:
        """The checks before a payload is read: the HTTP status, then the URL filter. Returns `doc` removed, or
        None when it passes."""
        if rec.bad_http_status:
            return self.remove(doc, "reader", "http_status:invalid")
        if not status_allowed(rec.http_status, self.config.reader.allowed_http_status):
            return self.remove(doc, "reader", f"http_status:{rec.http_status}")
        if self.url_filter is not None:
            keep, reason = self.url_filter.filter(doc)
            if not keep:
                return self.remove(doc, "url", reason or "url")
        return None

    def apply_filters(self, doc: Document, filters: Iterable[Filter]) -> Document | None:
        """Remove `doc` by the first of `filters` that drops it and return it; None when all keep it."""
        removal = first_removal(doc, filters)
        return None if removal is None else self.remove(doc, *removal)
