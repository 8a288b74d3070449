"""What a refetch produces: the outcomes, the item to fetch, the exchange and result of each, and the report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
