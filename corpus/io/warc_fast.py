"""WARC files read by FastWARC (resiliparse's reader, in Rust) where it reads them as `corpus.io.warc` would, and by
that reader from the first record where it might not: the same records, offsets, payloads and errors, faster.

FastWARC finds the records, inflates their gzip members and parses their WARC and HTTP headers. A record is
built from them only when what FastWARC parsed is what warcio's parser would: the header bytes in the file (kept
in a bounded window behind FastWARC's reads, nothing read twice) must be FastWARC's headers written plainly
(``Name: value`` lines ending in CRLF, no bare LF, no line starting with a blank), and are then read as warcio's
parser reads such lines; HTTP headers written otherwise are parsed by warcio's parser from those same bytes. The
fields, the payload (`corpus.io.http`) and the checks on it are `corpus.io.warc`'s own code.

Framing is checked on the raw bytes too:

- before a record is handed out: the file is WARC (not ARC), its records start where the one before ended (the
  first at byte 0), one WARC-Type, WARC-Record-ID and Content-Length, a version warcio reads;
- once it is done with (its payload read, its `defect()` asked, or the next record wanted): its block has the
  length its Content-Length says, followed by CRLF CRLF and then FastWARC's next record or the end of the file.
  In a gzip file: the member's inflated length in its gzip trailer is exactly that (the member holds the record
  and nothing else); in a plain file, the bytes themselves.

Anything else (ARC files, whole-file gzip, a lying or missing length, a member cut short or corrupt, junk between
records, headers written unusually, FastWARC failing) hands the file to `corpus.io.warc` from the record where
the checks failed: reading resumes at that record's offset as that reader would have reached it. A record
already handed out is read again there, and the caller sees that reading's payload and defect (`payload()`
settles the framing before it returns).
"""

from __future__ import annotations

import io
import zlib
from collections import deque
from collections.abc import Generator, Iterator
from typing import Any, BinaryIO

from fastwarc.warc import ArchiveIterator
from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeaders

from corpus.io.inputs import open_input
from corpus.io.warc import (
    _CONTENT_DEFECTS,
    _ONCE,
    MAX_LINE,
    ReadError,
    WarcRecord,
    _End,
    _Frame,
    _to_record,
    read_from,
)

_GZIP_MEMBER = b"\x1f\x8b\x08"
#: Raw bytes kept behind FastWARC's reads: a record's header and the end of the one before must still be there.
_WINDOW = 1 << 20
_READ = 1 << 16
_TRAILER = b"\r\n\r\n"
_ONCE_LOWER = tuple(name.lower() for name in _ONCE)
#: WARC versions warcio's loader reads (others make it fail: then it says why).
_VERSIONS = frozenset(ArcWarcRecordLoader.WARC_TYPES)


