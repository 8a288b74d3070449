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
from corpus.pdf.ocr import AUTO, ENGINES

COMPAT_MODES = ("datatrove", "fineweb-2024")
RECIPES = ("fineweb", "finepdfs")
#: Every stage, in the order `corpus run` runs them; `refetch` is in the PDF recipe only.
STAGES = ("refetch", "extract", "classify", "stats", "dedup", "tokenize", "report")
DEFAULT_STAGES = ("extract", "stats", "dedup", "tokenize", "report")
DEDUP_SCOPES = ("crawl", "all")
COMMONCRAWL_LISTINGS = ("warc", "wet", "wat")
CLASSIFIER_KINDS = ("fasttext", "embedding")
#: `classifier.decide` besides a classifier's name: every classifier keeps the document, or any one does.
DECISION_RULES = ("all", "any")
EMBEDDING_HEADS = ("logistic", "ridge", "linear")
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
    #: HTTP statuses to process; others are removed as `http_status:<code>` (a code that is not three digits as
    #: `http_status:invalid`). "2xx" style ranges are allowed.
    allowed_http_status: list[str] = field(default_factory=lambda: ["2xx"])
    #: Which reader reads WARC files: "auto" (FastWARC where it reads a file as warcio's reader does, warcio's from
    #: the first record where it might not; warcio's alone if FastWARC is not installed), "fastwarc" (the same,
    #: FastWARC required) or "warcio" (corpus.io.warc alone). The records, offsets and errors are the same.
    warc_reader: str = "auto"


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
    #: after the last finished job; smaller is finer-grained, larger has less per-job overhead. A job ends with
    #: its slowest file, and runs at most one task per file: on a cluster it must be several times the cores.
    #: 0 (the default): 4 x the application's cores (Spark's default parallelism), at least 64.
    files_per_job: int = 0


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
    #: Tesseract language(s), for the `tesseract` OCR engine.
    ocr_language: str | None = "eng"
    #: Send pages the fast router cannot order to pymupdf4llm's layout mode (much slower; see BENCHMARKS).
    layout: bool = False
    #: OCR engine for pages without a usable text layer (corpus/pdf/ocr.py): `auto` (RapidOCR, whose wheel holds
    #: its models, else Tesseract if installed), `rapidocr` or `tesseract`; null never OCRs. Without an engine,
    #: mostly scanned PDFs are removed as `needs_ocr`.
    ocr_engine: str | None = "auto"
    #: Render resolution for OCR, and the most pixels one page's image may have (its memory budget).
    ocr_dpi: float = 150.0
    ocr_max_pixels: int = 6_000_000
    #: Pages OCR'd per PDF (the first that need it); the others keep what text they have.
    max_ocr_pages: int = 50
    #: Per page: wall-clock seconds and bytes of memory for OCR in its sandboxed worker (a page over either keeps
    #: what text it has, counted in `pdf.ocr_failed.timeout` / `pdf.ocr_failed.memory_limit`).
    ocr_time_limit: float = 90.0
    ocr_memory_limit: int = 2 * 1024 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.ocr_engine is not None and self.ocr_engine not in (AUTO, *ENGINES):
            raise ValueError(f"ocr_engine: {self.ocr_engine!r} is not one of auto, {', '.join(ENGINES)} or null")


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


#: Parquet codecs Spark writes (spark.sql.parquet.compression.codec).
PARQUET_CODECS = ("zstd", "snappy", "gzip", "lz4", "lz4_raw", "brotli", "none", "uncompressed")


@dataclass
class ClassifierModelSettings:
    """One quality classifier, as the classify stage applies it."""

    #: A model folder written by `corpus train-classifier` (card.json beside the model), or any fastText
    #: supervised model (.bin/.ftz) by path or URL (DCLM's, for one).
    model: str | None = None
    #: The label whose probability is the score (fastText label without __label__); default: the card's, else
    #: the model's last label. Regression heads (0-5 scores) have one score and no labels.
    positive: str | None = None
    #: Keep documents whose score is >= this; default: the threshold on the model's card, else 0.5.
    threshold: float | None = None
    #: fastText reads one line: newlines become this first (datatrove's FastTextClassifierFilter uses "").
    newline: str = " "
    #: FineWeb-Edu: clip a regression score to 0-5 and round it (the rounded score is `<name>.int_score`, and
    #: the one the threshold compares).
    round: bool = False
    #: Embedding models: tokens per document (the encoder's input is cut there; all-MiniLM-L6-v2 was trained on 256).
    max_tokens: int = 256


