"""Re-fetching truncated PDFs: against local origin servers on 127.0.0.1 that play well-behaved and hostile sites.

One threaded HTTP server (and an HTTPS one, with a CA made by the `openssl` command) routes by Host header: names
like ``a.test`` reach it through the fetcher's `hosts` override, and only 127.0.0.1/32 is allowed, so everything
else on loopback (127.0.0.2, ::1) counts as a refused internal address. Timeouts and delays are scaled down.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from warcio.archiveiterator import ArchiveIterator

from corpus.config import parse_networks
from corpus.io.warc import WarcRecord, iter_records
from corpus.refetch import RefetchSettings, address_allowed, is_public_address, refetch, refetch_to_warc, write_warc
from corpus.refetch.politeness import _parse_retry_after, _parse_target, normalise_host
from corpus.refetch.results import (
    BLOCKED_ADDRESS,
    ERROR,
    HTTP_4XX,
    HTTP_5XX,
    NOT_PDF,
    OK,
    OUTCOMES,
    ROBOTS,
    TIMEOUT,
    TOO_LARGE,
    RefetchItem,
    RefetchResult,
    _Stop,
)
from corpus.refetch.warc import truncated_pdf_items
from tests.conftest import shared_path

LOOPBACK_ONLY = ["127.0.0.1/32"]


def tiny_pdf(text: str = "hello") -> bytes:
    """A minimal valid one-page PDF (correct xref offsets), written by hand: no PDF library needed."""
    content = f"BT /F1 12 Tf 10 50 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# --- the origin server -----------------------------------------------------------------------------------------


@dataclass
class Hit:
    host: str
    path: str
    start: float  # time.monotonic(), same clock as the tests
    end: float = 0.0


@dataclass
class Origin:
    """Shared state of the origin servers: what they serve and every request they saw."""

    sites: dict[str, Path] = field(default_factory=dict)  # host -> folder served as-is
    robots: dict[str, tuple[int, bytes, list[tuple[str, str]]]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    sni: list[str | None] = field(default_factory=list)
    port: int = 0
    tls_port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits_for(self, host: str, path: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.host == host and (path is None or h.path.startswith(path))]

    def count(self, key: str) -> int:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            return self.counters[key]


class Handler(BaseHTTPRequestHandler):
    """Routes by path; files of `Origin.sites` by Host header. Each `_route_*` plays one kind of site."""

    origin: Origin  # set on the per-server subclass
    protocol_version = "HTTP/1.0"  # close after each response: bodies may end at connection close

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").lower().rsplit(":", 1)[0]  # the tests use names, not IPv6 literals
        hit = Hit(host, self.path, time.monotonic())
        with self.origin.lock:
            self.origin.hits.append(hit)
        url = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = url.path.strip("/").split("/")[0].replace("-", "_").replace(".", "_")
        try:
            getattr(self, f"_route_{route}", self._route_site_file)(host, url.path)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the fetcher hung up, as it should on oversized or slow responses
        finally:
            hit.end = time.monotonic()

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] = (), length: bool = True) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _pdf(self, body: bytes | None = None, content_type: str | None = "application/pdf") -> None:
        self._send(200, body or tiny_pdf(self.path), [("Content-Type", content_type)] if content_type else [])

    def _route_robots_txt(self, host: str, path: str) -> None:
        status, body, headers = self.origin.robots.get(host, (404, b"not found", []))
        self._send(status, body, headers)

    def _route_site_file(self, host: str, path: str) -> None:
        root = self.origin.sites.get(host)
        file = (root / path.lstrip("/")).resolve() if root else None
        if not file or not file.is_file() or root.resolve() not in file.parents:
            self._send(404, b"not found", [("Content-Type", "text/plain")])
            return
        self._pdf(file.read_bytes())

    def _route_pdf(self, host: str, path: str) -> None:
        self._pdf()

    def _route_slow_pdf(self, host: str, path: str) -> None:
        time.sleep(0.4)
        self._pdf()

    def _route_octet(self, host: str, path: str) -> None:
        self._pdf(content_type="application/octet-stream")

    def _route_untyped(self, host: str, path: str) -> None:
        self._pdf(content_type=None)

    def _route_leading_newline(self, host: str, path: str) -> None:
        self._pdf(b"\r\n" + tiny_pdf())

    def _route_html(self, host: str, path: str) -> None:
        self._send(200, b"<!doctype html><title>x</title>" * 100, [("Content-Type", "text/html; charset=utf-8")])

    def _route_fake_pdf(self, host: str, path: str) -> None:
        self._send(200, b"<!doctype html><title>not a pdf</title>", [("Content-Type", "application/pdf")])

    def _route_octet_html(self, host: str, path: str) -> None:
        self._send(200, b"<!doctype html>" + b" " * 5000, [("Content-Type", "application/octet-stream")])

    def _route_gzip(self, host: str, path: str) -> None:
        headers = [("Content-Type", "application/pdf"), ("Content-Encoding", "gzip")]
        self._send(200, gzip.compress(tiny_pdf(path)), headers)

    def _route_chunked(self, host: str, path: str) -> None:
        self.protocol_version = "HTTP/1.1"
        body = tiny_pdf(path)
        self.send_response(200)
        for name, value in [("Content-Type", "application/pdf"), ("Transfer-Encoding", "chunked")]:
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        for start in range(0, len(body), 100):
            piece = body[start : start + 100]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _route_drip(self, host: str, path: str) -> None:
        """Promises 10 kB and sends a byte every 50 ms: never idle long enough for a read timeout."""
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", "10000")
        self.end_headers()
        for byte in tiny_pdf() * 10:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.05)

    def _route_stall(self, host: str, path: str) -> None:
        """Sends the head and a little body, then goes silent."""
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.end_headers()
        self.wfile.write(b"%PDF-1.4\n")
        self.wfile.flush()
        time.sleep(2)

    def _route_endless(self, host: str, path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.end_headers()
        self.wfile.write(b"%PDF-1.4\n")
        for _ in range(100_000):  # 6 GB at most; the fetcher hangs up long before
            self.wfile.write(b"0" * 65536)

    def _route_huge(self, host: str, path: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.wfile.write(b"%PDF-1.4\n")

    def _route_short(self, host: str, path: str) -> None:
        """Promises more than it sends, then closes: must not pass for a complete PDF."""
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", "50000")
        self.end_headers()
        self.wfile.write(tiny_pdf())

    def _route_redirect(self, host: str, path: str) -> None:
        self._send(302, b"", [("Location", self.query["to"])])

    def _route_chain(self, host: str, path: str) -> None:
        left = int(path.rsplit("/", 1)[1])
        if left == 0:
            self._pdf()
        else:
            self._send(301, b"", [("Location", f"/chain/{left - 1}")])

    def _route_status(self, host: str, path: str) -> None:
        headers = [("Retry-After", self.query["retry_after"])] if "retry_after" in self.query else []
        self._send(int(path.rsplit("/", 1)[1]), b"status page", [("Content-Type", "text/html"), *headers])

    def _route_flaky(self, host: str, path: str) -> None:
        """The first `fail` requests get `status` (with Retry-After if given), then the PDF."""
        if self.origin.count(f"{host}{path}") <= int(self.query.get("fail", "1")):
            self._route_status(host, f"/status/{self.query.get('status', '503')}")
        else:
            self._pdf()


@dataclass
class Servers:
    origin: Origin
    ca_file: str | None

    def settings(
        self,
        *hosts: str,
        tls_hosts: tuple[str, ...] = (),
        extra_hosts: dict[str, str] | None = None,
        **overrides: object,
    ) -> RefetchSettings:
        """Test settings: names in `hosts` reach the HTTP server, `tls_hosts` the HTTPS one (on port 443 in their
        URLs), `extra_hosts` go where they say; short timeouts."""
        mapping = {host: f"127.0.0.1:{self.origin.port}" for host in hosts}
        mapping.update({f"{host}:443": f"127.0.0.1:{self.origin.tls_port}" for host in tls_hosts})
        mapping.update(extra_hosts or {})
        values: dict[str, object] = dict(
            per_host_delay=0.0,
            connect_timeout=1.0,
            read_timeout=1.0,
            total_timeout=3.0,
            max_bytes=1 << 20,
            retries=1,
            backoff=0.05,
            max_retry_after=2.0,
            allowed_networks=LOOPBACK_ONLY,
            hosts=mapping,
            ca_file=self.ca_file,
        )
        values.update(overrides)
        return RefetchSettings(**values)  # type: ignore[arg-type]


def _make_ca(folder: Path) -> tuple[Path, Path, Path] | None:
    """A test CA and a certificate for the test host names, made with the openssl command (None if absent)."""
    if not shutil.which("openssl"):
        return None
    config = folder / "openssl.cnf"
    config.write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = corpus refetch test CA\n"
        "[ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign\n"
        "subjectKeyIdentifier = hash\n"
        "[leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:pdfs.dev.example.org, DNS:secure.test\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca, ca_key, leaf, leaf_key, csr = (folder / n for n in ("ca.pem", "ca.key", "leaf.pem", "leaf.key", "leaf.csr"))
    sign = ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "1", "-out", leaf, "-days", "2"]
    commands = [
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-config", config, "-extensions", "ca"],
        ["req", "-new", *ec, "-keyout", leaf_key, "-out", csr, "-subj", "/CN=pdfs.dev.example.org"],
        [*sign, "-extfile", config, "-extensions", "leaf"],
    ]
    for command in commands:
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca, leaf, leaf_key


def _serve(origin: Origin, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    handler = type("OriginHandler", (Handler,), {"origin": origin})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    origin = Origin()
    http_server = _serve(origin)
    origin.port = http_server.server_address[1]
    started = [http_server]
    pki = _make_ca(tmp_path_factory.mktemp("pki"))
    if pki is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki[1], pki[2])
        context.sni_callback = lambda _sock, name, _ctx: origin.sni.append(name)
        tls_server = _serve(origin, context)
        origin.tls_port = tls_server.server_address[1]
        started.append(tls_server)
    yield Servers(origin, str(pki[0]) if pki else None)
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_servers(servers: Servers) -> Servers:
    if servers.ca_file is None:
        pytest.skip("the openssl command is needed to make the test CA")
    return servers


def fetch(settings: RefetchSettings, *urls: str) -> list[RefetchResult]:
    items = [RefetchItem(url, f"<urn:uuid:test-{i}>") for i, url in enumerate(urls)]
    return refetch(items, settings).results


def outcomes(results: list[RefetchResult]) -> list[str]:
    return [r.outcome for r in results]


# --- address rules (no network) --------------------------------------------------------------------------------

REFUSED = [
    "127.0.0.1", "127.0.0.2", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1",
    "fd00:ec2::254", "ff02::1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:127.0.0.1",
    "2002:a00:1::1", "2002:a9fe:a9fe::1", "64:ff9b::a00:1", "fec0::1", "feff:ffff::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address):
    assert not is_public_address(ip_address(address))
    assert not address_allowed(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert is_public_address(ip_address(address))


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("%31%30.0.0.1", "10.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"), ("0x", "0.0.0.0"), ("ExAmple.com", "example.com"), ("bücher.de", "xn--bcher-kva.de"),
        ("fec0::1", "fec0::1"), ("999.1.1.1", ""), ("1.2.3.4.5", ""), ("08.1.1.1", ""), ("a%2fb", ""), ("%zz", ""),
        ("b%FCcher.de", ""),
    ],
)  # fmt: skip
def test_hosts_are_normalised_before_the_address_check(host, normal):
    assert normalise_host(host) == normal


def test_a_percent_encoded_host_never_reaches_the_resolver(monkeypatch):
    from corpus.refetch import fetch as fetch_module

    asked: list[str] = []
    monkeypatch.setattr(fetch_module, "_getaddrinfo", lambda host, *a: asked.append(host) or [ip_address("8.8.8.8")])
    settings = RefetchSettings(retries=0, per_host_delay=0)
    [result] = fetch(settings, "http://%31%30.0.0.1/x.pdf")
    assert result.outcome == BLOCKED_ADDRESS and "10.0.0.1" in result.detail and asked == []


def test_allowed_networks_are_exact():
    networks = parse_networks(LOOPBACK_ONLY)
    assert address_allowed(ip_address("127.0.0.1"), networks)
    assert address_allowed(ip_address("::ffff:127.0.0.1"), networks)  # the same address, IPv4-mapped
    assert not address_allowed(ip_address("127.0.0.2"), networks)
    assert not address_allowed(ip_address("::1"), networks)


def test_settings_are_checked_early():
    with pytest.raises(ValueError, match="allowed_networks"):
        RefetchSettings(allowed_networks=["10.0.0.0/33"])
    with pytest.raises(ValueError, match="hosts"):
        RefetchSettings(hosts={"a.test": "not-an-ip"})
    with pytest.raises(ValueError, match="total_timeout"):
        RefetchSettings(total_timeout=0)
    for agent in ("x\r\nX-Injected: 1", "crawler/1 (müller)"):
        with pytest.raises(ValueError, match="single line"):
            RefetchSettings(user_agent=agent)
    defaults = RefetchSettings()
    assert (defaults.per_host_delay, defaults.max_redirects, defaults.retries, defaults.max_bytes) == (1, 5, 3, 1 << 28)
    assert defaults.allowed_networks == [] and defaults.hosts == {} and defaults.verify_tls


def test_retry_after_values():
    assert _parse_retry_after("7") == 7
    in_a_minute = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=60), usegmt=True)
    assert 55 < _parse_retry_after(in_a_minute) <= 60
    assert _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past: no wait
    assert _parse_retry_after("soon") is None and _parse_retry_after(None) is None


def test_targets_are_normalised_for_the_wire():
    target = _parse_target("HTTP://Pdfs.Example.ORG:80/a b/ü.pdf?x=1#frag")
    assert (target.host, target.port, target.authority) == ("pdfs.example.org", 80, "pdfs.example.org")
    assert target.path == "/a%20b/%C3%BC.pdf?x=1"
    assert _parse_target("https://[::1]:8443/").authority == "[::1]:8443"
    assert _parse_target("https://bücher.example/").host == "xn--bcher-kva.example"
    for bad in ("ftp://example.org/x.pdf", "http:///nohost", "http://example.org:99999/"):
        with pytest.raises(_Stop):
            _parse_target(bad)


# --- payloads --------------------------------------------------------------------------------------------------


def test_pdfs_in_their_usual_forms_are_fetched(servers):
    base = "http://ok.test"
    paths = ["/pdf/a.pdf", "/octet", "/untyped", "/gzip", "/chunked", "/leading-newline"]
    results = fetch(servers.settings("ok.test"), *(base + p for p in paths))
    assert outcomes(results) == [OK] * len(paths), [r.detail for r in results]
    assert results[0].body == tiny_pdf("/pdf/a.pdf")
    assert results[3].body == tiny_pdf("/gzip")  # decoded although we asked for identity
    assert results[4].body == tiny_pdf("/chunked")
    assert results[5].body.startswith(b"\r\n%PDF-")  # header within the first 1024 bytes, as Acrobat accepts
    assert results[0].exchange.request_headers[1] == ("User-Agent", servers.settings().user_agent)
    assert all(r.requests == 1 and r.size == len(r.body) for r in results)


@pytest.mark.parametrize(
    "path, detail",
    [
        ("/html", "content-type text/html"),
        ("/fake-pdf", "body is not a PDF"),
        ("/octet-html", "body is not a PDF"),
    ],
)
def test_other_payloads_are_not_pdf(servers, path, detail):
    [result] = fetch(servers.settings("notpdf.test"), f"http://notpdf.test{path}")
    assert result.outcome == NOT_PDF and detail in result.detail and result.body is None


def test_oversized_bodies_stop_at_the_cap(servers):
    settings = servers.settings("big.test", max_bytes=256 * 1024)
    started = time.monotonic()
    endless, declared = fetch(settings, "http://big.test/endless", "http://big.test/huge")
    assert (endless.outcome, declared.outcome) == (TOO_LARGE, TOO_LARGE)
    assert "exceeds 262144" in endless.detail and "Content-Length 1000000000000" in declared.detail
    assert endless.requests == 1 and time.monotonic() - started < 2


def test_a_body_cut_short_is_an_error(servers):
    [result] = fetch(servers.settings("short.test"), "http://short.test/short")
    assert result.outcome == ERROR and "closed after" in result.detail


def test_slow_servers_time_out_and_are_retried(servers):
    settings = servers.settings("slow.test", read_timeout=0.3, total_timeout=0.6, retries=1, backoff=0.05)
    started = time.monotonic()
    drip, stall = fetch(settings, "http://slow.test/drip", "http://slow.test/stall")
    elapsed = time.monotonic() - started
    assert (drip.outcome, stall.outcome) == (TIMEOUT, TIMEOUT)
    assert drip.detail == "total deadline exceeded"  # it never went quiet for 0.3 s
    assert stall.detail.startswith("read timeout")
    assert drip.requests == stall.requests == 2  # retried once each
    assert elapsed < 2 * 0.6 + 2 * 0.3 + 1.0


def test_http_errors(servers):
    settings = servers.settings("status.test", retries=2, backoff=0.01)
    missing, broken, unavailable, gone = fetch(
        settings, *(f"http://status.test/status/{code}" for code in (404, 500, 503, 410))
    )
    assert (missing.outcome, missing.detail, missing.requests) == (HTTP_4XX, "HTTP 404", 1)
    assert (broken.outcome, broken.requests) == (HTTP_5XX, 1)  # 500 is not retried
    assert (unavailable.outcome, unavailable.requests) == (HTTP_5XX, 3)  # 503: retried, then given up
    assert gone.outcome == HTTP_4XX


# --- retries ---------------------------------------------------------------------------------------------------


def _gaps(origin: Origin, host: str, path: str) -> list[float]:
    hits = origin.hits_for(host, path)
    return [later.start - earlier.end for earlier, later in itertools.pairwise(hits)]


def test_retry_after_is_honoured(servers):
    settings = servers.settings("wait.test", retries=2, max_retry_after=5)
    [result] = fetch(settings, "http://wait.test/flaky/a?fail=1&status=429&retry_after=1")
    assert (result.outcome, result.requests) == (OK, 2)
    [gap] = _gaps(servers.origin, "wait.test", "/flaky/a")
    assert 0.95 <= gap < 1.5


def test_retry_after_is_capped(servers):
    in_an_hour = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    settings = servers.settings("cap.test", retries=2, max_retry_after=0.3)
    seconds, date = fetch(
        settings,
        "http://cap.test/flaky/s?fail=1&status=503&retry_after=3600",
        f"http://cap.test/flaky/d?fail=1&status=429&retry_after={quote(in_an_hour)}",
    )
    assert (seconds.outcome, date.outcome) == (OK, OK)
    for path in ("/flaky/s", "/flaky/d"):
        [gap] = _gaps(servers.origin, "cap.test", path)
        assert 0.28 <= gap < 1.0


def test_backoff_doubles_without_retry_after(servers):
    settings = servers.settings("backoff.test", retries=3, backoff=0.2)
    [result] = fetch(settings, "http://backoff.test/flaky/x?fail=2&status=502")
    assert (result.outcome, result.requests) == (OK, 3)
    first, second = _gaps(servers.origin, "backoff.test", "/flaky/x")
    assert 0.18 <= first < 0.35 and 0.38 <= second < 0.6


# --- redirects -------------------------------------------------------------------------------------------------


def test_redirects_are_followed_up_to_the_limit(servers):
    three, six = fetch(servers.settings("hops.test"), "http://hops.test/chain/3", "http://hops.test/chain/6")
    assert three.outcome == OK and three.final_url == "http://hops.test/chain/0" and len(three.urls) == 4
    assert six.outcome == ERROR and "too many redirects" in six.detail and six.requests == 6
    [exotic] = fetch(servers.settings("hops.test"), "http://hops.test/redirect?to=ftp://hops.test/x.pdf")
    assert exotic.outcome == ERROR and "unsupported scheme" in exotic.detail


def _internal_targets(listener_port: int) -> list[str]:
    return [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x.pdf",
        f"http://127.0.0.2:{listener_port}/x.pdf",
        f"http://[::1]:{listener_port}/x.pdf",
        f"http://[::ffff:127.0.0.2]:{listener_port}/x.pdf",
        f"http://2130706434:{listener_port}/x.pdf",  # 127.0.0.2 written as one decimal number
        f"http://%31%32%37.0.0.2:{listener_port}/x.pdf",  # percent-encoded
        f"http://0x7f.0.0.2:{listener_port}/x.pdf",  # hex
        "http://%31%30.0.0.1/x.pdf",
        f"http://internal.test:{listener_port}/x.pdf",  # hosts override -> 127.0.0.2
        "http://metadata.test/latest/meta-data/",  # hosts override -> 169.254.169.254
    ]


@pytest.fixture
def listener() -> Iterator[tuple[int, list[tuple[str, int]]]]:
    """A server on 127.0.0.2 (outside the allowed 127.0.0.1/32) that records every connection it accepts."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not a loopback address on this system")
    sock.listen()
    sock.settimeout(0.1)
    accepted: list[tuple[str, int]] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            accepted.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1], accepted
    stop.set()
    thread.join()
    sock.close()