class _Window:
    """The file as FastWARC reads it (sequentially, `_READ` bytes at a time), keeping the last `_WINDOW` bytes or
    more, so that a record's raw header and its member's gzip trailer can be checked without reading them again."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.pos = 0  # bytes read so far
        self._chunks: deque[tuple[int, bytes]] = deque()  # (file offset, bytes), in order
        self._kept = 0
        self.eof = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size and size > 0 else _READ)
        if not data:
            self.eof = True
            return b""
        self._chunks.append((self.pos, data))
        self.pos += len(data)
        self._kept += len(data)
        while self._kept - len(self._chunks[0][1]) >= _WINDOW:
            self._kept -= len(self._chunks.popleft()[1])
        return data

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        pass

    def at(self, offset: int, size: int) -> bytes | None:
        """Bytes [offset, offset + size) if they were read and are still kept (fewer at the end of what was read)."""
        if not self._chunks or offset < self._chunks[0][0] or offset > self.pos:
            return None
        parts = []
        end = offset + size
        for start, data in reversed(self._chunks):
            if start >= end:
                continue
            parts.append(data[max(0, offset - start) : end - start])
            if start <= offset:
                break
        return b"".join(reversed(parts))


class _Block:
    """A record's block from FastWARC's payload reader, read by warcio's HTTP header parser and `decode_body`, with
    lines bounded as in `corpus.io.warc` (a longer one sends the file there)."""

    __slots__ = ("_reader", "failed", "long_line")

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.long_line = False  # (noted too: a caller may take the exception for an unparsable header)
        self.failed = False  # FastWARC could not read on (a corrupt or cut member): warcio's reader says what

    def read(self, size: int = -1) -> bytes:
        if self.failed:
            return b""
        try:
            return self._reader.read(size if size is not None and size >= 0 else _READ)  # type: ignore[no-any-return]
        except Exception:
            self.failed = True
            return b""

    def readline(self, limit: int | None = None) -> bytes:
        limit = MAX_LINE + 1 if limit is None or limit < 0 else min(limit, MAX_LINE + 1)
        try:
            line: bytes = self._reader.readline(limit)
        except Exception as exc:
            self.failed = True
            raise _Unsure(str(exc)) from exc
        if len(line) > MAX_LINE:
            self.long_line = True
            raise _Unsure("a header line longer than MAX_LINE")
        return line


class _Unsure(Exception):
    """A record FastWARC read that this module cannot vouch for: the warcio reader reads from it on."""


class _FastFrame(_Frame):
    """A record read by FastWARC: `settle` confirms its framing once it is done with, or hands it to warcio."""

    __slots__ = ("block", "end_offset", "limit", "reader", "settled", "size", "state")
    fast = True

    def __init__(self, state: _FastFile, offset: int, size: int, record: Any, block: _Block) -> None:
        super().__init__(None, offset, record, None, "")  # type: ignore[arg-type]
        self.state, self.block, self.reader = state, block, block._reader
        self.size = size  # the record's bytes as written: header, block and the CRLF CRLF after it
        self.end_offset = -1  # where the next record starts (in a gzip file: known once FastWARC found it)
        self.settled = False
        self.limit: int | None = None

    def finish(self) -> _End:
        if self.end is None:
            self.settle(None, None)
            if self.end is None:  # handed to warcio (its frame ends the record now)
                return _End()
        return self.end

    def settle(self, record: WarcRecord | None, limit: int | None) -> None:
        """Read the rest of the record and the start of the next; if anything is off, read the record again with
        warcio (with the payload `limit` used here) and make `record` that reading."""
        if self.settled:
            return
        self.settled = True
        self.limit = limit if limit is not None else self.limit
        try:
            while self.reader.consume(_READ):
                pass
        except Exception:  # a corrupt or cut member
            self.block.failed = True
        self.record.raw_stream.limit = 0  # read to its end (FastWARC's reader goes away with the next record)
        if not self.block.failed and self.state.advance(self):
            self.end = _End()
            return
        self.state.hand_over(self, record)
        self.end = None


class _FastFile:
    """One file read by FastWARC: its iterator, the window on its bytes, and the warcio reader when it takes over."""

    def __init__(self, path: str, raw: BinaryIO) -> None:
        self.path = path
        self.window = _Window(raw)
        self.records = iter(ArchiveIterator(self.window, parse_http=False, strict_mode=True))
        self.loader = ArcWarcRecordLoader(verify_http=False, arc2warc=False)
        self.gzip = False
        self.next: Any = None  # FastWARC's next record, read when the one before was settled
        self.done = False  # FastWARC reached the end of the file
        self.whole = 0  # records (warcinfo included) confirmed whole
        self.fallback: Iterator[WarcRecord | ReadError] | None = None
        self.fallback_first: WarcRecord | ReadError | None = None

    def pull(self) -> bool:
        """FastWARC's next record into `self.next`; False at the end of the file or when FastWARC fails."""
        try:
            self.next = next(self.records)
        except StopIteration:
            self.next, self.done = None, True
            return False
        except Exception:  # FastWARC refuses the bytes that follow: warcio says what they are
            self.next = None
            return False
        return True

    def advance(self, frame: _FastFrame) -> bool:
        """Move FastWARC past `frame`'s record; whether that record was whole and what follows is the next record
        (or the end of the file)."""
        following = self.pull()
        if following:
            end = self.next.stream_pos
        elif self.done and self.window.eof:
            end = self.window.pos
        else:
            return False
        if self.gzip:  # its member holds just this record: the member's gzip trailer has its inflated length
            frame.end_offset = end
            trailer = self.window.at(end - 4, 4)
            return (
                trailer is not None
                and len(trailer) == 4
                and int.from_bytes(trailer, "little") == frame.size & 0xFFFFFFFF
            )
        return end == frame.end_offset and self.window.at(end - len(_TRAILER), len(_TRAILER)) == _TRAILER

    def start_fallback(self, offset: int) -> None:
        self.fallback = read_from(self.path, offset, self.whole)

    def hand_over(self, frame: _FastFrame, record: WarcRecord | None) -> None:
        """The warcio reader reads on from `frame`'s record; `record` (already handed out) becomes its reading."""
        self.start_fallback(frame.offset)
        assert self.fallback is not None
        first = next(self.fallback, None)
        if record is None or not isinstance(first, WarcRecord) or first.offset != frame.offset:
            self.fallback_first = first  # (the caller never saw this record: it goes out as warcio read it)
            return
        if frame.limit is not None:
            first.payload(frame.limit)
        record._frame, record._record = first._frame, first._record

    def raw(self, start: int, size: int) -> bytes:
        """The first `size` bytes of the record at `start` as they are in the file (in a gzip file: the member that
        starts there, inflated), or fewer where they end; `_Unsure` if they are no longer in the window."""
        raw = self.window.at(start, size + 4096 if self.gzip else size)
        if raw is None:
            raise _Unsure("the record's bytes are no longer in the window")
        if self.gzip:
            if not raw.startswith(_GZIP_MEMBER):
                raise _Unsure("no gzip member where the record starts")
            try:
                raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, size)
            except zlib.error as exc:
                raise _Unsure(str(exc)) from exc
        return raw


