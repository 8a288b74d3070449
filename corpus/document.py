"""The in-memory document that flows through the core, and its conversion to Arrow batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from corpus.schema import DOCUMENT_COLUMNS, EXTRACT_SCHEMA, STATUS_COLUMN


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
    """Documents -> one Arrow batch in the extract schema (documents plus the status column)."""
    columns: dict[str, list] = {name: [getattr(d, name) for d in docs] for name in DOCUMENT_COLUMNS}
    columns["signals"] = [list(d.signals.items()) if d.signals else None for d in docs]
    columns[STATUS_COLUMN] = [d.status for d in docs]
    return pa.RecordBatch.from_pydict(columns, schema=EXTRACT_SCHEMA)


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
