"""Streaming WARC/ARC reading with warcio, hardened for real archives.

Every file is read to its end or to its first unreadable byte. Records come out one at a time (nothing holds a
file whole); a record or file that cannot be read becomes a `ReadError` naming what went wrong and where, never an
exception that kills the task. Beyond plain warcio this handles:

- whole-file gzip (one gzip member holding many records, e.g. ClueWeb): re-read through a gzip stream; offsets
  then count bytes of the uncompressed stream;
- a missing blank line between records (old Common Crawl ARC files): the next record's header is recognised
  instead of being discarded as junk;
- HTTP headers behind a target URI that is not http(s): parsed whenever the record says ``application/http``;
- brotli content encoding with Google's `brotli` module (warcio expects the older `brotlipy` API).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.exceptions import ArchiveLoadFailed

from corpus.io.inputs import open_input

#: Records that carry a payload worth a document; the others (request, warcinfo, metadata) are structural.
CONTENT_RECORDS = frozenset({"response", "resource", "conversion", "revisit"})
_RECORD_START = re.compile(rb"^(WARC/\d|\S+ \S+ \d{14} \S+ \d+\s*$)")
_WHOLE_FILE_GZIP = "non-chunked gzip"


class _BrotliDecompressor:
    """Adapts Google's `brotli.Decompressor` to the zlib-like interface warcio calls."""

    def __init__(self) -> None:
        import brotli

        self._decompressor = brotli.Decompressor()
        self.unused_data = None

    def decompress(self, data: bytes) -> bytes:
        return self._decompressor.process(data)

    def flush(self) -> bytes:
        return b""


try:
    import brotli  # noqa: F401

    BufferedReader.DECOMPRESSORS["br"] = _BrotliDecompressor
except ImportError:  # pragma: no cover - brotli is a dependency
    pass


class _LenientArchiveIterator(ArchiveIterator):
    """warcio's iterator, except that a record header right after a record (no blank line in between) starts
    the next record instead of being consumed as junk."""

    def _consume_blanklines(self):  # type: ignore[override]
        empty_size = 0
        first_line = True
        while True:
            line = self.reader.readline()
            if not line:
                return None, empty_size
            if not line.strip():
                empty_size += len(line)
            elif first_line and not _RECORD_START.match(line):
                empty_size += len(line)  # junk after a record (a wrong Content-Length): skipped, as warcio does
                self.err_count += 1
            else:
                self.err_count += first_line
                return line, empty_size
            first_line = False


@dataclass(slots=True)
class ReadError:
    """A record or file that could not be read. `offset` is where reading stopped."""

    path: str
    offset: int
    kind: str
    message: str


@dataclass(slots=True)
class WarcRecord:
    path: str
    offset: int
    format: str  # "warc" or "arc"
    rec_type: str
    record_id: str
    url: str | None
    date: datetime | None
    payload_type: str | None
    http_status: int | None
    http_content_type: str | None
    http_content_length: int | None
    truncated: str | None
    refers_to: str | None
    _record: Any = field(repr=False, default=None)

    def payload(self, limit: int) -> tuple[bytes, bool]:
        """The decoded payload (chunking and content-encoding undone), at most `limit` bytes, and whether it
        was longer. Only valid until the iterator moves on."""
        data = self._record.content_stream().read(limit + 1)
        return data[:limit], len(data) > limit

    def raw_payload(self, limit: int) -> tuple[bytes, bool]:
        """The payload as stored, with any HTTP chunking and content-encoding still applied."""
        data = self._record.raw_stream.read(limit + 1)
        return data[:limit], len(data) > limit


