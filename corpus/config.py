"""Recipe configuration: YAML files plus ``key=value`` overrides, validated in one place.

Defaults live in the dataclasses below and in the filters' constructors (the FineWeb values), so a config file
only says what differs; conf/fineweb.yaml spells the recipe out for readers. Every key is checked: a typo or a
value of the wrong type stops the run before Spark starts, with a message that names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import inspect
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from corpus.refetch import RefetchSettings

COMPAT_MODES = ("datatrove", "fineweb-2024")
RECIPES = ("fineweb", "finepdfs")
#: Every stage, in the order `corpus run` runs them; `refetch` is in the PDF recipe only.
STAGES = ("refetch", "extract", "stats", "dedup", "tokenize", "report")
DEFAULT_STAGES = ("extract", "stats", "dedup", "tokenize", "report")
DEDUP_SCOPES = ("crawl", "all")
COMMONCRAWL_LISTINGS = ("warc", "wet", "wat")
#: storage.options keys whose values are credentials (redacted in manifest.json)
SECRET_KEY = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)


class ConfigError(ValueError):
    """A configuration problem, phrased for the user (it names the offending key)."""


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
    #: CPU seconds one page may take before it is removed as `error:cpu_time_limit` (0 disables).
    cpu_time_limit: float = 30.0
    #: Evaluate trafilatura's pruning XPaths with corpus.trafilatura_speedups: same output, half the CPU.
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
    commoncrawl_url: str = "https://data.commoncrawl.org/"
    commoncrawl_listing: str = "warc"


@dataclass
class PdfSettings:
    """The PDF recipe's extraction (corpus/pdf.py), each PDF in a sandboxed process (corpus/sandbox.py)."""

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


@dataclass
class OutputSettings:
    compression: str = "zstd"
    #: Rows per Arrow batch handed from the Python workers to Spark's writer.
    batch_rows: int = 256


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
    #: How truncated PDFs are fetched again from their origin (corpus/refetch.py; every field documented there).
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