def iter_records_fast(path: str) -> Iterator[WarcRecord | ReadError]:
    """`corpus.io.warc.iter_records` with FastWARC reading the records it can (see the module docstring)."""
    try:
        raw = open_input(path)
    except OSError as exc:  # (as corpus.io.warc names it)
        yield ReadError(path, 0, f"unopenable_file:{type(exc).__name__}", str(exc)[:300])
        return
    with raw:
        try:
            head = raw.read(4096)
            raw.seek(0)
        except (OSError, ValueError):
            head = b""
        if not _is_warc(head):  # ARC, empty, unreadable or not an archive: warcio's reader says what it is
            yield from read_from(path)
            return
        state = _FastFile(path, raw)
        state.gzip = head.startswith(_GZIP_MEMBER)
        yield from _records(state)


def _is_warc(head: bytes) -> bool:
    if head.startswith(_GZIP_MEMBER):
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 8)
        except zlib.error:
            return False
    return head.startswith(b"WARC/1.")


def _records(state: _FastFile) -> Generator[WarcRecord | ReadError, None, None]:
    expected = 0  # where the next record starts: after the records confirmed whole
    if not state.pull():
        yield from read_from(state.path)
        return
    while state.next is not None:
        fw = state.next
        try:
            if fw.stream_pos != expected or (state.gzip and fw.stream_pos == state.window.pos):
                raise _Unsure("FastWARC skipped bytes, or reads a whole-file gzip")
            item, frame = _build(state, fw)
        except _Unsure:
            yield from read_from(state.path, expected, state.whole)
            return
        if item is not None:
            yield item
        if state.fallback is None:  # (the caller's payload() or defect() may have settled it already)
            frame.settle(item, None)
        if state.fallback is not None:  # warcio reads on from this record
            if state.fallback_first is not None:
                yield state.fallback_first
            yield from state.fallback
            return
        kind = frame.content_defect
        if kind and not frame.acknowledged:
            yield ReadError(state.path, frame.offset, kind, _CONTENT_DEFECTS.get(kind, ""))
        state.whole += 1
        expected = frame.end_offset
    if not state.done:  # FastWARC failed where a record should start
        yield from read_from(state.path, expected, state.whole)