def test_no_connection_is_ever_opened_to_a_refused_address(servers, listener, monkeypatch):
    port, accepted = listener
    connects: list[str] = []
    real_connect, real_connect_ex, real_create = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.create_connection,
    )

    def spy_connect(self, address):
        connects.append(address[0])
        return real_connect(self, address)

    def spy_connect_ex(self, address):
        connects.append(address[0])
        return real_connect_ex(self, address)

    def spy_create(address, *args, **kwargs):
        connects.append(address[0])
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", spy_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", spy_connect_ex)
    monkeypatch.setattr(socket, "create_connection", spy_create)

    # DNS rebinding: a name whose answers change between lookups. Each hop is resolved once (robots.txt is a
    # hop of its own) and the connection goes to that vetted answer: the HTTP layer never asks again, so the
    # outcomes follow the answers exactly: 1st item (lookups 1, 2 for robots.txt) ok, 2nd blocked, 3rd ok.
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.1", "10.0.0.1", "127.0.0.1"])

    def rebinding_getaddrinfo(host, port_, *args, **kwargs):
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port_))]
        return real_getaddrinfo(host, port_, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)

    settings = servers.settings(
        "hop.test",
        "robots-hop.test",
        extra_hosts={"internal.test": f"127.0.0.2:{port}", "metadata.test": "169.254.169.254"},
    )
    internal = _internal_targets(port)
    redirected = [f"http://hop.test/redirect?to={quote(url, safe='')}" for url in internal]
    servers.origin.robots["robots-hop.test"] = (302, b"", [("Location", "http://10.0.0.1/robots.txt")])
    rebind = [f"http://rebind.test:{servers.origin.port}/pdf/{i}" for i in range(3)]
    results = fetch(settings, *internal, *redirected, "http://robots-hop.test/pdf/x", *rebind)

    n = len(internal)
    assert outcomes(results[: 2 * n]) == [BLOCKED_ADDRESS] * (2 * n), [r.detail for r in results]
    assert results[2 * n].outcome == ROBOTS and "10.0.0.1" in results[2 * n].detail  # robots.txt hop refused
    assert outcomes(results[2 * n + 1 :]) == [OK, BLOCKED_ADDRESS, OK]
    assert set(connects) == {"127.0.0.1"}, connects  # nothing else was even attempted
    assert accepted == []