# -- loading ----------------------------------------------------------------------------------------------------
def _suggest(key: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class _CommandLine(str):
    """A `key=value` value as typed: read as YAML, except where the key wants a string (so `eos=[SEP]` is the
    string "[SEP]", not a list)."""


def _wants_string(tp: Any) -> bool:
    return tp is str or (typing.get_origin(tp) in (typing.Union, types.UnionType) and str in typing.get_args(tp))


def _check_value(key: str, value: Any, tp: Any) -> Any:
    """Check (and gently coerce) `value` against a type annotation; raise ConfigError naming `key`."""
    if isinstance(value, _CommandLine):
        raw = str(value)
        if _wants_string(tp) and raw.strip() not in ("", "null", "~"):
            return raw
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if tp is Any:
        return value
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_check_value(f"{key}[{i}]", v, args[0] if args else Any) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {k: _check_value(f"{key}.{k}", v, args[1] if args else Any) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), list(names), n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {prefix + str(key)!r}{hint}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_value(prefix + key, value, tp)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # checks in __post_init__ (e.g. RefetchSettings)
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from None


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A config file as a dict; a top-level `base: other.yaml` (relative to the file) is merged underneath."""
    path = os.path.abspath(path)
    if path in _seen:
        raise ConfigError(f"{path}: `base` includes itself")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    base = data.pop("base", None)
    if base:
        data = _merge(read_yaml(os.path.join(os.path.dirname(path), str(base)), (*_seen, path)), data)
    return data


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """`a.b.c=value` (value parsed as YAML). `spark.<property>=value` sets a Spark property."""
    if "=" not in assignment:
        raise ConfigError(f"expected key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    value = _CommandLine(raw)
    if key.startswith("spark.") and key not in ("spark.master", "spark.app_name"):
        data.setdefault("spark", {}).setdefault("conf", {})[key] = raw
        return
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _validate_filters(filters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from corpus.pipeline import FILTERS

    out: dict[str, dict[str, Any]] = {}
    for name, params in filters.items():
        if name not in FILTERS:
            raise ConfigError(f"unknown filter 'filters.{name}'{_suggest(name, FILTERS)}; known: {', '.join(FILTERS)}")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError(f"filters.{name}: expected a mapping of parameters, got {params!r}")
        signature = inspect.signature(FILTERS[name].__init__)
        hints = typing.get_type_hints(FILTERS[name].__init__)
        allowed = {p for p in signature.parameters if p not in ("self", "words")} | {"enabled"}
        checked: dict[str, Any] = {}
        for key, value in params.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f" (did you mean 'filters.{name}.{close[0]}'?)" if close else ""
                raise ConfigError(f"unknown parameter 'filters.{name}.{key}'{hint}")
            tp = bool if key == "enabled" else hints.get(key, Any)
            checked[key] = _check_value(f"filters.{name}.{key}", value, tp)
        out[name] = checked
    return out


def validate(config: Config) -> Config:
    if config.recipe not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {config.recipe!r}; known: {', '.join(RECIPES)}")
    if config.compat not in COMPAT_MODES:
        raise ConfigError(f"compat: expected one of {', '.join(COMPAT_MODES)}, got {config.compat!r}")
    for stage in config.stages:
        if stage not in STAGES:
            raise ConfigError(f"stages: unknown stage {stage!r}{_suggest(stage, STAGES)}; known: {', '.join(STAGES)}")
    if config.reader.max_payload_bytes <= 0:
        raise ConfigError("reader.max_payload_bytes: must be positive")
    for code in config.reader.allowed_http_status:
        if not ((code.isdigit() and len(code) == 3) or (len(code) == 3 and code[0].isdigit() and code[1:] == "xx")):
            raise ConfigError(f"reader.allowed_http_status: {code!r} is neither a status code nor a range like 2xx")
    if config.extract.cpu_time_limit < 0:
        raise ConfigError("extract.cpu_time_limit: must be >= 0")
    if config.limit < 0:
        raise ConfigError("limit: must be >= 0")
    st = config.storage
    if st.retries < 0 or st.retry_backoff < 0 or st.block_size <= 0:
        raise ConfigError("storage.retries and storage.retry_backoff must be >= 0, storage.block_size positive")
    if st.commoncrawl_listing not in COMMONCRAWL_LISTINGS:
        raise ConfigError(
            f"storage.commoncrawl_listing: expected one of {', '.join(COMMONCRAWL_LISTINGS)}, "
            f"got {st.commoncrawl_listing!r}"
        )
    for protocol, options in st.options.items():
        if not isinstance(options, dict):
            raise ConfigError(f"storage.options.{protocol}: expected a mapping of fsspec options, got {options!r}")
    if config.dedup.scope not in DEDUP_SCOPES:
        raise ConfigError(f"dedup.scope: expected one of {', '.join(DEDUP_SCOPES)}, got {config.dedup.scope!r}")
    if config.tokenize.shard_tokens <= 0 or config.tokenize.row_group_tokens <= 0:
        raise ConfigError("tokenize.shard_tokens and tokenize.row_group_tokens must be positive")
    if not config.tokenize.tokenizer.startswith(("tiktoken:", "hf:")):
        raise ConfigError(
            f"tokenize.tokenizer: {config.tokenize.tokenizer!r} is not a tokenizer name; use tiktoken:cl100k_base, "
            "tiktoken:o200k_base, hf:/path/to/tokenizer.json or hf:<hub name>"
        )
    try:
        minhash_params(config).validate()
    except ValueError as exc:
        raise ConfigError(f"dedup.minhash.{exc}") from None
    config.filters = _validate_filters(config.filters)
    language = config.filters.get("language", {})
    threshold = language.get("threshold", 0.65)
    if not 0 <= threshold <= 1:
        raise ConfigError(f"filters.language.threshold: must be between 0 and 1, got {threshold}")
    return config


def minhash_params(config: Config):
    from corpus.minhash import MinhashParams

    return MinhashParams(**dataclasses.asdict(config.dedup.minhash))


def config_from_dict(data: dict[str, Any]) -> Config:
    """A validated Config from a plain dict (e.g. `Config.to_dict()` shipped to Spark workers)."""
    return validate(_build(Config, data, ""))


def load_config(path: str | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    data = read_yaml(path) if path else {}
    for assignment in overrides:
        apply_override(data, assignment)
    return config_from_dict(data)
