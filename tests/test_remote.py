"""Remote inputs without a network: WARCs read over HTTP with range requests and retries, Common Crawl ids
resolved through a local listing, and fsspec options from the config."""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corpus.config import StorageSettings, load_config
from corpus.io import remote
from corpus.io.inputs import InputError, expand_inputs
from corpus.io.warc import ReadError, iter_records

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Site:
    """What the test server serves (path -> bytes) and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: path -> how many more GETs of it to cut off halfway through the body
    flaky: dict[str, int] = field(default_factory=dict)
    #: path -> how many more GETs of it to answer 503
    unavailable: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> tuple[int, bytes] | None:
        data = self.site.files.get(self.path.split("?", 1)[0])
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        header = self.headers.get("Range")
        m = _RANGE.fullmatch(header or "")
        if m is None:
            return 200, data
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
        return 206, data[start : end + 1]

    def do_HEAD(self) -> None:
        with self.site.lock:
            self.site.requests.append(("HEAD", self.path, None))
        data = self.site.files.get(self.path)
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.site.lock:
            self.site.requests.append(("GET", path, self.headers.get("Range")))
            cut = self.site.flaky.get(path, 0) > 0 and self.headers.get("Range") is not None
            if cut:
                self.site.flaky[path] -= 1
            busy = self.site.unavailable.get(path, 0) > 0
            if busy:
                self.site.unavailable[path] -= 1
        if busy:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = self._body()
        if answer is None:
            return
        status, body = answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            total = len(self.site.files[path])
            start = int(_RANGE.fullmatch(self.headers["Range"]).group(1))  # type: ignore[union-attr]
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{total}")
        self.end_headers()
        if cut:  # the connection drops halfway through the body
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()
    handler = type("SiteHandler", (Handler,), {"site": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


FAST = remote.RetryPolicy(retries=4, backoff=0.01)


def _records(path: str) -> list[tuple]:
    return [
        (r.kind, r.offset) if isinstance(r, ReadError) else (r.record_id, r.offset, r.payload(1 << 30)[0])
        for r in iter_records(path)
    ]


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    remote.configure({}, FAST, 8 * 1024)  # small blocks: many range requests per file
    yield
    remote.configure({}, remote.RetryPolicy(), 8 << 20)


def test_warc_over_http_uses_range_requests_and_matches_the_local_read(site, sample_dir: Path):
    state, base = site
    local = sorted(sample_dir.glob("*.warc.gz"))[0]
    state.files["/crawl/a.warc.gz"] = local.read_bytes()
    remote_records = _records(f"{base}/crawl/a.warc.gz")
    assert remote_records == _records(str(local))
    ranges = [r for m, p, r in state.requests if m == "GET" and p == "/crawl/a.warc.gz"]
    assert len(ranges) > 1 and all(r and r.startswith("bytes=") for r in ranges)


def test_a_dropped_connection_is_retried_from_where_it_stopped(site, sample_dir: Path, capsys):
    state, base = site
    local = sorted(sample_dir.glob("*.warc.gz"))[0]
    state.files["/flaky.warc.gz"] = local.read_bytes()
    state.flaky["/flaky.warc.gz"] = 3
    state.unavailable["/flaky.warc.gz"] = 1
    assert _records(f"{base}/flaky.warc.gz") == _records(str(local))
    assert state.flaky["/flaky.warc.gz"] == 0 and state.unavailable["/flaky.warc.gz"] == 0
    assert "retry 1 of 4" in capsys.readouterr().err


def test_a_file_that_keeps_failing_is_a_named_error_not_a_crash(site, sample_dir: Path):
    state, base = site
    state.files["/broken.warc.gz"] = sorted(sample_dir.glob("*.warc.gz"))[0].read_bytes()
    state.flaky["/broken.warc.gz"] = 1000
    items = list(iter_records(f"{base}/broken.warc.gz"))
    assert isinstance(items[-1], ReadError)
    assert "RemoteReadError" in items[-1].kind or "RemoteReadError" in items[-1].detail


def test_a_missing_remote_file_fails_at_once(site):
    state, base = site
    items = list(iter_records(f"{base}/nope.warc.gz"))
    assert len(items) == 1 and isinstance(items[0], ReadError) and items[0].kind.startswith("unopenable_file")
    assert len([r for r in state.requests if r[1] == "/nope.warc.gz"]) <= 2  # no retries for a 404


def test_crawl_id_resolves_through_its_listing(site):
    state, base = site
    paths = [f"crawl-data/CC-MAIN-2099-01/segments/1/warc/CC-MAIN-{i}.warc.gz" for i in range(3)]
    state.files["/crawl-data/CC-MAIN-2099-01/warc.paths.gz"] = gzip.compress("\n".join(paths).encode() + b"\n")
    state.files["/crawl-data/CC-MAIN-2099-01/wet.paths.gz"] = gzip.compress(b"crawl-data/x.warc.wet.gz\n")
    settings = StorageSettings(commoncrawl_url=base + "/")
    assert expand_inputs(["CC-MAIN-2099-01"], settings) == [f"{base}/{p}" for p in paths]
    assert expand_inputs(["CC-MAIN-2099-01/wet"], settings) == [f"{base}/crawl-data/x.warc.wet.gz"]
    with pytest.raises(InputError, match=r"CC-MAIN-2099-02.*storage.commoncrawl_url"):
        expand_inputs(["CC-MAIN-2099-02"], settings)


def test_crawl_id_and_limit_pick_the_first_files(site):
    from corpus.jobs.run import resolve_inputs

    state, base = site
    paths = [f"crawl-data/CC-MAIN-2099-01/warc/{i}.warc.gz" for i in range(5)]
    state.files["/crawl-data/CC-MAIN-2099-01/warc.paths.gz"] = gzip.compress("\n".join(paths).encode())
    config = load_config(None, ["input=CC-MAIN-2099-01", "limit=2", f"storage.commoncrawl_url={base}/"])
    assert resolve_inputs(config) == [f"{base}/{p}" for p in paths[:2]]


def test_fsspec_options_from_the_config_reach_new_filesystems():
    import fsspec

    remote.configure({"memory": {"skip_instance_cache": False}})
    assert fsspec.config.conf["memory"] == {"skip_instance_cache": False}
    config = load_config(None, ["storage.options.s3.endpoint_url=http://127.0.0.1:9", "storage.options.s3.anon=true"])
    assert config.storage.options == {"s3": {"endpoint_url": "http://127.0.0.1:9", "anon": True}}
    fsspec.config.conf.pop("memory")


def test_credentials_are_redacted_in_the_manifest_config():
    config = load_config(None, ["storage.options.s3.key=AKIA123", "storage.options.s3.secret=s3cr3t"])
    public = config.public_dict()["storage"]["options"]["s3"]
    assert public == {"key": "***", "secret": "***"}
    assert config.storage.options["s3"]["secret"] == "s3cr3t"  # the tasks still get them


def test_storage_settings_are_checked():
    from corpus.config import ConfigError

    with pytest.raises(ConfigError, match=r"storage\.commoncrawl_listing"):
        load_config(None, ["storage.commoncrawl_listing=warcs"])
    with pytest.raises(ConfigError, match=r"storage\.options\.s3"):
        load_config(None, ["storage.options.s3=1"])
