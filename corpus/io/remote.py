"""Remote files (s3://, https://, gs://, ... through fsspec): per-protocol options, reads that survive transient
failures, and Common Crawl listings.

WARC files are read inside Spark tasks as byte streams with range requests (fsspec's block-wise files). A
connection reset, a timeout or a 5xx in the middle of a 1 GB WARC should cost a retry, not the task: the
`RetryingReader` reopens the file at the byte where the failed read started, after a backoff. Errors that
retrying cannot fix (missing file, access denied) are raised at once.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import random
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeVar

T = TypeVar("T")

#: Where Common Crawl publishes its crawls over HTTPS (s3://commoncrawl/ inside AWS).
COMMONCRAWL_URL = "https://data.commoncrawl.org/"


class StorageOptions(Protocol):
    """What this module needs of the config's `storage` section (corpus.config.StorageSettings)."""

    options: dict[str, dict[str, Any]]
    retries: int
    retry_backoff: float
    block_size: int
    commoncrawl_url: str
    commoncrawl_listing: str


#: Errors that retrying cannot fix: the request is wrong, not the network.
PERMANENT_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError)

CRAWL_ID = re.compile(r"^(CC-MAIN-\d{4}-\d{2})(?:/(warc|wet|wat))?$")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5
    backoff: float = 1.0  # seconds before the first retry, doubled after each

    def delays(self) -> list[float]:
        return [self.backoff * (2**i) * (1 + 0.25 * random.random()) for i in range(self.retries)]


class RemoteReadError(OSError):
    """A remote read that still failed after every retry."""


_defaults: dict[str, Any] = {"policy": RetryPolicy(), "block_size": 8 << 20}


def configure(
    options: Mapping[str, Mapping[str, Any]], policy: RetryPolicy | None = None, block_size: int | None = None
) -> None:
    """Make `options` (protocol -> fsspec keyword arguments) the defaults of every fsspec filesystem this process
    creates, and `policy`/`block_size` those of `open_remote`. Called on the driver and at the start of every
    task (tasks run in other processes)."""
    import fsspec.config

    if policy is not None:
        _defaults["policy"] = policy
    if block_size is not None:
        _defaults["block_size"] = block_size
    for protocol, kwargs in options.items():
        current = fsspec.config.conf.setdefault(protocol, {})
        if any(current.get(k) != v for k, v in kwargs.items()):
            current.update(kwargs)
            fsspec.filesystem(protocol).clear_instance_cache()  # instances made with the old options are stale


def with_retries(
    what: str, policy: RetryPolicy, call: Callable[[], T], on_error: Callable[[], None] = lambda: None
) -> T:
    """`call()`, retried after transient errors with exponential backoff."""
    delays = policy.delays()
    for attempt in range(len(delays) + 1):
        try:
            return call()
        except PERMANENT_ERRORS:
            raise
        except Exception as exc:
            on_error()
            if attempt == len(delays):
                raise RemoteReadError(f"{what}: {type(exc).__name__}: {exc} (after {attempt} retries)") from exc
            print(
                f"corpus: {what}: {type(exc).__name__}: {exc}; retry {attempt + 1} of {len(delays)} "
                f"in {delays[attempt]:.1f} s",
                file=sys.stderr,
            )
            time.sleep(delays[attempt])
    raise AssertionError("unreachable")


class RetryingReader(io.RawIOBase):
    """A remote file opened with fsspec for reading (range requests of `block_size` bytes), that reopens itself
    at the current offset after a transient error. Seekable; `retried` counts the retries it made."""

    def __init__(self, url: str, policy: RetryPolicy = RetryPolicy(), block_size: int = 8 << 20) -> None:
        super().__init__()
        self.url = url
        self.policy = policy
        self.block_size = block_size
        self.retried = 0
        self._position = 0
        self._file: Any = None
        self._size: int | None = None
        self._call(lambda f: None)  # open now: a missing file fails here, not at the first read

    def _open(self) -> Any:
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.url)
        handle = fs.open(path, "rb", block_size=self.block_size, cache_type="readahead")
        if self._position:
            handle.seek(self._position)
        return handle

    def _drop(self) -> None:
        self.retried += 1
        file, self._file = self._file, None
        if file is not None:
            # a broken connection may fail to close; it is being replaced anyway
            with contextlib.suppress(Exception):
                file.close()

    def _call(self, operation: Callable[[Any], T]) -> T:
        def attempt() -> T:
            if self._file is None:
                self._file = self._open()
            return operation(self._file)

        return with_retries(f"reading {self.url} at byte {self._position}", self.policy, attempt, self._drop)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._call(lambda f: f.read(len(view)))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def size(self) -> int:
        if self._size is None:
            self._size = int(self._call(lambda f: f.size))
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            target = self.size() + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError("negative seek position")
        self._position = target
        if self._file is not None:
            self._call(lambda f: f.seek(target))
        return target

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
        super().close()


def open_remote(url: str, policy: RetryPolicy | None = None, block_size: int | None = None) -> BinaryIO:
    """A buffered, seekable, retrying reader of a remote file (defaults from `configure`)."""
    block_size = block_size or _defaults["block_size"]
    raw = RetryingReader(url, policy or _defaults["policy"], block_size)
    return io.BufferedReader(raw, buffer_size=min(block_size, 1 << 20))  # type: ignore[return-value]


def crawl_listing_url(spec: str, base_url: str, default_kind: str = "warc") -> str | None:
    """The paths listing of a crawl id (`CC-MAIN-2024-10`, or `CC-MAIN-2024-10/wet`), else None."""
    m = CRAWL_ID.match(spec.strip())
    if m is None:
        return None
    return f"{base_url.rstrip('/')}/crawl-data/{m.group(1)}/{m.group(2) or default_kind}.paths.gz"


def list_crawl(listing_url: str, base_url: str, policy: RetryPolicy | None = None) -> list[str]:
    """The files of a Common Crawl `*.paths.gz` listing, as URLs under `base_url`, in the listing's order."""
    import fsspec

    def fetch() -> bytes:
        with fsspec.open(listing_url, "rb") as fh:
            return fh.read()

    data = with_retries(f"reading {listing_url}", policy or _defaults["policy"], fetch)
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{listing_url} is not a gzipped list of paths: {exc}") from None
    base = base_url.rstrip("/") + "/"
    return [base + line.strip().lstrip("/") for line in text.splitlines() if line.strip()]


def use(settings: StorageOptions) -> None:
    """`configure` from the config's `storage` section."""
    configure(settings.options, RetryPolicy(settings.retries, settings.retry_backoff), settings.block_size)