# --- robots.txt ------------------------------------------------------------------------------------------------


def test_robots_txt_is_obeyed_and_fetched_once_per_host(servers):
    rules = b"User-agent: corpus-refetch\nDisallow: /pdf/private\n\nUser-agent: *\nDisallow: /\n"
    servers.origin.robots["robots.test"] = (200, rules, [("Content-Type", "text/plain")])
    urls = [f"http://robots.test/pdf/{name}" for name in ("a", "private-1", "b", "private-2")]
    results = fetch(servers.settings("robots.test"), *urls)
    assert outcomes(results) == [OK, ROBOTS, OK, ROBOTS]
    assert results[1].detail == "disallowed by robots.txt" and results[1].requests == 0
    assert len(servers.origin.hits_for("robots.test", "/robots.txt")) == 1


@pytest.mark.parametrize(
    "status, outcome",
    [(404, OK), (403, OK), (410, OK), (500, ROBOTS), (503, ROBOTS), (429, ROBOTS)],
)
def test_robots_txt_failures_follow_rfc_9309(servers, status, outcome):
    host = f"robots-{status}.test"
    servers.origin.robots[host] = (status, b"User-agent: *\nDisallow: /\n", [])
    [result] = fetch(servers.settings(host, backoff=0.01), f"http://{host}/pdf/x")
    assert result.outcome == outcome
    if outcome == ROBOTS:
        assert "unreachable" in result.detail