def _decoded(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("iso-8859-1")


def _lines(block: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The status line and headers of a header block written plainly (`_written`), as warcio's parser reads them:
    each line decoded as UTF-8 or else Latin-1 (all at once when the block is UTF-8: then each line is), cut at
    its first colon, the name and value stripped. `_Unsure` for a line it reads otherwise (one that starts with a
    blank continues the line before)."""
    if block.count(b"\n") != block.count(b"\r\n"):  # (warcio ends a line at a bare LF too)
        raise _Unsure("a bare LF in a header")
    try:
        texts = block.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        texts = [_decoded(line) for line in block.split(b"\r\n")]
    headers = []
    for text in texts[1:-2]:  # (between the status line and the blank line)
        name, colon, value = text.rstrip().partition(":")
        if not name or name[0] in " \t" or not colon:
            raise _Unsure("a header line warcio reads differently")
        headers.append((name.rstrip(" \t"), value.lstrip()))
    return texts[0], headers


def _headers(status: str, headers: list[tuple[str, str]], protocol: str, total: int) -> StatusAndHeaders:
    """warcio's StatusAndHeaders of headers already `str` (its constructor checks each one again)."""
    made = StatusAndHeaders.__new__(StatusAndHeaders)
    made.statusline, made.headers, made.protocol, made.total_len, made.headers_buff = (
        status,
        headers,
        protocol,
        total,
        None,
    )
    return made


def _written(status: bytes | None, items: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """A header block written plainly: what a record's bytes are, nearly always (then warcio parses them as
    `_lines` does)."""
    if not status:
        raise _Unsure("no status line")
    return status + b"\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in items) + b"\r\n"


def _http_headers(
    state: _FastFile, fw: Any, head: bytes, rec_type: str | None, uri: str, length: int, stream: LimitReader
) -> tuple[Any, int]:
    """The record's HTTP headers as warcio's loader reads them from `stream` (None where it reads none), and the
    block bytes they take, with `stream` left after them; checks the record's header bytes (`_Unsure`).

    FastWARC parses them; when its headers are the block's bytes written plainly they are read as `_lines` reads
    them, otherwise warcio's parser reads those bytes (the same ones FastWARC took, or `_Unsure`). A record
    FastWARC does not take for HTTP is read by warcio's parser from the stream."""
    loader = state.loader
    if not (length and rec_type in loader.HTTP_RECORDS and uri.startswith(loader.HTTP_SCHEMES)):  # (warcio's rule)
        if state.raw(fw.stream_pos, len(head)) != head:
            raise _Unsure("the WARC header is not written plainly")
        return loader.load_http_headers(rec_type, uri, stream, length), 0
    if not fw.is_http:
        if state.raw(fw.stream_pos, len(head)) != head:
            raise _Unsure("the WARC header is not written plainly")
        http = loader.load_http_headers(rec_type, uri, stream, length)
        return http, stream.tell()
    fw.parse_http()
    used = length - fw.content_length  # the bytes FastWARC took
    raw = state.raw(fw.stream_pos, len(head) + used)
    if raw[: len(head)] != head or len(raw) != len(head) + used:
        raise _Unsure("the WARC header is not written plainly")
    taken = raw[len(head) :]
    status, items = fw.http_headers.status_line_bytes, fw.http_headers.items_bytes()
    stream.limit = length - used
    try:
        plain = _lines(taken) if status and taken == _written(status, items) else None
    except _Unsure:  # (a line warcio reads otherwise: it reads them below)
        plain = None
    if plain is not None:
        first, lines = plain
        protocol_status = first.rstrip().split(" ", 1)
        statusline = protocol_status[1].strip() if len(protocol_status) > 1 else ""
        return _headers(statusline, lines, protocol_status[0], used), used
    # Written otherwise (no blank line at the end of the block, a folded line, ...): warcio parses those bytes,
    # and must end where FastWARC did: at a blank line, or at the end of the block.
    taken_stream = LimitReader(io.BytesIO(taken), used)
    http = loader.load_http_headers(rec_type, uri, taken_stream, length)
    blank_end = taken.endswith(b"\n") and not taken[:-1].rsplit(b"\n", 1)[-1].strip()
    if taken_stream.tell() != used or not (used == length or blank_end):
        raise _Unsure("HTTP headers FastWARC reads otherwise")
    return http, used


def _build(state: _FastFile, fw: Any) -> tuple[WarcRecord | None, _FastFrame]:
    """The record FastWARC found, as `corpus.io.warc` builds it (None for warcinfo), or `_Unsure`. Its WARC and
    HTTP headers are FastWARC's, checked to be the record's bytes written plainly, read as warcio's parser reads
    those bytes (`_lines`); the rest is what warcio's loader does (`parse_record_stream`, `load_http_headers`)."""
    warc_items = fw.headers.items_bytes()
    head = _written(fw.headers.status_line_bytes, warc_items)
    protocol = fw.headers.status_line_bytes.decode("latin-1")
    if protocol not in _VERSIONS:
        raise _Unsure("a WARC version warcio does not read")
    _, headers = _lines(head)
    names = [name.lower() for name, _ in headers]
    if any(names.count(once) > 1 for once in _ONCE_LOWER):
        raise _Unsure("a header the warcio reader reports")
    loader = state.loader
    rec_headers = _headers("", headers, protocol, len(head))
    rec_type = rec_headers.get_header("WARC-Type")
    try:
        length = int(rec_headers.get_header("Content-Length"))
        uri = loader._ensure_target_uri_format(rec_headers)
        if length != fw.content_length or length < 0:
            raise _Unsure("a length the warcio reader reports")
        block = _Block(fw.reader)
        stream = LimitReader(block, length)
        http_headers, used = _http_headers(state, fw, head, rec_type, uri, length, stream)
    except _Unsure:
        raise
    except Exception as exc:  # (a missing target URI, unparsable HTTP headers: warcio's reader says what)
        raise _Unsure(str(exc)) from exc
    payload_length = length - used if length and http_headers else -1
    content_type = rec_headers.get_header("Content-Type")
    record = ArcWarcRecord(
        "warc", rec_type, rec_headers, stream, http_headers, content_type, length, payload_length=payload_length
    )
    start = fw.stream_pos
    frame = _FastFrame(state, start, len(head) + length + len(_TRAILER), record, block)
    if not state.gzip:
        frame.end_offset = start + frame.size
    if rec_type == "warcinfo":
        return None, frame
    try:
        item = _to_record(state.path, start, record, loader)
    except Exception as exc:
        raise _Unsure(str(exc)) from exc
    if block.long_line or block.failed:
        raise _Unsure("a header line longer than MAX_LINE, or FastWARC could not read on")
    item._frame = frame
    return item, frame
