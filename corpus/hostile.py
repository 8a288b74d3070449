"""Hostile inputs, built on demand: records cut short, lying lengths, bombs (gzip inside HTTP chunks, an element
with a million attributes, YAML that expands a billion times), a charset header that lies about UTF-16.

The tests build each case from here (nothing large is stored in the repository), scripts/bench_hostile.py
measures them (docs/RELIABILITY.md), and scripts/fuzz seeds its corpora with them. Everything is deterministic:
the same call gives the same bytes.
"""

from __future__ import annotations

import gzip
import html
import re
import struct
import uuid
import zlib
from collections.abc import Sequence

_CRLF = b"\r\n"
_MIB = 1 << 20


def english_page(title: str, min_chars: int = 27_000, start: int = 0) -> bytes:
    """An English HTML article that the FineWeb recipe keeps: prose paragraphs of the Python reference manual
    (shipped with every CPython, `pydoc_data.topics`), topics from the `start`-th on, about `min_chars`
    characters. Pages with different `start`s share no paragraph (trafilatura drops repeated ones)."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    paragraphs: list[str] = []
    size = 0
    for name in names[start % len(names) :] + names[: start % len(names)]:
        for block in re.split(r"\n\s*\n", re.sub(r'"([^"\s]+)"', r"\1", topics[name].strip())):
            text = " ".join(block.split())
            if block.startswith(" ") or "::=" in block or len(text) < 200 or not text.endswith("."):
                continue
            tokens = re.findall(r"\w+|[^\w\s]", text)  # prose: few symbols (Gopher's alphabetic-word share)
            if sum(t.isalpha() for t in tokens) < 0.88 * len(tokens) or html.escape(text) in paragraphs:
                continue
            paragraphs.append(html.escape(text))
            size += len(text)
        if size >= min_chars:
            break
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    page = f"<!DOCTYPE html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>\n{body}"
    return (page + "</article></body></html>").encode()


def record_id(name: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"


def http_response(
    body: bytes, headers: Sequence[tuple[str, str]] = (), status: str = "200 OK", content_length: bool = True
) -> bytes:
    """An HTTP response as a WARC response record's block stores it."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def warc_record(
    url: str,
    block: bytes,
    *,
    rec_type: str = "response",
    length: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    name: str | None = None,
) -> bytes:
    """A WARC/1.0 record (header, block, blank line). `length`: the Content-Length to write, true or not."""
    fields = [
        ("WARC-Type", rec_type),
        ("WARC-Record-ID", record_id(name or url)),
        ("WARC-Date", "2024-03-01T00:00:00Z"),
        ("WARC-Target-URI", url),
        ("Content-Type", "application/http; msgtype=response" if rec_type == "response" else "text/plain"),
        *headers,
        ("Content-Length", str(len(block)) if length is None else length),
    ]
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n"
    return head.encode() + block + _CRLF + _CRLF


def html_record(url: str, page: bytes, **kwargs: object) -> bytes:
    block = http_response(page, [("Content-Type", "text/html; charset=utf-8")])
    return warc_record(url, block, **kwargs)  # type: ignore[arg-type]


def gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def warc_file(records: Sequence[bytes], gzipped: bool) -> bytes:
    """Records as a file: one gzip member per record (Common Crawl's layout), or plain."""
    return b"".join(gzip_member(r) for r in records) if gzipped else b"".join(records)


def good_pages(n: int, prefix: str = "page") -> list[tuple[str, bytes]]:
    """`n` distinct pages the recipe keeps: (url, record bytes)."""
    out = []
    for i in range(n):
        url = f"https://hostile.test/{prefix}/{i}"
        out.append((url, html_record(url, english_page(f"{prefix.title()} {i}", 3000, start=7 * i))))
    return out


# --- 1. records cut short -------------------------------------------------------------------------------------


def cut_last_record(gzipped: bool, fraction: float = 0.6) -> bytes:
    """Three whole pages, then a fourth (about 27,000 characters) cut at `fraction` of its bytes (of its gzip
    member when `gzipped`): the file ends mid-record."""
    records = [record for _, record in good_pages(3)]
    last = html_record("https://hostile.test/cut", english_page("Cut short", start=60))
    whole = warc_file(records, gzipped)
    tail = gzip_member(last) if gzipped else last
    return whole + tail[: int(len(tail) * fraction)]