def test_unreachable_robots_txt_disallows(servers):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    settings = servers.settings(extra_hosts={"down.test": f"127.0.0.1:{port}"})
    [result] = fetch(settings, "http://down.test/x.pdf")
    assert result.outcome == ROBOTS and "unreachable" in result.detail


def test_crawl_delay_slows_the_host_down(servers):
    servers.origin.robots["crawl.test"] = (200, b"User-agent: *\nCrawl-delay: 5\n", [])
    results = fetch(
        servers.settings("crawl.test", max_crawl_delay=0.3), "http://crawl.test/pdf/1", "http://crawl.test/pdf/2"
    )
    assert outcomes(results) == [OK, OK]
    [gap] = _gaps(servers.origin, "crawl.test", "/pdf/")
    assert 0.28 <= gap < 1.0  # Crawl-delay honoured, up to max_crawl_delay


# --- politeness ------------------------------------------------------------------------------------------------


def test_one_host_is_fetched_sequentially_with_the_delay(servers):
    settings = servers.settings("polite.test", per_host_delay=0.25, workers=4)
    results = fetch(settings, *(f"http://polite.test/pdf/{i}" for i in range(3)))
    assert outcomes(results) == [OK] * 3
    hits = servers.origin.hits_for("polite.test")  # robots.txt, then the three PDFs
    assert len(hits) == 4
    for earlier, later in itertools.pairwise(hits):
        assert later.start - earlier.end >= 0.25 - 0.02  # never overlapping, always the delay apart


