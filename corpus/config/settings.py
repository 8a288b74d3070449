"""Every setting of a recipe, as typed dataclasses with documented defaults (FineWeb's values).

The filters' own parameters are not here: they are the filters' constructor arguments (`corpus.filters`), which
`corpus.config.load` checks against the registry. Loading and validation are in `corpus.config.load`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from corpus.io.remote import COMMONCRAWL_URL

COMPAT_MODES = ("datatrove", "fineweb-2024")
RECIPES = ("fineweb", "finepdfs")
#: Every stage, in the order `corpus run` runs them; `refetch` is in the PDF recipe only.
STAGES = ("refetch", "extract", "stats", "dedup", "tokenize", "report")
DEFAULT_STAGES = ("extract", "stats", "dedup", "tokenize", "report")
DEDUP_SCOPES = ("crawl", "all")
COMMONCRAWL_LISTINGS = ("warc", "wet", "wat")
#: storage.options keys whose values are credentials (redacted in manifest.json)
SECRET_KEY = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class SparkSettings:
    master: str = "local[*]"
    app_name: str = "corpus"
    #: Any Spark property, e.g. {"spark.executor.memory": "4g"}; `spark.<property>=value` on the command line.
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class ReaderSettings:
    #: Payloads larger than this (after decompression) are removed as `error:payload_too_large`: this bounds
    #: memory and parse time for HTML bombs. Common Crawl truncates payloads at 1 MiB (5 MiB since 2025).
    max_payload_bytes: int = 10 * 1024 * 1024
    #: HTTP statuses to process; others are removed as `http_status:<code>`. "2xx" style ranges are allowed.
    allowed_http_status: list[str] = field(default_factory=lambda: ["2xx"])


@dataclass
class ExtractSettings:
    favor_precision: bool = True
    include_comments: bool = False
    include_tables: bool = True
    #: trafilatura's repeated-segment filter, reset at every input file (see corpus.html).
    deduplicate: bool = True
    #: CPU seconds one page may take before it is removed as `error:cpu_time_limit`. trafilatura then runs in a
    #: sandboxed process where the kernel enforces the limit even inside lxml; 0 extracts in-process, unlimited.
    cpu_time_limit: float = 30.0
    #: Evaluate trafilatura's pruning XPaths with corpus.html.speedups: same output, half the CPU.
    fast_xpath: bool = True
    #: Input files per Spark job. Each job's shards are published when it ends, so an interrupted run resumes
    #: after the last finished job; smaller is finer-grained, larger has less per-job overhead.
    files_per_job: int = 64


@dataclass
class MinhashSettings:
    """FineWeb's MinHash: word 5-grams, 14 bands of 8 hashes, 64-bit, seed 1 (see corpus/minhash.py for the hash
    choices; shingle_hash=sha1 with permutation=mersenne reproduces datatrove's FineWeb signatures exactly)."""

    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1
    precision: int = 64
    shingle_hash: str = "words"
    permutation: str = "multiply_shift"


@dataclass
class PiiSettings:
    """FineWeb's PII step after dedup: emails and public IPv4 addresses replaced by placeholders."""

    enabled: bool = True
    emails: bool = True
    ip_addresses: bool = True
    only_public_ips: bool = True


@dataclass
class DedupSettings:
    #: "crawl": duplicates are looked for within each crawl (FineWeb); "all": across every input.
    scope: str = "crawl"
    #: Drop exact duplicates (same normalized text) first, then near duplicates (MinHash).
    exact: bool = True
    near: bool = True
    minhash: MinhashSettings = field(default_factory=MinhashSettings)
    #: minhash_index/ folders of earlier runs: documents matching them are removed (the earlier set wins).
    index: list[str] = field(default_factory=list)
    #: Write OUT/minhash_index/ (the band keys of the kept documents) for later runs to dedup against.
    write_index: bool = True
    #: Bound on connected-components rounds (each is a few shuffles; real graphs need about log2 of the
    #: longest duplicate chain).
    max_iterations: int = 40
    pii: PiiSettings = field(default_factory=PiiSettings)


@dataclass
class TokenizeSettings:
    #: tiktoken:cl100k_base, tiktoken:o200k_base (offline), hf:/path/to/tokenizer.json or hf:<hub name>.
    tokenizer: str = "tiktoken:cl100k_base"
    #: The token appended to every document; default: the tokenizer's end-of-text token.
    eos: str | None = None
    #: Target tokens per output shard (shards end at a document boundary, so they run slightly over).
    shard_tokens: int = 100_000_000
    #: Target tokens per Parquet row group: what a streaming reader holds in memory at a time.
    row_group_tokens: int = 1_000_000
    #: Shuffle documents across the whole dataset (seeded, deterministic) before cutting shards.
    shuffle: bool = False
    seed: int = 0


