"""HTTP bodies as WARC records store them: the chunked transfer coding and the content encodings (gzip, deflate,
brotli) undone as streams, with the cap applied to the decoded bytes.

A record of a few kilobytes can expand to gigabytes (a "zip bomb", inside chunks or not); decoding it piece by
piece, never more than `_BLOCK` bytes at a time, costs at most the cap in memory however far it would expand.
warcio's readers decode a whole chunk per call (up to 2 GiB), which is what this replaces.

On ordinary bodies the decoded bytes are warcio's. On broken ones: an unreadable chunk-size line or a chunk not
followed by CRLF makes the rest of the body plain bytes (warcio's fallback, without its lost or repeated bytes);
a compressed body that does not decompress from its first bytes is taken as not compressed (as warcio does), and
one that breaks later ends there. `Body` also says what a truncation check needs: the stored bytes and whether
a chunked body reached its last chunk.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Protocol

_BLOCK = 1 << 16
#: Longest chunk-size line (warcio reads 64 bytes) and trailer section we read.
_CHUNK_LINE = 64
_TRAILER_BYTES = 1 << 16
_MAX_CHUNK = 1 << 31
#: Input kept while a compressed body has produced no output, to pass it through if it is not compressed after all.
_HEAD_LIMIT = 1 << 20
#: Content encodings we undo (others are left as they are stored, as warcio does).
ENCODINGS = frozenset({"gzip", "deflate", "br"})


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes  # the decoded body, at most `limit` bytes
    too_large: bool  # it decodes to more than `limit` bytes (then the other fields are not known)
    stored_bytes: int  # bytes of the body as stored (before any decoding), all of them when not too_large
    #: chunked bodies: whether the last (zero-size) chunk came before the end; None when the body is not chunked
    #: (or its chunking breaks off into plain bytes: malformed, not cut short)
    last_chunk: bool | None


class _Counted:
    """The stored body with a count of the bytes read from it and a bounded readline (for chunk-size lines)."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._buf = b""
        self.count = 0

    def read(self, size: int) -> bytes:
        if self._buf:
            data, self._buf = self._buf[:size], self._buf[size:]
        else:
            data = self._raw.read(size)
        self.count += len(data)
        return data

    def readline(self, limit: int) -> bytes:
        line = b""
        while len(line) < limit:
            piece = self.read(limit - len(line))
            if not piece:
                break
            cut = piece.find(b"\n")
            if cut >= 0:
                self.unread(piece[cut + 1 :])
                return line + piece[: cut + 1]
            line += piece
        return line

    def unread(self, data: bytes) -> None:
        if data:
            self._buf = data + self._buf
            self.count -= len(data)


class _Dechunked:
    """The chunked transfer coding undone, a piece at a time."""

    def __init__(self, raw: _Counted) -> None:
        self._raw = raw
        self._left = 0  # bytes left in the current chunk
        self._started = False
        self.plain = False  # the body turned out not to be chunked (from here on)
        self._done = False
        self.last_chunk = False

    def read(self, size: int) -> bytes:
        if self.plain:
            return self._raw.read(size)
        if self._left == 0 and not self._done:
            self._next_chunk()
            if self.plain:
                return self._raw.read(size)
        if self._done:
            return b""
        data = self._raw.read(min(size, self._left))
        if not data:  # the body ends inside a chunk
            self._done = True
        self._left -= len(data)
        return data

    def _next_chunk(self) -> None:
        if self._started:  # the CRLF after the previous chunk's data
            crlf = self._raw.read(2)
            if crlf != b"\r\n":
                if crlf:
                    self._raw.unread(crlf)
                    self.plain = True
                else:
                    self._done = True
                return
        self._started = True
        line = self._raw.readline(_CHUNK_LINE)
        if not line:
            self._done = True
            return
        try:
            if not line.endswith(b"\r\n"):
                raise ValueError
            size = int(line[:-2].split(b";", 1)[0], 16)
            if not 0 <= size <= _MAX_CHUNK:
                raise ValueError
        except ValueError:  # not a chunk-size line: the rest of the body is plain bytes
            self._raw.unread(line)
            self.plain = True
            return
        if size == 0:
            self._done = self.last_chunk = True
            self._skip_trailers()
            return
        self._left = size

    def _skip_trailers(self) -> None:
        read = 0
        while read < _TRAILER_BYTES:
            line = self._raw.readline(_CHUNK_LINE * 16)
            read += len(line)
            if not line.strip():
                return


