"""Streaming WARC/ARC reading, hardened for real and hostile archives.

Records come out one at a time (nothing holds a file whole) as `WarcRecord`s; bytes that cannot be read become
`ReadError`s naming what went wrong and where, never an exception that kills the task. warcio parses the record
and HTTP headers; the framing (where records start and end, gzip members, the checks below) is done here,
because that is where broken and hostile files differ from good ones.

A record is whole when its block has the length its Content-Length says, followed by a blank line and then the
next record, the end of its gzip member or the end of the file. `WarcRecord.defect()` says why one is not:

- ``truncated_record``: the file ends inside the record (a file cut short, e.g. a gzip member cut at 60 %);
- ``bad_content_length``: the Content-Length is missing or invalid, or does not fit (the block runs into another
  record, past its gzip member or past the end of the file where another record follows, or is not followed by a
  blank line);
- ``corrupt_gzip``: the record's gzip member does not decompress;
- ``truncated_payload``: fewer payload bytes than the HTTP Content-Length promises, and ``truncated_chunked``: a
  chunked body without its last chunk. Both are checked only for responses whose crawler did not mark them
  ``WARC-Truncated``: Common Crawl cuts long payloads on purpose and says so, and FineWeb keeps such HTML pages
  as they are, so this reader does too (the PDF recipe refetches them instead).

A record whose length does not fit costs that record only: reading resynchronises on the next gzip member or
(uncompressed) on the first ``WARC/1.x`` (or ARC header) line after the bad record's first line, so the records
a lying length swallowed are read, and every error has the offset where its bytes start.

Also handled: whole-file gzip (one gzip member holding many records, e.g. ClueWeb: re-read through a gzip stream,
offsets then count bytes of the uncompressed stream); a missing blank line between records (old Common Crawl ARC
files); HTTP headers behind a target URI that is not http(s); brotli with Google's `brotli` module; bodies that
decode to more than the cap, chunked or compressed (`corpus.io.http`), at a bounded cost in memory; header lines
of unbounded length.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO

from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecordLoader

from corpus.io.http import Body, decode_body
from corpus.io.inputs import open_input

#: Records that carry a payload worth a document; the others (request, warcinfo, metadata) are structural.
CONTENT_RECORDS = frozenset({"response", "resource", "conversion", "revisit"})
#: Defects of a record's framing (its bytes in the file), as opposed to its payload against its HTTP headers.
FRAMING_DEFECTS = frozenset({"truncated_record", "bad_content_length", "corrupt_gzip"})
#: A record's first line: WARC's version line, or an ARC header line (URL, which may hold spaces, IP address,
#: date, MIME type, length; warcio splits it from the right).
_RECORD_START = re.compile(rb"^(WARC/\d|\S.* \S+ (\d{8,}|null|-) \S+ -?\d+\s*$)")
#: A record's first line anywhere in a stream, to resynchronise on: WARC's anywhere (after a record cut short the
#: next one may start mid-line), ARC's after a newline (it has no marker of its own).
_WARC_LINE = re.compile(rb"(?P<start>WARC/\d+\.\d+\r?\n)")
_ARC_LINE = re.compile(rb"\n(?P<start>\S[^\n]* \S+ (\d{8,}|null|-) \S+ -?\d+[ \t]*\r?\n)")
#: Headers a WARC record has once: twice means the header of a record cut short ran into the next record's.
_ONCE = ("WARC-Type", "WARC-Record-ID", "Content-Length")
_ARC_PREFIX = re.compile(rb"\S[^\n]* \S+ (\d{8,}|null|-) ")
_WARC_TYPE = re.compile(rb"(?im)^WARC-Type:")
_CONTENT_LENGTH = re.compile(rb"(?im)^Content-Length:[ \t]*\d+[ \t]*\r?$")
_HEADER_WINDOW = 16384
_GZIP_MEMBER = b"\x1f\x8b\x08"
_BLOCK = 1 << 16
_SCAN_WINDOW = 1 << 20
#: Longest header line read (a record or HTTP header, a URL): longer ones make the record unreadable.
MAX_LINE = 1 << 20


# warcio notes on stderr that it replaced spaces in a target URI: the URL is then kept percent-encoded, which is
# not an error worth a console line per record.
logging.getLogger("warcio").setLevel(logging.ERROR)


_CONTENT_DEFECTS = {
    "truncated_payload": "fewer payload bytes than its HTTP Content-Length",
    "truncated_chunked": "a chunked body without its last chunk",
}


class _Unreadable(Exception):
    """Bytes that cannot be part of a record (a header line longer than MAX_LINE)."""


def _line_after_block(src: _Source) -> bytes:
    """The next line after a record's block, where only blank lines or the next record may follow: a line too
    long to read is none of those, and stands as b"?" (not blank, not a record start)."""
    try:
        return src.readline()
    except _Unreadable:
        return b"?"


@dataclass(slots=True)
class ReadError:
    """A record or file that could not be read. `offset` is where its bytes start."""

    path: str
    offset: int
    kind: str
    message: str


class _Source:
    """An archive's bytes from an offset on: plain, or gzip members inflated one at a time, `_BLOCK` bytes at
    most per step. Reads stop at the end of the current member (`next_member` moves on). `offset` is where the
    next unread byte is (plain) or where the current member starts (gzip), as a file offset. Read failures of the
    underlying file (a remote file that kept failing, a cut whole-file gzip stream) end the stream, in `failed`."""

    def __init__(self, raw: BinaryIO, start: int) -> None:
        self._raw = raw
        self._raw_pos = start  # file offset just past what was read from `raw`
        self._pending = b""  # gzip: raw bytes not yet inflated
        self._buf = b""  # bytes ready to be read
        self._at = 0  # position in _buf
        self.failed: str | None = None  # "<exception type>: message" of a failed read
        self.cut = False  # gzip: the file ends inside a member
        self.corrupt: str | None = None  # gzip: the current member does not inflate (zlib's message)
        self.member_start = start
        self.member_ended = False
        self._pending = self._read_raw()
        while 0 < len(self._pending) < 3 and (more := self._read_raw()):
            self._pending += more
        self.gzip = self._pending.startswith(_GZIP_MEMBER)
        self._inflater: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gzip else None
        if not self.gzip:
            self._buf, self._pending = self._pending, b""

    def _read_raw(self) -> bytes:
        if self.failed is not None:
            return b""
        try:
            data = self._raw.read(_BLOCK)
        except EOFError:  # gzip.GzipFile over a cut file
            self.cut = True
            return b""
        except (OSError, zlib.error) as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            return b""
        self._raw_pos += len(data)
        return data

    @property
    def offset(self) -> int:
        if self.gzip:
            return self.member_start
        return self._raw_pos - (len(self._buf) - self._at)

    def _fill(self) -> bool:
        """More bytes into the buffer; False at the end of the member (gzip) or of the file."""
        if not self.gzip:
            data = self._read_raw()
        else:
            data = b""
            while not data:
                if self.member_ended or self.corrupt:
                    return False
                if not self._pending:
                    self._pending = self._read_raw()
                    if not self._pending:
                        self.cut = True  # inside a member, the file ends
                        return False
                try:
                    data = self._inflater.decompress(self._pending, _BLOCK)
                except zlib.error as exc:
                    self.corrupt = str(exc)
                    return False
                if self._inflater.eof:
                    self._pending, self.member_ended = self._inflater.unused_data, True
                else:
                    self._pending = self._inflater.unconsumed_tail
        if not data:
            return False
        self._buf = self._buf[self._at :] + data
        self._at = 0
        return True

    def readline(self, limit: int | None = None) -> bytes:
        scanned = 0  # bytes after _at known to hold no newline
        while True:
            newline = self._buf.find(b"\n", self._at + scanned)
            end = newline + 1 if newline >= 0 else len(self._buf)
            if limit is not None and end - self._at >= limit:
                end = self._at + limit
                break
            if newline >= 0:
                break
            if end - self._at > MAX_LINE:
                raise _Unreadable(f"a header line longer than {MAX_LINE} bytes")
            scanned = end - self._at
            if not self._fill():  # (a fill moves the unread bytes to the start of the buffer)
                end = len(self._buf)
                break
        line = self._buf[self._at : end]
        self._at = end
        return line

    def read(self, size: int | None = None) -> bytes:
        """Up to `size` bytes (fewer only at the end, and never more than a few blocks at once)."""
        size = _BLOCK if size is None or size < 0 else min(size, 4 * _BLOCK)
        while len(self._buf) - self._at < size and self._fill():
            pass
        data = self._buf[self._at : self._at + size]
        self._at += len(data)
        return data

    def at_end(self) -> bool:
        """Nothing left to read: the end of the file, or a gzip member cut short."""
        if self.gzip:
            return self.cut and not self.member_ended
        return self._at >= len(self._buf) and not self._fill()

    def drain_member(self) -> None:
        self._buf, self._at = b"", 0
        while self._fill():
            self._buf, self._at = b"", 0

    def next_member(self) -> bool:
        """Move to the next gzip member (after the current one ended). False at the end of the file; raises
        `_NotGzip` when other bytes follow."""
        self.drain_member()
        if not self.member_ended:  # cut or corrupt: there is no next member to find from here
            return False
        while len(self._pending) < 3 and (more := self._read_raw()):
            self._pending += more
        self.member_start = self._raw_pos - len(self._pending)
        if not self._pending:
            return False
        if not self._pending.startswith(_GZIP_MEMBER):
            raise _NotGzip(self.member_start)
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.member_ended = False
        return True


class _NotGzip(Exception):
    """Bytes after a gzip member that are not another one."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


