"""Re-fetching truncated PDFs from their origin sites, politely and safely, into new WARC files.

Common Crawl cuts payloads at 1 MiB (``WARC-Truncated: length``), which ruins most PDFs. This module fetches each
such URL again and writes what comes back as WARC ``request``/``response`` pairs whose response carries
``WARC-Refers-To: <id of the truncated record>``, so the PDF pipeline reads them like any other WARC and knows
which record each one replaces. It is plain Python (standard library and warcio); the Spark job calls it once
per partition. Politeness is enforced per process, so partition by `host_key` (one task owns each host).

Design:

- **No request to a non-public address.** URLs found on the web are untrusted: fetched from inside a data centre
  they could reach cloud metadata (169.254.169.254) or internal services (server-side request forgery). Every
  hop (the URL, each redirect, robots.txt) is resolved here, with `socket.getaddrinfo` or the `hosts` override,
  every address is checked (`address_allowed`), and the socket connects to that exact vetted address. No HTTP
  library ever resolves a name, so DNS cannot answer differently between check and use (DNS rebinding); the
  Host header and the TLS server name/certificate check use the original name. Proxy variables are ignored
  (a proxy would resolve names itself). A refused address never sees a connection attempt.
- **Politeness.** One request at a time per host and at least `per_host_delay` between the end of one request
  and the start of the next (raised by a robots.txt Crawl-delay, and by Retry-After); a descriptive User-Agent;
  robots.txt honoured with urllib.robotparser and RFC 9309's rules when it cannot be read. Different hosts
  proceed in parallel on a small thread pool: each worker takes all URLs of one host, in order.
- **Everything bounded.** Connect, idle-read and per-request wall-clock limits are enforced on every socket
  read, so a server dripping one byte a second cannot hold a worker; the body size is capped (after undoing any
  content encoding, so a compression bomb cannot grow past the cap); redirects and retries are capped, and so
  are the waits between retries. Nothing raises: every URL ends with one of `OUTCOMES` and a short detail.
- **Our own connections.** Sockets, TLS and the request bytes are ours; only http.client's response parser is
  used. That is what makes the connect-to-the-vetted-address rule possible, and it lets the WARC request record
  hold exactly the request that was sent.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import io
import ipaddress
import os
import queue
import socket
import ssl
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO
from urllib.parse import quote, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from corpus import __version__
from corpus.storage import filesystem

OK = "ok"
ROBOTS = "robots"
TOO_LARGE = "too_large"
NOT_PDF = "not_pdf"
HTTP_4XX = "http_4xx"
HTTP_5XX = "http_5xx"
TIMEOUT = "timeout"
BLOCKED_ADDRESS = "blocked_address"
ERROR = "error"
#: Every result has exactly one of these outcomes; `RefetchReport.counts` has a count for each.
OUTCOMES = (OK, ROBOTS, TOO_LARGE, NOT_PDF, HTTP_4XX, HTTP_5XX, TIMEOUT, BLOCKED_ADDRESS, ERROR)

#: Content types that announce a PDF; generic types are accepted when the body starts like a PDF.
PDF_TYPES = frozenset(
    {"application/pdf", "application/x-pdf", "application/acrobat", "applications/vnd.pdf", "text/pdf"}
)
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
PDF_MAGIC = b"%PDF-"
# Acrobat (and the PDF parsers downstream) accept the header anywhere in the first 1024 bytes; servers that
# prepend a stray newline or BOM to a real PDF are common enough that "starts with" would lose real files.
_MAGIC_WINDOW = 1024

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are an IPv4 address


@dataclass
class RefetchSettings:
    """How to fetch. The defaults suit a polite crawl of the open web; tests shrink the times."""

    #: Sent with every request, robots.txt included. robots.txt groups match its product token (the part before
    #: "/", here ``corpus-refetch``). Give a real contact URL or address.
    user_agent: str = "corpus-refetch/0.1 (+https://example.org/contact)"
    #: Seconds from the end of one request to a host to the start of the next.
    per_host_delay: float = 1.0
    #: A robots.txt Crawl-delay raises the per-host delay, up to this many seconds.
    max_crawl_delay: float = 30.0
    connect_timeout: float = 10.0  # TCP connect and TLS handshake (and the DNS lookup)
    read_timeout: float = 30.0  # longest silence while waiting for bytes
    #: Wall-clock limit of one request: connect, response head and body. Waits between retries are extra.
    total_timeout: float = 120.0
    max_bytes: int = 256 * 1024 * 1024  # payload cap, after undoing any content encoding: larger is too_large
    max_redirects: int = 5
    retries: int = 3  # further attempts after a timeout or a 429/502/503/504
    backoff: float = 2.0  # wait before the first retry, doubled for each further one, unless Retry-After says
    max_retry_after: float = 60.0  # cap on any wait between retries, Retry-After included
    workers: int = 8  # hosts fetched concurrently (each host is fetched by one worker at a time)
    #: CIDR networks exempt from the public-address rule, e.g. ["127.0.0.1/32"] in tests. Empty in production.
    allowed_networks: list[str] = field(default_factory=list)
    #: Like /etc/hosts, or curl's --connect-to: "host" or "host:port" -> "IP" or "IP:port" ("[v6]:port"). The
    #: mapped address still goes through the address check.
    hosts: dict[str, str] = field(default_factory=dict)
    verify_tls: bool = True
    ca_file: str | None = None  # PEM trust anchors to use instead of the system store (tests bring their own CA)

    def __post_init__(self) -> None:
        if not self.user_agent.isascii() or not self.user_agent.isprintable():
            raise ValueError("user_agent must be a single line of printable ASCII")  # it goes into a header
        for name in ("per_host_delay", "max_crawl_delay", "backoff", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("connect_timeout", "read_timeout", "total_timeout", "max_bytes", "workers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_redirects < 0 or self.retries < 0:
            raise ValueError("max_redirects and retries must not be negative")
        _parse_networks(self.allowed_networks)  # fail here, on the driver, rather than in every task
        _parse_hosts(self.hosts)


@dataclass(frozen=True)
class RefetchItem:
    """A URL to fetch again, the WARC-Record-ID of the record it replaces, and why (for the report)."""

    url: str
    record_id: str
    reason: str = "truncated"


@dataclass(frozen=True)
class Exchange:
    """One HTTP request as sent and the head of its response as received."""

    url: str
    ip: str
    date: datetime  # when the request was sent (UTC)
    request_line: str
    request_headers: list[tuple[str, str]]
    protocol: str  # "HTTP/1.1"
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)


@dataclass
class RefetchResult:
    item: RefetchItem
    outcome: str
    detail: str = ""
    #: Every URL requested for the item in order: the item's URL (normalised), then each redirect target.
    urls: list[str] = field(default_factory=list)
    requests: int = 0  # HTTP requests made for the item, retries included, robots.txt excluded
    exchange: Exchange | None = None  # the last response received, if any (for ok: the one holding the PDF)
    body: bytes | None = None  # the payload, for ok only (refetch_to_warc drops it once written)
    size: int | None = None
    sha256: str | None = None

    @property
    def final_url(self) -> str | None:
        return self.urls[-1] if self.urls else None

    @property
    def http_status(self) -> int | None:
        return self.exchange.status if self.exchange else None

    def to_dict(self) -> dict[str, Any]:
        """A flat row for reports."""
        return {
            "url": self.item.url,
            "record_id": self.item.record_id,
            "reason": self.item.reason,
            "outcome": self.outcome,
            "detail": self.detail,
            "final_url": self.final_url,
            "http_status": self.http_status,
            "requests": self.requests,
            "bytes": self.size,
            "sha256": self.sha256,
        }


@dataclass
class RefetchReport:
    results: list[RefetchResult]  # in input order
    records_written: int = 0  # request/response pairs written by refetch_to_warc

    @property
    def counts(self) -> dict[str, int]:
        return count_outcomes(self.results)


def count_outcomes(results: Iterable[RefetchResult]) -> dict[str, int]:
    """Results per outcome, with every outcome present (zeros included)."""
    counts = Counter(result.outcome for result in results)
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


class _Stop(Exception):
    """Ends the fetch of one URL with an outcome."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(f"{outcome}: {detail}")
        self.outcome = outcome
        self.detail = detail