def test_different_hosts_proceed_concurrently(servers):
    settings = servers.settings("left.test", "right.test", per_host_delay=0.0, workers=2)
    results = fetch(settings, "http://left.test/slow-pdf", "http://right.test/slow-pdf")
    assert outcomes(results) == [OK, OK]
    [left] = servers.origin.hits_for("left.test", "/slow-pdf")
    [right] = servers.origin.hits_for("right.test", "/slow-pdf")
    assert left.start < right.end and right.start < left.end  # the two 0.4 s responses overlapped


# --- TLS -------------------------------------------------------------------------------------------------------


def test_https_verifies_the_certificate_and_sends_sni(tls_servers):
    settings = tls_servers.settings(tls_hosts=("secure.test",))
    tls_servers.origin.sni.clear()
    [result] = fetch(settings, "https://secure.test/pdf/tls")
    assert result.outcome == OK and result.body == tiny_pdf("/pdf/tls")
    assert "secure.test" in tls_servers.origin.sni
    [untrusted] = fetch(tls_servers.settings(tls_hosts=("secure.test",), ca_file=None), "https://secure.test/pdf/x")
    assert untrusted.outcome == ROBOTS and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail  # robots.txt failed first


# --- WARC output -----------------------------------------------------------------------------------------------


def _read_warc(path: Path) -> list:
    with open(path, "rb") as fh:
        return [
            (record.rec_type, record.rec_headers, record.http_headers, record.content_stream().read())
            for record in ArchiveIterator(fh)
        ]