# How reading goes on after a record: the next line (known or to be read), a resync offset, the end, or a
# restart as a whole-file gzip.
_FOLLOW, _END, _WHOLE_FILE = "follow", "end", "whole_file"


@dataclass(slots=True)
class _End:
    """How a record ended and where reading goes on."""

    defect: str | None = None
    message: str = ""
    next: str | int = _FOLLOW  # _FOLLOW, _END, _WHOLE_FILE, or a file offset to resynchronise at
    line: bytes | None = None  # with _FOLLOW: the next record's first line, when already read
    line_offset: int = 0
    junk: ReadError | None = None  # unreadable bytes after the record that are not its fault


class _Frame:
    """One record's place in its pass: finishing it reads the rest of its block and what follows."""

    __slots__ = ("acknowledged", "body", "content_defect", "defect", "end", "message", "offset", "pass_", "record")

    #: Read by FastWARC (corpus.io.warc_fast): its framing is confirmed by `settle`, which may hand the record to
    #: this reader.
    fast = False

    def __init__(self, pass_: _Pass, offset: int, record: Any, defect: str | None, message: str) -> None:
        self.pass_, self.offset, self.record = pass_, offset, record
        self.defect, self.message = defect, message  # known from the headers (an invalid Content-Length)
        self.end: _End | None = None
        self.body: Body | None = None
        self.acknowledged = False
        self.content_defect: str | None = None

    def finish(self) -> _End:
        if self.end is None:
            self.end = self.pass_.finish(self)
        return self.end


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
    #: the HTTP status line's code is not three digits (http_status is then None)
    bad_http_status: bool = False
    _record: Any = field(repr=False, default=None)
    _frame: _Frame | None = field(repr=False, default=None, compare=False)

    def payload(self, limit: int) -> tuple[bytes, bool]:
        """The decoded payload (chunking and content-encoding undone), at most `limit` bytes, and whether it was
        longer. Read once: later calls return the same bytes. Only valid until the iterator moves on."""
        frame = self._frame
        if frame is not None and frame.body is not None:
            body = frame.body
            return body.data[:limit], body.too_large or len(body.data) > limit
        body = self._decode(limit)
        if frame is not None and frame.fast:  # its framing decides whether these bytes stand or warcio reads them
            frame.settle(self, limit)  # type: ignore[attr-defined]
            body = self._frame.body or body  # type: ignore[union-attr]
        return body.data[:limit], body.too_large or len(body.data) > limit

    def _decode(self, limit: int) -> Body:
        frame = self._frame
        http = self._record.http_headers
        chunked = encoding = None
        if http is not None:
            chunked = (http.get_header("Transfer-Encoding") or "").strip().lower() == "chunked"
            encoding = http.get_header("Content-Encoding")
        body = decode_body(self._record.raw_stream, limit, bool(chunked), encoding)
        if frame is not None:
            frame.body = body
            if not body.too_large:
                frame.content_defect = self._content_defect(body)
        return body

    def _content_defect(self, body: Body) -> str | None:
        """Is the payload shorter than its HTTP headers promise? (Only for responses not marked WARC-Truncated.)"""
        if self.format != "warc" or self.rec_type != "response" or self.truncated or self._record.http_headers is None:
            return None  # (ARC files cannot say a record was truncated on purpose; Common Crawl's cut at 128 KiB)
        if self.http_status is None or not 200 <= self.http_status < 300 or self.http_status == 204:
            return None  # only pages: a redirect or an error may declare a body the crawler did not keep
        if body.last_chunk is False:
            return "truncated_chunked"
        short = self.http_content_length is not None and body.stored_bytes < self.http_content_length
        if body.last_chunk is None and short:
            return "truncated_payload"
        return None

    @property
    def defect_checked(self) -> bool:
        """Whether `defect()` was called (by the recipe step, which then decided what a defect means)."""
        return self._frame is not None and self._frame.acknowledged

    def defect(self) -> str | None:
        """Why this record is not whole (the kinds are in the module docstring), or None. It reads what is left
        of the record, so call it after `payload` (payload checks are made only when the payload was read).
        Calling it says the caller accounts for the defect: `iter_records` then reports no separate error."""
        if self._frame is None:
            return None
        if self._frame.fast:
            self._frame.settle(self, None)  # type: ignore[attr-defined]
        frame = self._frame
        frame.acknowledged = True
        end = frame.finish()
        return end.defect or frame.content_defect

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