class _Decompressed:
    """A content encoding undone with bounded output per call. Input that does not decompress from its first
    bytes is passed through unchanged; an error later ends the body (warcio's rules)."""

    def __init__(self, source: _Counted | _Dechunked, encoding: str) -> None:
        self._source = source
        self._encoding = encoding
        self._decoder = self._new_decoder(encoding)
        #: input consumed before the first output, replayed if the body is not compressed after all (None: too much)
        self._head: bytes | None = b""
        self._produced = False
        self._tail = b""  # input given to the decoder but not consumed yet (zlib's unconsumed_tail)
        self._passthrough = b""
        self.plain = False
        self._done = False

    @staticmethod
    def _new_decoder(encoding: str) -> object:
        if encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompressobj()
        if encoding == "deflate-raw":
            return zlib.decompressobj(-zlib.MAX_WBITS)
        import brotli

        return brotli.Decompressor()

    def read(self, size: int) -> bytes:
        while True:
            if self.plain:
                if self._passthrough:
                    data, self._passthrough = self._passthrough[:size], self._passthrough[size:]
                    return data
                return self._source.read(size)
            if self._done:
                return b""
            data = self._step(size)
            if data:
                self._produced, self._head = True, None
                return data

    def _step(self, size: int) -> bytes:
        decoder = self._decoder
        if self._encoding != "br":
            if decoder.eof:  # type: ignore[attr-defined]  # one stream (the first gzip member) only, as warcio reads it
                self._done = True
                return b""
            data = self._tail
            if not data:
                data = self._source.read(_BLOCK)
                if not data:
                    self._done = True
                    return b""
                self._keep(data)
            try:
                out = decoder.decompress(data, size)  # type: ignore[attr-defined]
            except zlib.error:
                return self._failed()
            self._tail = decoder.unconsumed_tail  # type: ignore[attr-defined]
            return out
        # brotli: output_buffer_limit bounds each call; with output pending, only empty input may be given
        if decoder.is_finished():  # type: ignore[attr-defined]
            self._done = True
            return b""
        data = b"" if not decoder.can_accept_more_data() else self._source.read(_BLOCK)  # type: ignore[attr-defined]
        if not data and decoder.can_accept_more_data():  # type: ignore[attr-defined]
            self._done = True
            return b""
        self._keep(data)
        try:
            return decoder.process(data, output_buffer_limit=size)  # type: ignore[attr-defined]
        except Exception:  # brotli.error
            return self._failed()

    def _keep(self, data: bytes) -> None:
        if not self._produced and self._head is not None:
            self._head = self._head + data if len(self._head) < _HEAD_LIMIT else None

    def _failed(self) -> bytes:
        if self._produced or self._head is None:  # broken in the middle: the body ends here
            self._done = True
            return b""
        if self._encoding == "deflate":  # a raw deflate stream labelled "deflate" (common): start again as that
            self._encoding = "deflate-raw"
            self._decoder = self._new_decoder("deflate-raw")
            self._tail = self._head
            return b""
        self.plain, self._passthrough, self._head, self._tail = True, self._head, None, b""
        return b""


def decode_body(raw: Readable, limit: int, chunked: bool = False, encoding: str | None = None) -> Body:
    """Read a stored HTTP body to its end, or until it decodes to more than `limit` bytes."""
    counted = _Counted(raw)
    dechunked = _Dechunked(counted) if chunked else None
    source: _Counted | _Dechunked = dechunked or counted
    encoding = (encoding or "").strip().lower()
    reader: _Counted | _Dechunked | _Decompressed = _Decompressed(source, encoding) if encoding in ENCODINGS else source
    parts: list[bytes] = []
    total = 0
    # Stored bytes are asked for up to the cap at once (a reader gives what it has, FastWARC's the whole body: one
    # piece, no copy to join them); decoders give `_BLOCK` bytes per call.
    step = limit + 1 if reader is counted else _BLOCK
    while total <= limit:
        piece = reader.read(min(step, limit + 1 - total))
        if not piece:
            break
        parts.append(piece)
        total += len(piece)
    data = b"".join(parts)
    if total > limit:
        return Body(data[:limit], True, counted.count, None)
    # What is stored after the decoded end (the last chunk, trailers, a second gzip member, junk) is read too.
    while dechunked is not None and dechunked.read(_BLOCK):
        pass
    while counted.read(_BLOCK):
        pass
    last_chunk = None if dechunked is None or dechunked.plain else dechunked.last_chunk
    return Body(data, False, counted.count, last_chunk)