def _mime(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    try:
        if value.isdigit() and len(value) >= 8:  # ARC: 20080509190241
            return datetime.strptime(value[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def sniff_type(head: bytes) -> str | None:
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:512].lower()
    if head.startswith(b"%pdf"):
        return "application/pdf"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<meta", b"<title")):
        return "text/html"
    return None


def _record_id(path: str, offset: int, headers: Any) -> str:
    rid = headers.get_header("WARC-Record-ID")
    if rid:
        return rid
    # ARC records have no id: derive a stable one from where the record is.
    digest = hashlib.sha1(f"{os.path.basename(path)}@{offset}".encode()).hexdigest()
    return f"<urn:sha1:{digest}>"


def _to_record(path: str, offset: int, record: Any, loader: Any) -> WarcRecord:
    headers = record.rec_headers
    http = record.http_headers
    warc_content_type = headers.get_header("Content-Type") or ""
    if http is None and record.rec_type in ("response", "revisit") and "application/http" in warc_content_type:
        # warcio parses HTTP headers only behind http(s) target URIs.
        try:
            http = loader.http_parser.parse(record.raw_stream)
            record.http_headers = http
        except Exception:
            http = None
    url = headers.get_header("WARC-Target-URI") or headers.get_header("uri")
    if url and url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    status = None
    http_type = http_length = None
    if http is not None and record.rec_type != "request":
        try:
            status = int(http.get_statuscode())
        except (TypeError, ValueError):
            status = None
        http_type = http.get_header("Content-Type")
        try:
            http_length = int(http.get_header("Content-Length") or "")
        except ValueError:
            http_length = None
    payload_type = _mime(headers.get_header("WARC-Identified-Payload-Type")) or _mime(http_type)
    if payload_type is None and (record.rec_type in ("resource", "conversion") or record.format == "arc"):
        payload_type = _mime(warc_content_type) or _mime(headers.get_header("content-type"))
    return WarcRecord(
        path=path,
        offset=offset,
        format=record.format,
        rec_type=record.rec_type,
        record_id=_record_id(path, offset, headers),
        url=url,
        date=parse_date(headers.get_header("WARC-Date") or headers.get_header("archive-date")),
        payload_type=payload_type,
        http_status=status,
        http_content_type=http_type,
        http_content_length=http_length,
        truncated=headers.get_header("WARC-Truncated"),
        refers_to=headers.get_header("WARC-Refers-To"),
        _record=record,
    )


class _Pass:
    """One pass of warcio over a stream; `consumed` counts raw records (structural ones included)."""

    def __init__(self, path: str, stream: BinaryIO, skip: int = 0, size: int | None = None) -> None:
        self.path = path
        self.size = size
        self.iterator = _LenientArchiveIterator(stream, arc2warc=False)
        self.skip = skip
        self.consumed = 0

    def __iter__(self) -> Iterator[WarcRecord | ReadError]:
        iterator = self.iterator
        while True:
            # warcio finishes the previous record inside next(): only then does `offset` point at this one.
            try:
                record = next(iterator)
            except StopIteration:
                leftover = self.size - iterator.offset if self.size is not None else 0
                if leftover > 0:  # warcio ends quietly on a record cut short; say so
                    yield ReadError(self.path, iterator.offset, "truncated_record", f"{leftover} bytes left unread")
                return
            except ArchiveLoadFailed as exc:
                kind = "whole_file_gzip" if _WHOLE_FILE_GZIP in str(exc) else "unreadable_record"
                yield ReadError(self.path, iterator.offset, kind, " ".join(str(exc).split())[:300])
                return
            except Exception as exc:  # warcio's generator is dead after any error: the file ends here
                kind = f"unreadable_record:{type(exc).__name__}"
                yield ReadError(self.path, iterator.offset, kind, str(exc)[:300])
                return
            offset = iterator.offset
            self.consumed += 1
            if self.consumed <= self.skip or record.rec_type in ("warcinfo", "arc_header"):
                continue
            try:
                yield _to_record(self.path, offset, record, iterator.loader)
            except Exception as exc:  # a header we cannot interpret: report the record, keep reading
                yield ReadError(self.path, offset, f"bad_record:{type(exc).__name__}", str(exc)[:300])


def iter_records(path: str) -> Iterator[WarcRecord | ReadError]:
    """All records of one WARC/ARC file, in order, stopping at its end or at the first unreadable byte."""
    try:
        stream = open_input(path)
    except OSError as exc:
        yield ReadError(path, 0, f"unopenable_file:{type(exc).__name__}", str(exc)[:300])
        return
    with stream:
        try:
            if not stream.read(1):
                yield ReadError(path, 0, "empty_file", "the file is empty")
                return
            size = stream.seek(0, os.SEEK_END)
            stream.seek(0)
        except OSError as exc:  # a remote file that kept failing (corpus.io.remote retried it)
            yield ReadError(path, 0, f"unreadable_file:{type(exc).__name__}", str(exc)[:300])
            return
        first = _Pass(path, stream, size=size)
        for item in first:
            if isinstance(item, ReadError) and item.kind == "whole_file_gzip":
                break
            yield item
        else:
            return
    # One gzip member holding many records: read the uncompressed stream, past the records already produced.
    with open_input(path) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
        yield from _Pass(path, unzipped, skip=first.consumed)


@dataclass(slots=True)
class RawRecord:
    """One record read back by its offset (`corpus inspect`): its WARC headers, HTTP status line and headers, and
    the start of its payload as stored (content-encoding undone, nothing decoded)."""

    path: str
    offset: int
    warc_headers: list[tuple[str, str]]
    http_status_line: str | None
    http_headers: list[tuple[str, str]]
    payload: bytes
    payload_truncated: bool


def _raw(path: str, offset: int, record: Any, limit: int) -> RawRecord:
    http = record.http_headers
    data = record.content_stream().read(limit + 1)
    return RawRecord(
        path=path,
        offset=offset,
        warc_headers=list(record.rec_headers.headers),
        http_status_line=http.statusline if http is not None else None,
        http_headers=list(http.headers) if http is not None else [],
        payload=data[:limit],
        payload_truncated=len(data) > limit,
    )


def read_record_at(path: str, offset: int, limit: int = 2000) -> RawRecord:
    """The record at byte `offset` of `path` (a document's source_path and source_offset): a seek, then one
    record. Whole-file gzip WARCs count offsets in the uncompressed stream: those are found by reading up to
    the offset. Raises ValueError when no record starts there."""
    with open_input(path) as stream:
        try:
            stream.seek(offset)
            iterator = _LenientArchiveIterator(stream, arc2warc=False)
            record = next(iterator)
            return _raw(path, offset, record, limit)
        except (ArchiveLoadFailed, StopIteration, OSError, ValueError):
            pass
    with open_input(path) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
        iterator = _LenientArchiveIterator(unzipped, arc2warc=False)
        for record in iterator:
            if iterator.offset == offset:
                return _raw(path, offset, record, limit)
            if iterator.offset > offset:
                break
    raise ValueError(f"{path}: no WARC/ARC record starts at offset {offset}")