def _record_id(path: str, offset: int, rid: str | None) -> str:
    if rid:
        return rid
    # ARC records have no id: derive a stable one from where the record is.
    digest = hashlib.sha1(f"{os.path.basename(path)}@{offset}".encode()).hexdigest()
    return f"<urn:sha1:{digest}>"


def _to_record(path: str, offset: int, record: Any, loader: Any) -> WarcRecord:
    first: dict[str, str] = {}  # (warcio's get_header: the first header of that name, in any case)
    for name, value in record.rec_headers.headers:
        first.setdefault(name.lower(), value)
    header = first.get
    http = record.http_headers
    warc_content_type = header("content-type") or ""
    if http is None and record.rec_type in ("response", "revisit") and "application/http" in warc_content_type:
        # warcio parses HTTP headers only behind http(s) target URIs.
        try:
            http = loader.http_parser.parse(record.raw_stream)
            record.http_headers = http
        except Exception:
            http = None
    url = header("warc-target-uri") or header("uri")
    if url and url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    status = None
    bad_status = False
    http_type = http_length = None
    if http is not None and record.rec_type != "request":
        try:
            status = int(http.get_statuscode())
        except (TypeError, ValueError):
            status = None
        # not three digits: not an HTTP status line (a response record holding CDX lines gave 20090123145549)
        if status is not None and not 100 <= status <= 999:
            status, bad_status = None, True
        http_type = http.get_header("Content-Type")
        try:
            http_length = int(http.get_header("Content-Length") or "")
        except ValueError:
            http_length = None
    payload_type = _mime(header("warc-identified-payload-type")) or _mime(http_type)
    if payload_type is None and (record.rec_type in ("resource", "conversion") or record.format == "arc"):
        payload_type = _mime(warc_content_type)
    return WarcRecord(
        path=path,
        offset=offset,
        format=record.format,
        rec_type=record.rec_type,
        record_id=_record_id(path, offset, header("warc-record-id")),
        url=url,
        date=parse_date(header("warc-date") or header("archive-date")),
        payload_type=payload_type,
        http_status=status,
        http_content_type=http_type,
        http_content_length=http_length,
        truncated=header("warc-truncated"),
        refers_to=header("warc-refers-to"),
        bad_http_status=bad_status,
        _record=record,
    )


