"""WARC output: the request/response records of ok results (`RefetchWarcWriter`, `write_warc`,
`refetch_to_warc`), and the input side, `truncated_pdf_items` (what to refetch from a WARC file)."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpus import __version__
from corpus.config import RefetchSettings
from corpus.io.storage import filesystem
from corpus.pdf import PDF_MIME_TYPES
from corpus.refetch.fetch import _mime, _run
from corpus.refetch.results import OK, RefetchItem, RefetchReport, RefetchResult


def _warc_date(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_id(*parts: str) -> str:
    """Deterministic: the same fetch (same original, URL and time) gets the same id in every rewrite."""
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, chr(10).join(parts))}>"


def _stored_headers(headers: list[tuple[str, str]], body_length: int) -> list[tuple[str, str]]:
    """The response headers for the WARC. The payload is stored de-chunked and decoded, so, as Common Crawl
    does, Transfer-Encoding / Content-Encoding / Content-Length become X-Crawler-* and a true Content-Length is
    added; readers (warcio) would otherwise try to undo them a second time."""
    names = {name.lower() for name, _ in headers}
    encoding = next((v for n, v in headers if n.lower() == "content-encoding"), "identity").strip().lower()
    if "transfer-encoding" not in names and encoding in ("", "identity"):
        return list(headers)
    renamed = {"transfer-encoding", "content-encoding", "content-length"}
    stored = [(f"X-Crawler-{name}" if name.lower() in renamed else name, value) for name, value in headers]
    return [*stored, ("Content-Length", str(body_length))]


class RefetchWarcWriter:
    """A WARC file of refetched responses (one gzip member per record): a warcinfo record, then for each ok
    result a ``request`` record (the request as sent) and a ``response`` record.

    The response's ``WARC-Target-URI`` is the URL that answered (after redirects), because a WARC record describes
    the exchange with its target: the status, headers and payload are that URL's. The original URL goes in
    ``WARC-Refers-To-Target-URI`` (WARC 1.1's field for the target of the referred record) next to
    ``WARC-Refers-To``, so readers can join either way without a custom header."""

    def __init__(self, stream: BinaryIO, filename: str = "", user_agent: str | None = None) -> None:
        self._writer = WARCWriter(stream, gzip=True)
        info = {"software": f"corpus/{__version__} (corpus.refetch)", "format": "WARC File Format 1.0"}
        if user_agent:
            info["http-header-user-agent"] = user_agent
        warcinfo = self._writer.create_warcinfo_record(filename, info)
        self._warcinfo_id = warcinfo.rec_headers.get_header("WARC-Record-ID")
        self._writer.write_record(warcinfo)
        self.written = 0

    def write(self, result: RefetchResult) -> bool:
        """Write an ok result's request and response; other outcomes are skipped. Returns whether it wrote."""
        exchange = result.exchange
        if result.outcome != OK or exchange is None or result.body is None:
            return False
        date = _warc_date(exchange.date)
        request_id = _record_id("request", result.item.record_id, exchange.url, date)
        response_id = _record_id("response", result.item.record_id, exchange.url, date)
        common = {"WARC-Date": date, "WARC-IP-Address": exchange.ip, "WARC-Warcinfo-ID": self._warcinfo_id}
        request = self._writer.create_warc_record(
            exchange.url,
            "request",
            http_headers=StatusAndHeaders(exchange.request_line, exchange.request_headers, is_http_request=True),
            warc_headers_dict={"WARC-Type": "request", "WARC-Record-ID": request_id, **common},
        )
        response = self._writer.create_warc_record(
            exchange.url,
            "response",
            payload=io.BytesIO(result.body),
            length=len(result.body),
            http_headers=StatusAndHeaders(
                f"{exchange.status} {exchange.reason}".strip(),
                _stored_headers(exchange.headers, len(result.body)),
                protocol=exchange.protocol,
            ),
            warc_headers_dict={
                "WARC-Type": "response",  # first, as in Common Crawl's files (warcio would append it)
                "WARC-Record-ID": response_id,
                **common,
                "WARC-Concurrent-To": request_id,
                "WARC-Refers-To": result.item.record_id,
                "WARC-Refers-To-Target-URI": result.item.url,
                "WARC-Identified-Payload-Type": "application/pdf",
            },
        )
        self._writer.write_record(request)
        self._writer.write_record(response)
        self.written += 1
        return True


def _name_of(out: str | os.PathLike[str] | BinaryIO) -> str:
    name = out if isinstance(out, (str, os.PathLike)) else getattr(out, "name", "")
    return os.path.basename(os.fspath(name)) if isinstance(name, (str, os.PathLike)) else ""


@contextmanager
def _open_output(out: str | os.PathLike[str] | BinaryIO) -> Iterator[BinaryIO]:
    if not isinstance(out, (str, os.PathLike)):
        yield out
        return
    fs, path = filesystem(os.fspath(out))  # local paths and fsspec URLs (s3://...), like the other outputs
    parent = os.path.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as stream:
        yield stream


def write_warc(results: Iterable[RefetchResult], out: str | os.PathLike[str] | BinaryIO) -> int:
    """Write the ok results (with their bodies) to a WARC file or stream; returns the request/response pairs
    written. Non-ok results are skipped: report them from the results themselves."""
    with _open_output(out) as stream:
        warc = RefetchWarcWriter(stream, _name_of(out))
        for result in results:
            warc.write(result)
    return warc.written


def refetch_to_warc(
    items: Iterable[RefetchItem], out: str | os.PathLike[str] | BinaryIO, settings: RefetchSettings | None = None
) -> RefetchReport:
    """Fetch every item and write the ok ones to the WARC `out` as they arrive; bodies are dropped once written,
    so memory holds only the PDFs in flight. The report has every result (non-ok ones for the caller's report)."""
    settings = settings or RefetchSettings()
    indexed = []
    with _open_output(out) as stream:
        warc = RefetchWarcWriter(stream, _name_of(out), user_agent=settings.user_agent)
        for index, result in _run(items, settings):
            warc.write(result)
            result.body = None
            indexed.append((index, result))
    indexed.sort(key=lambda pair: pair[0])
    return RefetchReport([result for _, result in indexed], warc.written)


def truncated_pdf_items(path: str) -> Iterator[RefetchItem]:
    """The PDF responses of a WARC file that were truncated, as items to refetch (reason: ``truncated:<why>``,
    the WARC-Truncated value)."""
    from corpus.io.warc import WarcRecord, iter_records

    for record in iter_records(path):
        if not isinstance(record, WarcRecord) or record.rec_type != "response" or not record.truncated:
            continue
        if record.url and (record.payload_type in PDF_MIME_TYPES or _mime(record.http_content_type) in PDF_MIME_TYPES):
            yield RefetchItem(record.url, record.record_id, f"truncated:{record.truncated}")
