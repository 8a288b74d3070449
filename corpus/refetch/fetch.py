"""Fetching: the robots.txt cache, one request (our own socket to a vetted address, a deadline on every read,
body readers with size caps and decoding, redirects and retries), and running many items on a thread pool."""

from __future__ import annotations

import hashlib
import http.client
import io
import queue
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin
from urllib.robotparser import RobotFileParser

from corpus.config import IPAddress, RefetchSettings, parse_hosts, parse_networks
from corpus.pdf import MAGIC_WINDOW, PDF_MAGIC, PDF_MIME_TYPES
from corpus.refetch.addresses import _canonical, _getaddrinfo, _ip_literal, address_allowed
from corpus.refetch.politeness import _HostGate, _parse_retry_after, _parse_target, _RobotsRules, _Target, host_key
from corpus.refetch.results import (
    BLOCKED_ADDRESS,
    ERROR,
    HTTP_4XX,
    HTTP_5XX,
    NOT_PDF,
    OK,
    ROBOTS,
    TIMEOUT,
    TOO_LARGE,
    Exchange,
    RefetchItem,
    RefetchReport,
    RefetchResult,
    _Stop,
)

#: Content types accepted besides the PDF ones (`corpus.pdf.PDF_MIME_TYPES`) when the body starts like a PDF.
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB
_CHUNK = 64 * 1024


# --- robots.txt ------------------------------------------------------------------------------------------------


@dataclass
class _RobotsSlot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rules: _RobotsRules | None = None


class _RobotsCache:
    """robots.txt per scheme, host and port (RFC 9309's unit), fetched once per run through the same safe path
    as everything else, and only by one worker even when several ask at once."""

    def __init__(self, fetcher: _Fetcher) -> None:
        self._fetcher = fetcher
        self._mutex = threading.Lock()
        self._slots: dict[tuple[str, str, int], _RobotsSlot] = {}

    def denial(self, target: _Target) -> str | None:
        with self._mutex:
            slot = self._slots.setdefault((target.scheme, target.host, target.port), _RobotsSlot())
        with slot.lock:
            if slot.rules is None:
                slot.rules = self._load(target)
        return slot.rules.denial(target.url, self._fetcher.settings.user_agent)

    def _load(self, target: _Target) -> _RobotsRules:
        try:
            exchange, body = self._fetcher.follow(target.robots_url, _read_robots, _Trace(), check_robots=False)
        except _Stop as stop:
            # RFC 9309 2.3.1.4: robots.txt unreachable (network error, timeout, refused address): assume complete
            # disallow. The URLs come back as `robots` with this note, to be retried in a later run.
            return _RobotsRules(None, note=f"robots.txt unreachable ({stop.outcome}: {stop.detail})")
        status = exchange.status
        if 200 <= status < 300:
            return self._parse(target, body or b"")
        if 400 <= status < 500 and status != 429:
            # RFC 9309 2.3.1.3: robots.txt "unavailable" (4xx, e.g. 404 or 403): crawling is allowed.
            return _RobotsRules(None, allow_all=True)
        # RFC 9309 2.3.1.4: 5xx is "unreachable": assume complete disallow. 429 too (as Google does): the server
        # asked us to slow down, so we do not crawl it blind. 3xx left after the redirect cap lands here as well.
        return _RobotsRules(None, note=f"robots.txt unreachable (HTTP {status}): complete disallow")

    def _parse(self, target: _Target, body: bytes) -> _RobotsRules:
        parser = RobotFileParser(target.robots_url)
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        settings = self._fetcher.settings
        crawl_delay = parser.crawl_delay(settings.user_agent)
        if crawl_delay:
            self._fetcher.gate.slow_down(target.host, min(float(crawl_delay), settings.max_crawl_delay))
        return _RobotsRules(parser)


# --- one request -----------------------------------------------------------------------------------------------


class _DeadlineStream(io.RawIOBase):
    """The connection as http.client sees it. Every send and receive gets the idle timeout, shortened to what is
    left of the request's deadline, so neither a silent server nor one dripping a byte at a time can outlast
    `total_timeout` (a timeout on the socket alone bounds each recv, not their sum)."""

    def __init__(self, sock: socket.socket, read_timeout: float, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._read_timeout = read_timeout
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_time_left(self._deadline, self._read_timeout))
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            raise self._timeout() from None

    def send(self, data: bytes) -> None:
        self._sock.settimeout(_time_left(self._deadline, self._read_timeout))
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise self._timeout() from None

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(self, _CHUNK)

    def _timeout(self) -> _Stop:
        if time.monotonic() >= self._deadline - 0.01:
            return _Stop(TIMEOUT, "total deadline exceeded")
        return _Stop(TIMEOUT, f"read timeout ({self._read_timeout:g} s without data)")