def test_warc_holds_request_and_response_pairs(servers, tmp_path):
    settings = servers.settings("warc.test")
    items = [
        RefetchItem("http://warc.test/redirect?to=/pdf/target", "<urn:uuid:original-1>"),
        RefetchItem("http://warc.test/chunked", "<urn:uuid:original-2>"),
        RefetchItem("http://warc.test/status/404", "<urn:uuid:original-3>"),
    ]
    report = refetch_to_warc(items, tmp_path / "out" / "refetch.warc.gz", settings)
    assert report.records_written == 2 and report.counts == {**dict.fromkeys(OUTCOMES, 0), OK: 2, HTTP_4XX: 1}
    assert all(r.body is None for r in report.results)  # dropped once written
    assert report.results[2].to_dict()["detail"] == "HTTP 404"

    records = _read_warc(tmp_path / "out" / "refetch.warc.gz")
    assert [r[0] for r in records] == ["warcinfo", "request", "response", "request", "response"]
    _, _, request_http, _ = records[1]
    _, response_headers, response_http, payload = records[2]
    assert response_headers.get_header("WARC-Refers-To") == "<urn:uuid:original-1>"
    assert response_headers.get_header("WARC-Target-URI") == "http://warc.test/pdf/target"  # where it came from
    assert response_headers.get_header("WARC-Refers-To-Target-URI") == items[0].url
    assert response_headers.get_header("WARC-IP-Address") == "127.0.0.1"
    assert response_headers.get_header("WARC-Concurrent-To") == records[1][1].get_header("WARC-Record-ID")
    assert response_http.get_statuscode() == "200" and payload == tiny_pdf("/pdf/target")
    assert request_http.protocol == "GET" and request_http.get_header("Host") == "warc.test"
    _, _, chunked_http, chunked_payload = records[4]
    assert chunked_payload == tiny_pdf("/chunked")  # stored de-chunked, header renamed so it is not undone twice
    assert chunked_http.get_header("X-Crawler-Transfer-Encoding") == "chunked"
    assert chunked_http.get_header("Content-Length") == str(len(chunked_payload))

    # The project's own reader sees them as replacement PDFs.
    read = [r for r in iter_records(str(tmp_path / "out" / "refetch.warc.gz")) if isinstance(r, WarcRecord)]
    responses = [r for r in read if r.rec_type == "response"]
    assert [r.refers_to for r in responses] == ["<urn:uuid:original-1>", "<urn:uuid:original-2>"]
    assert all(r.payload_type == "application/pdf" and r.http_status == 200 for r in responses)


