"""URLs taken apart for a request (`_Target`, `host_key`) and the per-host rules: one request at a time with a
delay (`_HostGate`), Retry-After, and what robots.txt allows (`_RobotsRules`)."""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, unquote, urlsplit
from urllib.robotparser import RobotFileParser

from corpus.refetch.addresses import _ip_literal
from corpus.refetch.results import ERROR, _Stop

_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    host = normalise_host(parts.hostname or "")
    if not host:
        raise _Stop(ERROR, f"no valid host in {url[:200]!r}")
    port = port or _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # Spaces and non-ASCII must be escaped on the wire; existing %XX escapes and reserved characters stay.
    path = quote(path, safe="!#$%&'()*+,/:;=?@[]~")
    return _Target(scheme, host, port, authority, path)


_HOST_FORBIDDEN = set(" \t\r\n\0#%/:<>?@[\\]^|")


def normalise_host(host: str) -> str:
    """A URL's host as the address check and DNS must see it (WHATWG URL host parsing): percent-escapes decoded
    (``%31%30.0.0.1`` is 10.0.0.1), IPv4 shorthands written out (``0x7f.1`` is 127.0.0.1), names lowercased
    and IDNA-encoded; "" for a host no URL parser accepts."""
    if ":" in host:  # an IPv6 literal (urlsplit took the brackets off)
        literal = _ip_literal(host.split("%", 1)[0])
        return str(literal) if literal is not None else ""
    try:
        host = unquote(host, errors="strict") if "%" in host else host
    except UnicodeDecodeError:
        return ""
    literal = _ip_literal(host)
    if literal is not None:
        return str(literal)
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    if last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])):
        return ""  # it ends in a number, so it must be an IPv4 address, and it is not one
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""
    if not host or any(c in _HOST_FORBIDDEN for c in host):
        return ""
    return host


def host_key(url: str) -> str:
    """The host politeness applies to (the normalised host, any scheme or port): partition work by this."""
    try:
        return normalise_host(urlsplit(url.strip()).hostname or "")
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