@dataclass
class TrainSettings:
    """`corpus train-classifier`: splits, class balance and model parameters."""

    seed: int = 0
    #: Stratified shares of the labels held out: validation (threshold choice, the gate) and test (never used to
    #: choose anything; reported on the card as held-out figures).
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    #: The threshold maximises F-beta on the validation split (beta < 1 favours precision; FinePDFs used 0.1).
    beta: float = 1.0
    #: Weigh classes inversely to their frequency (fastText: by repeating the rarer class's examples).
    balance: bool = True
    #: A number label (0-5 scores) counts as positive from this value on (FineWeb-Edu: 3).
    positive_from: float = 3.0
    #: fastText: epochs, learning rate, word n-grams, dimensions, hash buckets, character n-grams (0: none).
    epoch: int = 10
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 32
    bucket: int = 200_000
    minn: int = 0
    maxn: int = 0
    #: Embedding models: the encoder (a packaged model's name or a local folder) and the head over it.
    encoder: str = "all-MiniLM-L6-v2"
    head: str = "logistic"
    #: Inverse regularisation strength of the logistic head (ridge: its alpha is 1 / c).
    c: float = 1.0


@dataclass
class ClassifierSettings(ClassifierModelSettings):
    """Quality classifiers (corpus/quality/): the classify stage between extract and dedup, and training.

    One classifier is `classifier.model=DIR` (named `classifier.name`); several go side by side under
    `classifier.classifiers.<name>.*`. Every document gets each one's `<name>.score` (and label probabilities)
    in `signals`, and `quality_score`: the deciding classifier's score (the mean of all under a rule)."""

    name: str = "quality"
    classifiers: dict[str, Any] = field(default_factory=dict)  # name -> ClassifierModelSettings (load.py builds them)
    #: Which classifier decides: its name (default: the only one), or `all` / `any` of them at their thresholds.
    decide: str | None = None
    #: Keep this share of the run, by `quality_score` (a global quantile in Spark), instead of a threshold.
    top_fraction: float | None = None
    #: Relative rank error of that quantile (Spark's approxQuantile): the kept share is within this of the target.
    quantile_error: float = 0.001
    #: Documents per batch handed to a model.
    batch_rows: int = 1000
    #: What `corpus train-classifier` trains: fasttext or embedding (a linear head over sentence embeddings).
    kind: str = "fasttext"
    train: TrainSettings = field(default_factory=TrainSettings)

    def models(self) -> dict[str, ClassifierModelSettings]:
        """The configured classifiers by name (`model` under `name`, then `classifiers`)."""
        named = dict(self.classifiers)
        if self.model:
            fields = {f.name for f in dataclasses.fields(ClassifierModelSettings)}
            named = {self.name: ClassifierModelSettings(**{k: getattr(self, k) for k in fields}), **named}
        return named


@dataclass
class GateSettings:
    """The evaluation gate of `corpus train-classifier`: a model is published only if it passes."""

    #: Validation F1 (at the chosen threshold) a model must reach.
    min_f1: float = 0.85
    #: Largest F1 loss allowed against the model already published there, both scored on its pinned
    #: evaluation set (eval.parquet in the published folder).
    max_drop: float = 0.05