@dataclass
class StorageSettings:
    """Remote inputs and outputs (s3://, https://, gs://, ... through fsspec)."""

    #: fsspec options per protocol, e.g. {"s3": {"endpoint_url": "http://127.0.0.1:9000", "anon": true}}. They
    #: travel to the executors inside the tasks. Credentials are best left to the environment or the provider
    #: chain (AWS_ACCESS_KEY_ID, instance roles); if given here, manifest.json stores them redacted.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A remote read that fails (connection reset, timeout, 5xx) is retried this many times, reopening the file
    #: at the byte where it stopped, after retry_backoff seconds, doubling each time.
    retries: int = 5
    retry_backoff: float = 1.0
    #: Bytes fetched per range request when reading remote WARC files.
    block_size: int = 8 * 1024 * 1024
    #: Where stages write when this Spark has no Hadoop filesystem for the output's scheme (s3:// with the pip
    #: pyspark, which has no S3A): a folder the driver and every executor can write (any local path in local
    #: mode; hdfs://... or a shared mount on a cluster). Each finished stage is copied to the output, with
    #: manifest.json last. Default: <cache dir>/staging/<hash of the output URL>.
    staging: str | None = None
    #: Where a crawl id given as input (CC-MAIN-2024-10) is listed: <commoncrawl_url>crawl-data/<id>/<kind>.paths.gz
    #: (s3://commoncrawl/ inside AWS), and which listing: warc, wet or wat.
    commoncrawl_url: str = COMMONCRAWL_URL
    commoncrawl_listing: str = "warc"


@dataclass
class PdfSettings:
    """The PDF recipe's extraction (corpus/pdf/), each PDF in a sandboxed process (corpus/sandbox.py)."""

    #: Larger PDF payloads are removed as `error:payload_too_large`.
    max_bytes: int = 64 * 1024 * 1024
    #: Pages extracted per PDF (the first ones); longer PDFs are kept with `pdf.pages_truncated` in signals.
    max_pages: int = 500
    #: Wall-clock seconds per PDF before its worker is killed (`error:timeout`).
    time_limit: float = 120.0
    #: Bytes a worker may allocate beyond its start size before MuPDF fails (`error:memory_limit`).
    memory_limit: int = 2 * 1024 * 1024 * 1024
    #: Tesseract language(s) for pages without a text layer when Tesseract is installed; null never OCRs, and
    #: such PDFs are removed as `needs_ocr`.
    ocr_language: str | None = "eng"
    #: Send pages the fast router cannot order to pymupdf4llm's layout mode (much slower; see BENCHMARKS).
    layout: bool = False


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(str(net).strip(), strict=False) for net in networks)
    except ValueError as exc:
        raise ValueError(f"allowed_networks: {exc}") from None


def parse_ip_port(value: str) -> tuple[IPAddress, int | None]:
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


def parse_hosts(hosts: dict[str, str]) -> dict[str, tuple[IPAddress, int | None]]:
    parsed = {}
    for name, value in hosts.items():
        try:
            parsed[name.strip().lower()] = parse_ip_port(value)
        except ValueError:
            raise ValueError(f"hosts[{name!r}]: {value!r} is not an IP address with an optional port") from None
    return parsed


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
        parse_networks(self.allowed_networks)  # fail here, on the driver, rather than in every task
        parse_hosts(self.hosts)


#: How a rerun checks the shards of the stages it skips (`output_options.check_shards`).
SHARD_CHECKS = ("size", "sha256", "auto")


@dataclass
class OutputSettings:
    compression: str = "zstd"
    #: Rows per Arrow batch handed from the Python workers to Spark's writer.
    batch_rows: int = 256
    #: How a rerun checks the shards of a stage it would skip (a stage whose shards do not match is redone):
    #: "size"; "sha256" (reads every shard); "auto": sha256 when the shards are local and total at most 4 GiB
    #: per stage, else size.
    check_shards: str = "auto"


@dataclass
class Config:
    recipe: str = "fineweb"
    #: "datatrove": decisions identical to datatrove 0.10.1; "fineweb-2024": FineWeb's original code.
    compat: str = "datatrove"
    input: list[str] = field(default_factory=list)
    output: str | None = None
    #: Value of the `crawl` column; by default a CC-MAIN-* id found in the path, else the input's folder name.
    crawl: str | None = None
    #: Read at most this many input files (after sorting); 0 reads all.
    limit: int = 0
    stages: list[str] = field(default_factory=lambda: list(DEFAULT_STAGES))
    spark: SparkSettings = field(default_factory=SparkSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    tokenize: TokenizeSettings = field(default_factory=TokenizeSettings)
    output_options: OutputSettings = field(default_factory=OutputSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    pdf: PdfSettings = field(default_factory=PdfSettings)
    #: How truncated PDFs are fetched again from their origin (corpus/refetch/; every field documented above).
    refetch: RefetchSettings = field(default_factory=RefetchSettings)
    #: Per filter: constructor parameters (see filters/*.py) plus `enabled`.
    filters: dict[str, Any] = field(default_factory=dict)  # checked by _validate_filters, which knows each filter

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def public_dict(self) -> dict[str, Any]:
        """`to_dict()` with credentials in storage.options replaced by "***" (for manifest.json)."""
        data = self.to_dict()
        for options in data["storage"]["options"].values():
            for key in options:
                if SECRET_KEY.search(key):
                    options[key] = "***"
        return data

    def sha256(self) -> str:
        """The hash of what determines the output: everything but where it runs (`spark`, `storage`), which
        stages run and where the output goes."""
        relevant = {k: v for k, v in self.to_dict().items() if k not in ("spark", "stages", "output", "storage")}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