def _headers_run_together(headers: Any) -> bool:
    names = [name.lower() for name, _ in headers.headers]
    return any(names.count(once.lower()) > 1 for once in _ONCE)


def _length_defect(record: Any) -> str | None:
    """What is wrong with a WARC record's Content-Length header, or None."""
    if record.format != "warc":
        return None
    value = record.rec_headers.get_header("Content-Length")
    if value is None:
        return "no Content-Length"
    try:
        if int(value) >= 0:
            return None
    except ValueError:
        pass
    return f"invalid Content-Length {value[:40]!r}"


class _Pass:
    """One pass over an archive from a start offset, until its end or the first place it must resynchronise."""

    def __init__(self, path: str, raw: BinaryIO, start: int, skip: int = 0, fmt: str | None = None) -> None:
        self.path, self.raw, self.skip = path, raw, skip
        self.src = _Source(raw, start)
        self.loader = ArcWarcRecordLoader(verify_http=False, arc2warc=False)
        self.fmt = fmt  # "warc" or "arc" once the pass's first record is read
        self.consumed = 0  # records parsed (structural ones included)

    def records(self) -> Generator[WarcRecord | ReadError, None, str | int | None]:
        """The records; returns None at the end of the file, a file offset to resynchronise at, or _WHOLE_FILE."""
        src = self.src
        line: bytes | None = None
        offset = src.offset
        while True:
            if line is None:
                try:
                    found = self._first_line()
                except _NotGzip as exc:
                    yield ReadError(self.path, exc.offset, "unreadable_record", "bytes after a gzip member, not one")
                    return self._resync(exc.offset + 1)
                if isinstance(found, ReadError):
                    yield found
                    resumable = ":" not in found.kind  # (not a failed read of the file itself)
                    return self._resync(found.offset + 1) if resumable else None
                if found is None:
                    return None
                line, offset = found
            if not _RECORD_START.match(line):
                yield ReadError(self.path, offset, "unreadable_record", f"not a record header: {line[:80]!r}")
                return self._resync(offset + 1)
            try:
                record = self.loader.parse_record_stream(src, line, self.fmt)
            except Exception as exc:  # an unparsable header (warcio's ArchiveLoadFailed, a line too long, ...)
                if src.at_end():
                    yield ReadError(self.path, offset, "truncated_record", "the file ends inside the record's header")
                    return None
                if isinstance(exc, AttributeError) and "startswith" in str(exc):  # warcio reads a missing URI
                    yield ReadError(self.path, offset, "missing_target_uri", "a record without WARC-Target-URI")
                else:
                    yield ReadError(self.path, offset, "unreadable_record", " ".join(str(exc).split())[:300])
                return self._resync(offset + 1)
            if src.failed:
                yield ReadError(self.path, offset, "unreadable_record:" + src.failed.split(":")[0], src.failed[:300])
                return None
            if record.format == "warc" and _headers_run_together(record.rec_headers):
                yield ReadError(self.path, offset, "truncated_record", "its header runs into the next record's")
                return self._resync(offset + 1)
            self.fmt = self.fmt or record.format
            self.consumed += 1
            problem = _length_defect(record)
            if problem is not None and not isinstance(record.raw_stream, LimitReader):
                record.raw_stream = LimitReader(src, 0)  # no length: no block to read
            kind = "bad_content_length"
            if problem is not None and src.at_end():  # the header block itself was cut
                kind, problem = "truncated_record", "the file ends inside the record's header"
            frame = _Frame(self, offset, record, kind if problem else None, problem or "")
            if self.consumed > self.skip and record.rec_type not in ("warcinfo", "arc_header"):
                try:
                    item = _to_record(self.path, offset, record, self.loader)
                except Exception as exc:  # a header we cannot interpret: report the record, keep reading
                    frame.acknowledged = True  # this error stands for the record
                    yield ReadError(self.path, offset, f"bad_record:{type(exc).__name__}", str(exc)[:300])
                else:
                    item._frame = frame
                    yield item
            end = frame.finish()
            kind = end.defect or frame.content_defect
            if kind and not frame.acknowledged:
                yield ReadError(self.path, offset, kind, end.message or _CONTENT_DEFECTS.get(kind, ""))
            if end.junk is not None:
                yield end.junk
            if end.next == _FOLLOW:
                line, offset = end.line, end.line_offset
            elif end.next == _END:
                return None
            else:
                return end.next

    def _first_line(self) -> tuple[bytes, int] | ReadError | None:
        """The next non-blank line and the offset of its record, crossing gzip members; None at the end."""
        src = self.src
        while True:
            offset = src.offset
            try:
                line = src.readline()
            except _Unreadable as exc:
                return ReadError(self.path, offset, "unreadable_record", str(exc))
            if line.strip():
                return line, offset
            if line:
                continue
            if src.failed:
                return ReadError(self.path, offset, "unreadable_record:" + src.failed.split(":")[0], src.failed[:300])
            if not src.gzip:
                return None
            if src.corrupt:
                return ReadError(self.path, offset, "corrupt_gzip", src.corrupt)
            if src.cut:
                return ReadError(self.path, offset, "truncated_record", "the file ends inside a gzip member")
            if not src.next_member():
                return None

    def finish(self, frame: _Frame) -> _End:
        src = self.src
        stream = frame.record.raw_stream
        while stream.read(_BLOCK):
            pass
        short = isinstance(stream, LimitReader) and stream.limit > 0
        if src.failed:
            return _End("unreadable_record:" + src.failed.split(":")[0], src.failed[:300], _END)
        if frame.defect is not None:
            if src.gzip:
                src.drain_member()
                return self._member_end(_End(frame.defect, frame.message), frame)
            return _End(frame.defect, frame.message, self._resync_or_end(frame.offset + 1))
        if src.gzip:
            return self._finish_member(frame, short, stream)
        return self._finish_plain(frame, short, stream)

    def _member_end(self, end: _End, frame: _Frame) -> _End:
        """After a record's gzip member was read to its end: go on with the next member, resync after a corrupt
        one, or stop where the file ends (cut in the blank lines or the gzip trailer after a whole block)."""
        if self.src.corrupt:
            return _End("corrupt_gzip", self.src.corrupt, self._resync_or_end(frame.offset + 1))
        if self.src.cut:  # (the bytes of a member that follows a cut one inflate as its garbage: look for it)
            end.next = self._resync_or_end(frame.offset + 1)
        return end

    def _finish_member(self, frame: _Frame, short: bool, stream: Any) -> _End:
        src = self.src
        if short:
            if src.corrupt:
                return _End("corrupt_gzip", src.corrupt, self._resync_or_end(frame.offset + 1))
            if src.cut:
                message = f"its gzip member ends {stream.limit} bytes before the record does, cut short"
                return _End("truncated_record", message, self._resync_or_end(frame.offset + 1))
            return _End("bad_content_length", f"its gzip member ends {stream.limit} bytes before its block", _FOLLOW)
        while True:  # the rest of the member: a blank line or two
            line = _line_after_block(src)
            if not line:
                break
            if line.strip():
                if _RECORD_START.match(line):  # another record in the same member: a whole-file gzip
                    return _End(next=_WHOLE_FILE)
                src.drain_member()
                return self._member_end(
                    _End("bad_content_length", "bytes after its block inside its gzip member", _FOLLOW), frame
                )
        return self._member_end(_End(), frame)

    def _finish_plain(self, frame: _Frame, short: bool, stream: Any) -> _End:
        src = self.src
        if short:  # plain streams end only at the end of the file
            resync = self._resync(frame.offset + 1)
            if resync is None:
                return _End("truncated_record", f"the file ends {stream.limit} bytes before the record does", _END)
            return _End("bad_content_length", "its block runs into the next record", resync)
        block_end = src.offset
        line = _line_after_block(src)
        if not line:
            return _End(next=_END)
        if _RECORD_START.match(line):  # no blank line in between (old ARC files): the next record
            return _End(line=line, line_offset=block_end)
        if line.strip():  # the block goes on: its length is too short
            resync = self._resync_or_end(frame.offset + 1)
            return _End("bad_content_length", "its block is not followed by a blank line", resync)
        while True:
            at = src.offset
            line = _line_after_block(src)
            if not line:
                return _End(next=_END)
            if line.strip():
                break
        if _RECORD_START.match(line):
            return _End(line=line, line_offset=at)
        resync = self._resync(frame.offset + 1)
        if resync is not None and resync < block_end:  # a record starts inside this one's block: a lying length
            return _End("bad_content_length", "its block runs into the next record", resync)
        junk = ReadError(self.path, at, "unreadable_record", f"not a record header: {line[:80]!r}")
        return _End(next=resync if resync is not None else _END, junk=junk)

    def _resync(self, start: int) -> int | None:
        """The offset of the first record at or after `start`: a gzip member that inflates to a record header, or a
        record header line, whichever comes first (a gzip file whose first bytes are damaged looks plain, and a
        plain file may go on in gzip). Read in overlapping windows, until the first one that holds a record."""
        lines = {"warc": [_WARC_LINE], "arc": [_ARC_LINE]}.get(self.fmt or "", [_WARC_LINE, _ARC_LINE])
        pos = start - 1  # an ARC record starts after a newline: include the byte before `start`
        while True:
            window = _read_at(self.raw, pos, _SCAN_WINDOW)
            if window is None:
                return None
            hits = [(m.start("start"), False) for p in lines for m in p.finditer(window)]
            at = window.find(_GZIP_MEMBER)
            while at >= 0:
                hits.append((at, True))
                at = window.find(_GZIP_MEMBER, at + 1)
            for hit, member in sorted(hits):
                if pos + hit < start:
                    continue
                if (
                    _member_holds_record(window[hit : hit + 4096])
                    if member
                    else _looks_like_header(window[hit : hit + _HEADER_WINDOW], self.fmt)
                ):
                    return pos + hit
            if len(window) < _SCAN_WINDOW:
                return None
            pos += len(window) - _BLOCK  # windows overlap by a block: headers that straddle two are found

    def _resync_or_end(self, start: int) -> int | str:
        found = self._resync(start)
        return _END if found is None else found