@dataclass
class AnnotateSettings:
    """`corpus annotate`: LLM pre-labels from any OpenAI-compatible chat-completions server."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:8000/v1 (vLLM, TGI) or https://api.openai.com/v1
    model: str | None = None
    #: Environment variable holding the API key (never the key itself: configs end up in manifests).
    api_key_env: str = "OPENAI_API_KEY"
    #: A prompt template file ({text} is replaced by the document); default: our 0-5 educational-value prompt.
    template: str | None = None
    #: Characters of each document put in the prompt.
    max_chars: int = 6000
    concurrency: int = 8  # requests in flight
    rate: float = 0.0  # requests per second at most (0: no limit)
    retries: int = 5  # per request, on connection errors, 408, 409, 429 and 5xx, with exponential backoff
    timeout: float = 120.0
    max_tokens: int = 512  # of each answer
    temperature: float = 0.0
    #: Answers already received, keyed by (model, template, document): a rerun asks only for what is missing.
    #: Default: <cache dir>/annotate.sqlite.
    cache: str | None = None


@dataclass
class OutputSettings:
    #: Parquet compression of every output shard: one of PARQUET_CODECS.
    compression: str = "zstd"
    #: Rows per Arrow batch the extraction's Python workers convert and write at a time.
    batch_rows: int = 256
    #: How a rerun checks the shards of a stage it would skip (a stage whose shards do not match is redone):
    #: "size"; "sha256" (reads every shard); "auto": sha256 when the shards are local and total at most 4 GiB
    #: per stage, else size.
    check_shards: str = "auto"


@dataclass
class DriftSettings:
    """`corpus drift` and the report's baseline comparison: what counts as drift between two runs. Numeric
    signals are compared on bounded seeded samples (`sample_size` values per signal, the same documents in both
    runs when they hold the same ids), categorical shares (language, removal reasons, top-level domains) on
    their exact counts."""

    #: Values kept per numeric signal: the documents with the smallest xxhash64(seed, id), so reruns agree.
    sample_size: int = 5000
    seed: int = 0
    #: Two-sample Kolmogorov-Smirnov statistic (scipy.stats.ks_2samp) above this flags a signal.
    ks: float = 0.1
    #: Wasserstein distance (scipy.stats.wasserstein_distance) divided by the baseline's interquartile range
    #: (its standard deviation when the IQR is 0) above this flags a signal.
    wasserstein: float = 0.1
    #: Population stability index of categorical shares above this flags the category set (0.1: slight, 0.25:
    #: major, by the usual reading).
    psi: float = 0.2
    #: Absolute change of a removal rate (share of documents a step removed) above this is flagged: 0.03 = 3 points.
    removal_rate: float = 0.03
    #: Relative change of kept documents and kept tokens above this is flagged.
    kept: float = 0.03
    #: Signals with fewer sampled values than this in either run are reported but never flagged.
    min_values: int = 10


@dataclass
class ReportSettings:
    """report.html (the report stage)."""

    #: Another output folder to compare this one against (`corpus report OUT baseline=OUT_B`): the drift section.
    baseline: str | None = None
    #: Bins of each histogram (fixed-size histograms computed in Spark).
    bins: int = 40
    #: Example documents shown per removal reason (chosen by a seeded hash of their id).
    samples_per_reason: int = 3


@dataclass
class Config:
    recipe: str = "fineweb"
    #: "datatrove": decisions identical to datatrove 0.10.1; "fineweb-2024": FineWeb's original code.
    compat: str = "datatrove"
    input: list[str] = field(default_factory=list)
    #: What the inputs are: "warc" (WARC, ARC, WET), "jsonl" or "parquet" (documents extracted elsewhere: the
    #: recipe filters their text), or "auto" (by each file's first bytes). Anything else is refused.
    input_format: str = "auto"
    #: Columns of JSONL/Parquet inputs that hold each document's text and id (url, crawl, fetch_time and
    #: language are taken when present).
    text_column: str = "text"
    id_column: str = "id"
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
    #: Quality classifiers: the classify stage and `corpus train-classifier` (corpus/quality/).
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    gate: GateSettings = field(default_factory=GateSettings)
    annotate: AnnotateSettings = field(default_factory=AnnotateSettings)
    #: Per filter: constructor parameters (see filters/*.py) plus `enabled`.
    filters: dict[str, Any] = field(default_factory=dict)  # checked by _validate_filters, which knows each filter
    #: What `corpus drift` and the report's baseline comparison flag (every field documented above).
    drift: DriftSettings = field(default_factory=DriftSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    #: Write into an output folder that holds something else (files of no run, or a run of other inputs or of
    #: another recipe), replacing that run's shards. Without it such a folder is refused.
    overwrite: bool = False

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
        stages run, where the output goes, whether it may overwrite, how it is audited (`drift`, `report`) and
        how models are gated and labels made (`gate`, `annotate`)."""
        ignored = ("spark", "stages", "output", "storage", "overwrite", "drift", "report", "gate", "annotate")
        relevant = {k: v for k, v in self.to_dict().items() if k not in ignored}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