def _time_left(deadline: float, cap: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Stop(TIMEOUT, "total deadline exceeded")
    return min(cap, left)


class _Decoder:
    """Undoes a Content-Encoding the server applied although we asked for identity. Output is produced at most
    `room` bytes at a time, so a compression bomb stops at the size cap instead of filling memory."""

    def __init__(self, encoding: str | None) -> None:
        self.name = (encoding or "identity").strip().lower()
        if self.name in ("", "identity"):
            self._zlib = None
        elif self.name in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib framing, detected
        else:
            raise _Stop(ERROR, f"unsupported content-encoding {self.name!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        if self._zlib is None:
            return data
        try:
            return self._zlib.decompress(data, room)
        except zlib.error as exc:
            raise _Stop(ERROR, f"bad {self.name} body: {exc}") from None

    def finish(self) -> bytes:
        if self._zlib is None:
            return b""
        tail = self._zlib.flush()
        if not self._zlib.eof:
            raise _Stop(ERROR, f"{self.name} body ends early")
        return tail


Reader = Callable[[http.client.HTTPResponse, RefetchSettings], bytes | None]


def _mime(value: str | None) -> str | None:
    return (value or "").split(";", 1)[0].strip().lower() or None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    try:
        return int(response.getheader("Content-Length") or "")
    except ValueError:
        return None


# PDF_MAGIC may be anywhere in the first MAGIC_WINDOW (1024) bytes: Acrobat (and the PDF parsers downstream)
# accept the header there; servers that prepend a stray newline or BOM to a real PDF are common enough that
# "starts with" would lose real files.
def _check_pdf_start(body: bytearray, mime: str | None) -> None:
    if PDF_MAGIC not in body[:MAGIC_WINDOW]:
        start = bytes(body[:16])
        raise _Stop(NOT_PDF, f"body is not a PDF (starts {start!r}, content-type {mime or 'none'})")


def _read_pdf(response: http.client.HTTPResponse, settings: RefetchSettings) -> bytes | None:
    """The body of a 200 response, if it is a PDF of at most `max_bytes`; other statuses are not read."""
    if response.status != 200:
        return None
    mime = _mime(response.getheader("Content-Type"))
    if mime is not None and mime not in PDF_MIME_TYPES and mime not in GENERIC_TYPES:
        raise _Stop(NOT_PDF, f"content-type {mime}")
    declared = _content_length(response)
    if declared is not None and declared > settings.max_bytes and not response.chunked:
        raise _Stop(TOO_LARGE, f"Content-Length {declared} > {settings.max_bytes}")
    decoder = _Decoder(response.getheader("Content-Encoding"))
    body, received, sniffed = bytearray(), 0, False
    while chunk := response.read1(_CHUNK):  # read1: one recv at a time, so the deadline is checked often
        received += len(chunk)
        body += decoder.feed(chunk, settings.max_bytes - len(body) + 1)
        if len(body) > settings.max_bytes:
            raise _Stop(TOO_LARGE, f"body exceeds {settings.max_bytes} bytes")
        if not sniffed and len(body) >= MAGIC_WINDOW:  # an HTML page is not downloaded to its end
            _check_pdf_start(body, mime)
            sniffed = True
    body += decoder.finish()
    if len(body) > settings.max_bytes:
        raise _Stop(TOO_LARGE, f"body exceeds {settings.max_bytes} bytes")
    if declared is not None and not response.chunked and received < declared:
        # http.client's read1 ends quietly when the server closes early: this would be another truncated PDF.
        raise _Stop(ERROR, f"connection closed after {received} of {declared} bytes")
    _check_pdf_start(body, mime)
    return bytes(body)


def _read_robots(response: http.client.HTTPResponse, settings: RefetchSettings) -> bytes | None:
    """A 2xx robots.txt, cut at 512 KiB (a longer file is parsed as far as it goes, as RFC 9309 allows)."""
    if not 200 <= response.status < 300:
        return None
    body = bytearray()
    while len(body) < _ROBOTS_MAX_BYTES and (chunk := response.read1(_CHUNK)):
        body += chunk
    return bytes(body[:_ROBOTS_MAX_BYTES])


def _request_head(target: _Target, user_agent: str) -> tuple[str, list[tuple[str, str]]]:
    headers = [
        ("Host", target.authority),
        ("User-Agent", user_agent),
        ("Accept", "*/*"),
        ("Accept-Encoding", "identity"),  # the payload as the file is; servers that encode anyway are decoded
        ("Connection", "close"),  # one request per connection: requests to a host are seconds apart anyway
    ]
    return f"GET {target.path} HTTP/1.1", headers


def _encode_head(request_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [request_line, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _received_headers(response: http.client.HTTPResponse) -> list[tuple[str, str]]:
    # Folded (multi-line) header values are unfolded, so each header is one line in the WARC.
    return [(name, " ".join(value.split()) if "\n" in value else value) for name, value in response.getheaders()]


@dataclass
class _Trace:
    """What happened while fetching one URL, for its result."""

    urls: list[str] = field(default_factory=list)
    requests: int = 0
    last: Exchange | None = None


class _Fetcher:
    """Shared state of one run (settings, TLS context, per-host gate, robots cache) and the fetch steps."""

    def __init__(self, settings: RefetchSettings) -> None:
        self.settings = settings
        self.networks = parse_networks(settings.allowed_networks)
        self.hosts = parse_hosts(settings.hosts)
        self.gate = _HostGate(settings.per_host_delay)
        self.robots = _RobotsCache(self)
        self.tls = ssl.create_default_context(cafile=settings.ca_file)
        if not settings.verify_tls:
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE

    def fetch(self, item: RefetchItem) -> RefetchResult:
        """Fetch one item; never raises."""
        trace = _Trace()
        body = None
        try:
            exchange, body = self.follow(item.url, _read_pdf, trace, check_robots=True)
            outcome, detail = _classify(exchange.status)
        except _Stop as stop:
            outcome, detail = stop.outcome, stop.detail
        except Exception as exc:  # a bug or an exotic failure ends this URL, not the run
            outcome, detail = ERROR, f"{type(exc).__name__}: {exc}"[:300]
        result = RefetchResult(item, outcome, detail, trace.urls, trace.requests, trace.last)
        if outcome == OK and body is not None:
            result.body, result.size, result.sha256 = body, len(body), hashlib.sha256(body).hexdigest()
        return result

    def follow(self, url: str, reader: Reader, trace: _Trace, check_robots: bool) -> tuple[Exchange, bytes | None]:
        """Request `url`, following redirects; each hop is parsed, resolved, vetted and (for content, not for
        robots.txt itself) checked against robots.txt before anything is sent."""
        target = _parse_target(url)
        for _hop in range(self.settings.max_redirects + 1):
            trace.urls.append(target.url)
            endpoints = self._vetted_endpoints(target)
            if check_robots and (denial := self.robots.denial(target)):
                raise _Stop(ROBOTS, denial)
            exchange, body = self._request(target, endpoints, reader, trace)
            location = exchange.header("Location") if exchange.status in _REDIRECT_STATUSES else None
            if not location:
                return exchange, body
            target = _parse_target(urljoin(target.url, location.strip()))
        raise _Stop(ERROR, f"too many redirects (more than {self.settings.max_redirects})")

    def _resolve(self, target: _Target) -> list[tuple[IPAddress, int]]:
        override = self.hosts.get(f"{target.host}:{target.port}") or self.hosts.get(target.host)
        if override is not None:
            return [(override[0], override[1] or target.port)]
        literal = _ip_literal(target.host)
        if literal is not None:
            return [(literal, target.port)]
        found = _getaddrinfo(target.host, target.port, self.settings.connect_timeout)
        return [(ip, target.port) for ip in found]

    def _vetted_endpoints(self, target: _Target) -> list[tuple[IPAddress, int]]:
        endpoints = self._resolve(target)
        refused = [str(ip) for ip, _ in endpoints if not address_allowed(ip, self.networks)]
        if refused:
            # All or nothing: a name with any internal address is treated as internal.
            raise _Stop(BLOCKED_ADDRESS, f"{target.host} resolves to non-public address {', '.join(refused)}")
        if not endpoints:
            raise _Stop(ERROR, f"no address for {target.host}")
        return endpoints

    def _request(
        self, target: _Target, endpoints: list[tuple[IPAddress, int]], reader: Reader, trace: _Trace
    ) -> tuple[Exchange, bytes | None]:
        """One request with its retries, each attempt in its turn at the host's gate."""
        attempt = 0
        while True:
            last_try = attempt >= self.settings.retries
            with self.gate.turn(target.host) as turn:
                trace.requests += 1
                try:
                    exchange, body = self._exchange(target, endpoints, reader)
                except _Stop as stop:
                    if stop.outcome != TIMEOUT or last_try:
                        raise
                    turn.pause(self._retry_wait(attempt, None))
                else:
                    trace.last = exchange
                    if exchange.status not in _RETRY_STATUSES or last_try:
                        return exchange, body
                    turn.pause(self._retry_wait(attempt, exchange.header("Retry-After")))
            attempt += 1

    def _retry_wait(self, attempt: int, retry_after: str | None) -> float:
        wait = _parse_retry_after(retry_after)
        if wait is None:
            wait = self.settings.backoff * 2**attempt
        return min(wait, self.settings.max_retry_after)

    def _exchange(
        self, target: _Target, endpoints: list[tuple[IPAddress, int]], reader: Reader
    ) -> tuple[Exchange, bytes | None]:
        deadline = time.monotonic() + self.settings.total_timeout
        sock, ip = self._connect(target, endpoints, deadline)
        try:
            request_line, request_headers = _request_head(target, self.settings.user_agent)
            sent_at = datetime.now(timezone.utc)
            stream = _DeadlineStream(sock, self.settings.read_timeout, deadline)
            stream.send(_encode_head(request_line, request_headers))
            response = http.client.HTTPResponse(stream)  # type: ignore[arg-type]  # reads via stream.makefile()
            response.begin()
            exchange = Exchange(
                url=target.url,
                ip=ip,
                date=sent_at,
                request_line=request_line,
                request_headers=request_headers,
                protocol="HTTP/1.0" if response.version == 10 else "HTTP/1.1",
                status=response.status,
                reason=response.reason,
                headers=_received_headers(response),
            )
            return exchange, reader(response, self.settings)
        except http.client.HTTPException as exc:
            raise _Stop(ERROR, f"bad HTTP response: {type(exc).__name__}: {exc}"[:300]) from None
        except OSError as exc:
            raise _Stop(ERROR, f"connection error: {exc}"[:300]) from None
        finally:
            sock.close()

    def _connect(
        self, target: _Target, endpoints: list[tuple[IPAddress, int]], deadline: float
    ) -> tuple[socket.socket, str]:
        """A connected (for https: TLS-verified) socket to the first vetted endpoint that answers."""
        problems = []
        for ip, port in endpoints:
            ip = _canonical(ip)
            if not address_allowed(ip, self.networks):  # belt and braces: the hop was vetted already
                raise _Stop(BLOCKED_ADDRESS, f"refusing to connect to {ip}")
            timeout = _time_left(deadline, self.settings.connect_timeout)
            sock = socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect((str(ip), port))
                if target.scheme == "https":
                    sock = self.tls.wrap_socket(sock, server_hostname=target.host)  # SNI and certificate name
                return sock, str(ip)
            except TimeoutError:
                sock.close()
                problems.append(f"{ip}: connect timeout")
            except OSError as exc:
                sock.close()
                problems.append(f"{ip}: {exc}")
        outcome = TIMEOUT if all(p.endswith("connect timeout") for p in problems) else ERROR
        raise _Stop(outcome, "; ".join(problems)[:300])


def _classify(status: int) -> tuple[str, str]:
    if status == 200:
        return OK, ""
    if 400 <= status < 500:
        return HTTP_4XX, f"HTTP {status}"
    if 500 <= status < 600:
        return HTTP_5XX, f"HTTP {status}"
    return ERROR, f"unexpected HTTP status {status}"


# --- running many --------------------------------------------------------------------------------------------


def _by_host(items: Iterable[RefetchItem]) -> list[list[tuple[int, RefetchItem]]]:
    groups: dict[str, list[tuple[int, RefetchItem]]] = {}
    for index, item in enumerate(items):
        groups.setdefault(host_key(item.url), []).append((index, item))
    return list(groups.values())


def _run(items: Iterable[RefetchItem], settings: RefetchSettings) -> Iterator[tuple[int, RefetchResult]]:
    """(input index, result) in completion order. One worker per host at a time, up to `settings.workers`."""
    groups = _by_host(items)
    total = sum(len(group) for group in groups)
    if not total:
        return
    fetcher = _Fetcher(settings)
    done: queue.Queue[tuple[int, RefetchResult]] = queue.Queue()
    stop = threading.Event()

    def work(group: list[tuple[int, RefetchItem]]) -> None:
        for index, item in group:
            if stop.is_set():  # the consumer went away: finish the current URL only
                return
            done.put((index, fetcher.fetch(item)))

    with ThreadPoolExecutor(max_workers=min(settings.workers, len(groups)), thread_name_prefix="refetch") as pool:
        for group in groups:
            pool.submit(work, group)
        try:
            for _ in range(total):
                yield done.get()
        finally:
            stop.set()


def iter_refetch(items: Iterable[RefetchItem], settings: RefetchSettings | None = None) -> Iterator[RefetchResult]:
    """Fetch every item; results come as they finish (at most a few bodies are held at once if the consumer
    keeps up)."""
    for _, result in _run(items, settings or RefetchSettings()):
        yield result


def refetch(items: Iterable[RefetchItem], settings: RefetchSettings | None = None) -> RefetchReport:
    """Fetch every item, keeping all results (bodies included) in input order."""
    indexed = sorted(_run(items, settings or RefetchSettings()), key=lambda pair: pair[0])
    return RefetchReport([result for _, result in indexed])