def _read_at(raw: BinaryIO, offset: int, size: int) -> bytes | None:
    try:
        raw.seek(offset)
        data = raw.read(size)
    except (OSError, EOFError, zlib.error, ValueError):
        return None
    return data or None


def _looks_like_header(head: bytes, fmt: str | None) -> bool:
    """Whether `head` starts with a record header: a WARC header block with a type and a valid length, or an ARC
    header line. (Regular expressions on a bounded window: a hostile file may hold many candidates.)"""
    if not head.startswith(b"WARC/"):
        return fmt != "warc" and _RECORD_START.match(head.split(b"\n", 1)[0] + b"\n") is not None
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    block = head[: min(ends)] if ends else b""
    return _WARC_TYPE.search(block) is not None and _CONTENT_LENGTH.search(block) is not None


def _member_holds_record(head: bytes) -> bool:
    try:
        start = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 64)
    except zlib.error:
        return False
    return start.startswith(b"WARC/") or _ARC_PREFIX.match(start) is not None


def _passes(
    path: str, raw: BinaryIO, skip: int = 0, start: int = 0, fmt: str | None = None
) -> Generator[WarcRecord | ReadError, None, tuple[bool, int]]:
    """Passes over `raw` from `start` (0, or where a pass in `fmt` reached a record after whole ones), each
    resynchronising where the previous one stopped. Returns whether the file turned out to be a whole-file gzip,
    and the records read."""
    consumed = 0
    while True:
        try:
            raw.seek(start)
        except (OSError, ValueError) as exc:
            yield ReadError(path, start, f"unreadable_file:{type(exc).__name__}", str(exc)[:300])
            return False, consumed
        reader = _Pass(path, raw, start, skip=max(0, skip - consumed), fmt=fmt)
        fmt = None  # (a pass after a resynchronisation finds its format again)
        outcome = yield from reader.records()
        consumed += reader.consumed
        if outcome == _WHOLE_FILE:
            return True, consumed
        if not isinstance(outcome, int) or outcome <= start:
            return False, consumed
        start = outcome