def test_write_warc_skips_failures_and_takes_streams(servers):
    results = fetch(servers.settings("stream.test"), "http://stream.test/gzip", "http://stream.test/html")
    buffer = io.BytesIO()
    assert write_warc(results, buffer) == 1
    buffer.seek(0)
    [response] = [r for r in ArchiveIterator(buffer) if r.rec_type == "response" and r.content_stream().read()]
    assert response.http_headers.get_header("X-Crawler-Content-Encoding") == "gzip"


# --- the shared ccdev corpus -----------------------------------------------------------------------------------


def test_truncated_ccdev_pdfs_are_refetched_whole(tls_servers, tmp_path):
    ccdev = shared_path("ccdev")
    truth = [json.loads(line) for line in (ccdev / "ccdev.truth.jsonl").read_text().splitlines() if line.strip()]
    expected = {t["url"]: t for t in truth if t["kind"] == "pdf" and t.get("truncated")}
    items = [item for warc in sorted(ccdev.glob("ccdev-*.warc.gz")) for item in truncated_pdf_items(str(warc))]
    assert {item.url for item in items} == set(expected) and len(items) == 16
    assert all(item.reason == "truncated:length" for item in items)

    origin_root = ccdev / "origin"
    for site in origin_root.iterdir():
        tls_servers.origin.sites[site.name] = site
    settings = tls_servers.settings(tls_hosts=tuple(tls_servers.origin.sites), per_host_delay=0.01, max_bytes=64 << 20)
    out = tmp_path / "ccdev-refetch.warc.gz"
    report = refetch_to_warc(items, out, settings)
    assert report.counts[OK] == 16, [(r.item.url, r.outcome, r.detail) for r in report.results if r.outcome != OK]

    by_id = {item.record_id: item for item in items}
    responses = [r for r in _read_warc(out) if r[0] == "response"]
    assert len(responses) == 16
    for _, headers, http_headers, payload in responses:
        item = by_id[headers.get_header("WARC-Refers-To")]
        url = headers.get_header("WARC-Target-URI")
        assert url == item.url
        original = origin_root / url.split("://", 1)[1]
        assert payload == original.read_bytes() and len(payload) == expected[url]["bytes"]
        assert http_headers.get_statuscode() == "200"
