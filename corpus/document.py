"""The in-memory document that flows through the core, and its conversion to Arrow batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

import pyarrow as pa

from corpus.schema import DOCUMENT_COLUMNS, EXTRACT_SCHEMA, STATUS_COLUMN, STATUS_DIRS, STATUS_REMOVED


@dataclass(slots=True)
class Document:
    id: str
    text: str | None
    url: str | None
    crawl: str | None = None
    fetch_time: datetime | None = None
    content_type: str | None = None
    source_path: str | None = None
    source_offset: int | None = None
    language: str | None = None
    language_score: float | None = None
    removed_by: str | None = None
    reason: str | None = None
    signals: dict[str, float] = field(default_factory=dict)
    charset: str | None = None
    http_status: int | None = None
    page_count: int | None = None
    page_ends: list[int] | None = None
    status: str = "kept"


def to_record_batch(docs: list[Document]) -> pa.RecordBatch:
    """Documents -> one Arrow batch in the extract schema (documents plus the status column).

    A document with a value its column cannot hold (an integer out of range, a string with a lone surrogate from
    a JSON escape, a signal that is not a number) becomes a removed row, ``reason=error:unwritable:<field>``, with
    that value emptied, whatever was decided before: one bad field costs that document, never the task that
    writes the batch. A status outside STATUS_DIRS is a bug and raises (its rows would be lost unpublished)."""
    if unknown := {d.status for d in docs} - STATUS_DIRS.keys():
        raise RuntimeError(f"documents with status {sorted(unknown)}, not one of {sorted(STATUS_DIRS)}")
    try:
        return _batch(docs)
    except _UNFIT:
        return _batch([_writable(d) for d in docs])


#: What pyarrow raises for a value that does not fit its column type (AttributeError: signals not a dict).
_UNFIT = (ValueError, TypeError, OverflowError, AttributeError)


def _batch(docs: list[Document]) -> pa.RecordBatch:
    columns = {name: [_cell(d, name) for d in docs] for name in DOCUMENT_COLUMNS}
    columns[STATUS_COLUMN] = [d.status for d in docs]
    return pa.RecordBatch.from_pydict(columns, schema=EXTRACT_SCHEMA)


def _cell(doc: Document, name: str) -> object:
    """The value of column `name` for `doc` (signals as a list of (key, value) entries)."""
    if name == "signals":
        return list(doc.signals.items()) if doc.signals else None
    return getattr(doc, name)


def _writable(doc: Document) -> Document:
    """`doc`, or when a field of it does not fit its column, `doc` removed with that field emptied (the id, which
    cannot be empty, has its unencodable characters written as escapes instead: ``\\udc80``)."""
    bad = []
    for name in DOCUMENT_COLUMNS:
        try:
            pa.array([_cell(doc, name)], EXTRACT_SCHEMA.field(name).type)
        except _UNFIT:
            bad.append(name)
    if not bad:
        return doc
    fixed = replace(doc, **{name: (None if name != "signals" else {}) for name in bad if name != "id"})
    if "id" in bad:
        fixed.id = doc.id.encode("utf-8", "backslashreplace").decode() if isinstance(doc.id, str) else repr(doc.id)
    fixed.removed_by, fixed.reason, fixed.status = "reader", f"error:unwritable:{bad[0]}", STATUS_REMOVED
    return fixed


def batched(docs: Iterable[Document], max_rows: int = 256, max_chars: int = 8_000_000) -> Iterator[pa.RecordBatch]:
    """Group documents into Arrow batches bounded in rows and in text size, so memory stays flat on big WARCs."""
    buf: list[Document] = []
    chars = 0
    for doc in docs:
        buf.append(doc)
        chars += len(doc.text) if doc.text else 0
        if len(buf) >= max_rows or chars >= max_chars:
            yield to_record_batch(buf)
            buf, chars = [], 0
    if buf:
        yield to_record_batch(buf)