# --- addresses -------------------------------------------------------------------------------------------------


def _canonical(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address it maps: judge and connect to that."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_address(ip: IPAddress) -> bool:
    """Whether `ip` is a public internet address: not loopback, private, shared (CGNAT), link-local (which holds
    cloud metadata, 169.254.169.254), multicast, reserved, unspecified or documentation space, in IPv4 or IPv6,
    and not an IPv6 form of such an IPv4 address (mapped, 6to4, NAT64)."""
    ip = _canonical(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:  # reserved space in ipaddress's view, but on a DNS64 network it is how IPv4 is reached
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
    special = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
    return ip.is_global and not special and not ip.is_unspecified


def address_allowed(ip: IPAddress, allowed_networks: Iterable[IPNetwork] = ()) -> bool:
    """A public address, or one inside a network the settings explicitly allow."""
    ip = _canonical(ip)
    return any(ip.version == net.version and ip in net for net in allowed_networks) or is_public_address(ip)


def _parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(str(net).strip(), strict=False) for net in networks)
    except ValueError as exc:
        raise ValueError(f"allowed_networks: {exc}") from None


def _parse_ip_port(value: str) -> tuple[IPAddress, int | None]:
    """An address with an optional port: 1.2.3.4, 1.2.3.4:80, ::1, [::1] or [::1]:80."""
    value = value.strip()
    host, port = value, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
        port = int(port_text)
    return ipaddress.ip_address(host), port


def _parse_hosts(hosts: dict[str, str]) -> dict[str, tuple[IPAddress, int | None]]:
    parsed = {}
    for name, value in hosts.items():
        try:
            parsed[name.strip().lower()] = _parse_ip_port(value)
        except ValueError:
            raise ValueError(f"hosts[{name!r}]: {value!r} is not an IP address with an optional port") from None
    return parsed


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _getaddrinfo(host: str, port: int, timeout: float) -> list[IPAddress]:
    """DNS lookup bounded by `timeout`: getaddrinfo itself cannot be interrupted, so it runs in a daemon thread
    that is abandoned when it takes too long."""
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    thread = threading.Thread(target=lookup, name=f"refetch-dns-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise _Stop(TIMEOUT, f"DNS lookup of {host} timed out")
    if "error" in box:
        raise _Stop(ERROR, f"DNS lookup of {host} failed: {box['error']}")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in box["infos"]:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


# --- URLs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """A URL taken apart for a request: the parts we connect to, and what goes on the wire."""

    scheme: str
    host: str  # lowercase ASCII (IDNA); IPv6 without brackets
    port: int
    authority: str  # the Host header: host, and the port unless it is the scheme's default
    path: str  # the request target: path and query, percent-encoded

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"

    @property
    def robots_url(self) -> str:
        return f"{self.scheme}://{self.authority}/robots.txt"


def _parse_target(url: str) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _Stop(ERROR, f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _Stop(ERROR, f"unsupported scheme in {url[:200]!r}")
    host = parts.hostname or ""
    if not host:
        raise _Stop(ERROR, f"no host in {url[:200]!r}")
    if _ip_literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _Stop(ERROR, f"invalid host name {host!r}") from None
    port = port or _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # Spaces and non-ASCII must be escaped on the wire; existing %XX escapes and reserved characters stay.
    path = quote(path, safe="!#$%&'()*+,/:;=?@[]~")
    return _Target(scheme, host, port, authority, path)


def host_key(url: str) -> str:
    """The host politeness applies to (lowercase host name, any scheme or port): partition work by this."""
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


# --- politeness ------------------------------------------------------------------------------------------------


@dataclass
class _HostTurn:
    delay: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_at: float = 0.0  # time.monotonic() before which the host must not get another request

    def pause(self, seconds: float) -> None:
        """No request to this host for `seconds` from now (a Retry-After or a backoff)."""
        self.next_at = max(self.next_at, time.monotonic() + seconds)


class _HostGate:
    """Per-host turn-taking: one request at a time, then a pause, whichever worker asks (redirects and
    robots.txt may bring several workers to one host)."""

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._mutex = threading.Lock()
        self._hosts: dict[str, _HostTurn] = {}

    def _turn(self, host: str) -> _HostTurn:
        with self._mutex:
            return self._hosts.setdefault(host, _HostTurn(self._delay))

    @contextmanager
    def turn(self, host: str) -> Iterator[_HostTurn]:
        state = self._turn(host)
        with state.lock:
            wait = state.next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                yield state
            finally:
                state.next_at = max(state.next_at, time.monotonic() + state.delay)

    def slow_down(self, host: str, delay: float) -> None:
        state = self._turn(host)
        state.delay = max(state.delay, delay)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass
class _RobotsRules:
    parser: RobotFileParser | None  # None: one rule for the whole site, given by `allow_all`
    allow_all: bool = False
    note: str = ""

    def denial(self, url: str, user_agent: str) -> str | None:
        if self.parser is not None:
            return None if self.parser.can_fetch(user_agent, url) else "disallowed by robots.txt"
        return None if self.allow_all else self.note


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


def _check_pdf_start(body: bytearray, mime: str | None) -> None:
    if PDF_MAGIC not in body[:_MAGIC_WINDOW]:
        start = bytes(body[:16])
        raise _Stop(NOT_PDF, f"body is not a PDF (starts {start!r}, content-type {mime or 'none'})")


def _read_pdf(response: http.client.HTTPResponse, settings: RefetchSettings) -> bytes | None:
    """The body of a 200 response, if it is a PDF of at most `max_bytes`; other statuses are not read."""
    if response.status != 200:
        return None
    mime = _mime(response.getheader("Content-Type"))
    if mime is not None and mime not in PDF_TYPES and mime not in GENERIC_TYPES:
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
        if not sniffed and len(body) >= _MAGIC_WINDOW:  # an HTML page is not downloaded to its end
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
        self.networks = _parse_networks(settings.allowed_networks)
        self.hosts = _parse_hosts(settings.hosts)
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


# --- WARC output -----------------------------------------------------------------------------------------------


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


def truncated_pdf_items(path: str) -> Iterator[RefetchItem]:
    """The PDF responses of a WARC file that were truncated, as items to refetch (reason: ``truncated:<why>``,
    the WARC-Truncated value)."""
    from corpus.warc import WarcRecord, iter_records

    for record in iter_records(path):
        if not isinstance(record, WarcRecord) or record.rec_type != "response" or not record.truncated:
            continue
        if record.url and (record.payload_type in PDF_TYPES or _mime(record.http_content_type) in PDF_TYPES):
            yield RefetchItem(record.url, record.record_id, f"truncated:{record.truncated}")