#: Readers `iter_records` can use (`reader.warc_reader`): FastWARC where it reads the file as this reader would
#: (corpus.io.warc_fast; "auto" uses it when it is installed), or this reader alone.
WARC_READERS = ("auto", "fastwarc", "warcio")


def iter_records(path: str, reader: str = "auto") -> Iterator[WarcRecord | ReadError]:
    """All records of one WARC/ARC file, in order, and a `ReadError` for each unreadable stretch of it. Whichever
    the `reader` (WARC_READERS), the records, offsets and errors are the same."""
    if reader != "warcio":
        try:
            from corpus.io.warc_fast import iter_records_fast
        except ImportError:
            if reader == "fastwarc":
                raise
        else:
            return iter_records_fast(path)
    return read_from(path)


def read_from(path: str, start: int = 0, before: int = 0) -> Iterator[WarcRecord | ReadError]:
    """The records of `path` from byte `start` on, by this reader: from the start, or (`start` > 0) from where a
    WARC record follows `before` whole records (warcinfo included) read by FastWARC."""
    if start > 0:
        yield from _read_rest(path, start, before)
        return
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
        except OSError as exc:  # a remote file that kept failing (corpus.io.remote retried it)
            yield ReadError(path, 0, f"unreadable_file:{type(exc).__name__}", str(exc)[:300])
            return
        whole_file, consumed = yield from _passes(path, stream)
    if not whole_file:
        return
    # One gzip member holding many records: read the uncompressed stream, past the records already produced.
    with open_input(path) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
        yield from _passes(path, unzipped, skip=consumed)  # type: ignore[arg-type]


def _read_rest(path: str, start: int, before: int) -> Iterator[WarcRecord | ReadError]:
    try:
        stream = open_input(path)
    except OSError as exc:
        yield ReadError(path, start, f"unopenable_file:{type(exc).__name__}", str(exc)[:300])
        return
    with stream:
        whole_file, consumed = yield from _passes(path, stream, start=start, fmt="warc")
    if whole_file:
        with open_input(path) as raw, gzip.GzipFile(fileobj=raw) as unzipped:
            yield from _passes(path, unzipped, skip=before + consumed)  # type: ignore[arg-type]


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
    """The record at byte `offset` of `path` (a document's source_path and source_offset), read by the same reader
    as extraction (so whole-file gzip WARCs count offsets in the uncompressed stream, as their rows do). Raises
    ValueError when no record starts there."""
    for item in iter_records(path, "warcio"):  # (the record warcio parsed: `_raw` reads its headers)
        if isinstance(item, WarcRecord) and item.offset == offset:
            return _raw(path, offset, item._record, limit)
        if item.offset > offset:
            break
    raise ValueError(f"no record starts at byte {offset} of {path}")