def short_http_body() -> bytes:
    """A response whose WARC record is whole but holds half of the body its HTTP Content-Length announces (a
    connection that dropped, and a crawler that did not say WARC-Truncated); then a whole page."""
    page = english_page("Half a page", start=40)
    block = http_response(page[: len(page) // 2], [("Content-Type", "text/html"), ("Content-Length", str(len(page)))],
                          content_length=False)  # fmt: skip
    records = [warc_record("https://hostile.test/half", block), good_pages(1)[0][1]]
    return warc_file(records, gzipped=True)


def cut_chunked_body() -> bytes:
    """A chunked response without its last chunk (cut after the second of four chunks), then a whole page."""
    page = english_page("Chunked", start=40)
    quarter = len(page) // 4
    chunks = b"".join(b"%x\r\n" % quarter + page[i * quarter : (i + 1) * quarter] + _CRLF for i in range(2))
    block = http_response(chunks, [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")],
                          content_length=False)  # fmt: skip
    records = [warc_record("https://hostile.test/chunked", block), good_pages(1)[0][1]]
    return warc_file(records, gzipped=True)


def crawler_truncated() -> bytes:
    """Common Crawl's own truncation: the body cut at a limit, and the record says so (WARC-Truncated: length)."""
    page = english_page("Truncated on purpose", 40_000, start=40)
    block = http_response(page[:30_000], [("Content-Type", "text/html"), ("Content-Length", str(len(page)))],
                          content_length=False)  # fmt: skip
    return warc_file([warc_record("https://hostile.test/cc-cut", block, headers=[("WARC-Truncated", "length")])], True)


# --- 2. lying lengths -----------------------------------------------------------------------------------------


def lying_length(value: str, gzipped: bool, position: int = 1, records: int = 4) -> bytes:
    """`records` pages, the one at `position` with WARC Content-Length `value` (e.g. "1000000000000", "-5",
    "abc", "" or a number a little too small or too large)."""
    pages = good_pages(records, prefix="lie")
    out = []
    for i, (url, _) in enumerate(pages):
        page = english_page(f"Lie {i}", 3000, start=7 * i)
        out.append(html_record(url, page, length=value if i == position else None))
    return warc_file(out, gzipped)


def shifted_length(delta: int, gzipped: bool = False) -> bytes:
    """Four pages, the second with a Content-Length `delta` bytes off (too long: it swallows the start of the
    third; too short: its own tail is left behind as junk)."""
    pages = good_pages(4, prefix="shift")
    out = []
    for i, (url, record) in enumerate(pages):
        if i == 1:
            block_size = len(record.split(b"\r\n\r\n", 1)[1]) - 4
            record = html_record(url, english_page(f"Shift {i}", 3000, start=7 * i), length=str(block_size + delta))
        out.append(record)
    return warc_file(out, gzipped)


def corrupt_member(gzipped_records: int = 4, corrupt: int = 1) -> bytes:
    """Per-record gzip with bytes in the middle of one member overwritten."""
    members = [gzip_member(record) for _, record in good_pages(gzipped_records, prefix="corrupt")]
    bad = bytearray(members[corrupt])
    middle = len(bad) // 2
    bad[middle : middle + 16] = b"\xff" * 16
    members[corrupt] = bytes(bad)
    return b"".join(members)


# --- 3. a page lxml cannot parse in time ----------------------------------------------------------------------


def attribute_bomb(attributes: int = 1_000_000) -> bytes:
    """One element with `attributes` distinct attributes (1M: a 5.5 MB page; libxml2 is superlinear in them)."""
    attrs = " ".join(f"a{i:x}" for i in range(attributes))
    page = f"<!DOCTYPE html><html><body><div {attrs}>x</div><p>Some text.</p></body></html>".encode()
    return warc_file([html_record("https://hostile.test/attributes", page)], gzipped=True)


# --- 4. a chunked gzip bomb -----------------------------------------------------------------------------------


def gzip_zeros(size: int) -> bytes:
    """A gzip stream of `size` zero bytes (a whole number of MiB), built without compressing them all: after a
    full flush every MiB of zeros deflates to the same bytes, so one block is repeated. 1 GiB -> about 1 MB."""
    assert size % _MIB == 0
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(bytes(_MIB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zero = bytes(_MIB)
    for _ in range(size // _MIB):
        crc = zlib.crc32(zero, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * (size // _MIB) + deflate.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF)


def chunked_gzip_bomb(size: int = 1 << 30, chunks: int = 1) -> bytes:
    """A response of gzip-encoded zeros (`size` bytes decoded) sent in `chunks` HTTP chunks, in a per-record gzip
    WARC file of a few kilobytes, between two whole pages."""
    encoded = gzip_zeros(size)
    step = -(-len(encoded) // chunks)
    body = b"".join(
        b"%x\r\n" % len(encoded[i : i + step]) + encoded[i : i + step] + _CRLF for i in range(0, len(encoded), step)
    )
    body += b"0\r\n\r\n"
    headers = [("Content-Type", "text/html"), ("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")]
    bomb = warc_record("https://hostile.test/bomb", http_response(body, headers, content_length=False))
    pages = good_pages(2, prefix="around-bomb")
    return warc_file([pages[0][1], bomb, pages[1][1]], gzipped=True)


# --- 5. a charset header that lies ----------------------------------------------------------------------------


def utf16_lie(bom: bool = False) -> bytes:
    """A UTF-16-LE page (no byte-order mark) sent with ``charset=utf-8``."""
    page = english_page("Sixteen bits", 4000, start=40).decode().encode("utf-16-le")
    if bom:
        page = b"\xff\xfe" + page
    block = http_response(page, [("Content-Type", "text/html; charset=utf-8")])
    return warc_file([warc_record("https://hostile.test/utf16", block)], gzipped=True)


# --- 8. YAML bombs --------------------------------------------------------------------------------------------


def _laughs(levels: int, width: int, indent: str) -> list[str]:
    lines = [f'{indent}a0: &a0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"{indent}a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return lines


def billion_laughs(levels: int = 9, width: int = 9, where: str = "storage.options.s3") -> str:
    """A "billion laughs" config: `width`**`levels` strings from a few hundred bytes of anchors and aliases, all
    under the dotted key `where` (storage.options.<protocol> takes any mapping, so nothing else rejects it)."""
    keys = where.split(".")
    lines = ["  " * depth + f"{key}:" for depth, key in enumerate(keys)]
    return "\n".join(lines + _laughs(levels, width, "  " * len(keys))) + "\n"


def list_bomb(levels: int = 8, width: int = 9) -> str:
    """The anchors tucked under storage.options, and the expansion given to a list field (`input`)."""
    anchors = "\n".join(["storage:", "  options:", "    x:", *_laughs(levels, width, "      ")])
    return f"{anchors}\ninput: *a{levels}\n"


def self_alias() -> str:
    """A list that contains itself."""
    return "input: &loop [*loop]\n"


def deep_nesting(depth: int = 100_000) -> str:
    return "input: " + "[" * depth + "]" * depth + "\n"
