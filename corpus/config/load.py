"""Loading a recipe configuration: YAML files plus ``key=value`` overrides, validated in one place.

Defaults live in the dataclasses of `corpus.config.settings` and in the filters' constructors (the FineWeb
values), so a config file only says what differs; conf/fineweb.yaml spells the recipe out for readers. Every key
is checked: a typo or a value of the wrong type stops the run before Spark starts, with a message that names the
key.

YAML is read with bounds, so that a hostile file fails in milliseconds with one line instead of eating memory
for minutes: at most MAX_YAML_BYTES per file, MAX_YAML_DEPTH levels of nesting, MAX_YAML_VALUES values once
aliases are expanded (a "billion laughs" expands a few hundred bytes a billion times), no alias inside itself,
and at most MAX_BASE_FILES files chained by `base:`. Values shown in messages are cut short.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import os
import reprlib
import types
import typing
from typing import Any

import yaml

from corpus.config.settings import (
    CLASSIFIER_KINDS,
    COMMONCRAWL_LISTINGS,
    COMPAT_MODES,
    DECISION_RULES,
    DEDUP_SCOPES,
    EMBEDDING_HEADS,
    PARQUET_CODECS,
    RECIPES,
    SHARD_CHECKS,
    STAGES,
    ClassifierModelSettings,
    Config,
)
from corpus.filters import FILTERS, filter_class
from corpus.filters.language import DEFAULT_THRESHOLD
from corpus.io.documents import INPUT_FORMATS
from corpus.io.warc import WARC_READERS
from corpus.minhash import MinhashParams


class ConfigError(ValueError):
    """A configuration problem, phrased for the user (it names the offending key)."""


MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 64
MAX_YAML_VALUES = 100_000
MAX_BASE_FILES = 16

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 80
_shown.maxlist = _shown.maxtuple = _shown.maxdict = _shown.maxset = 6
_shown.maxlevel = 3


def _show(value: Any) -> str:
    """`repr(value)`, cut short (a value can be huge, or contain itself)."""
    return _shown.repr(value)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with nesting bounded while composing (its composer recurses)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise ConfigError(f"nesting deeper than {MAX_YAML_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_expansion(root: yaml.Node) -> None:
    """Count the values of the tree `root` stands for, each alias expanded, without expanding it (sizes of shared
    nodes are memoized); refuse cycles and trees over MAX_YAML_VALUES values or MAX_YAML_DEPTH levels."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # an explicit stack: chains of aliases are deeper than Python's recursion limit
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            if size[key] > MAX_YAML_VALUES:
                raise ConfigError(f"aliases expand to more than {MAX_YAML_VALUES} values (a YAML bomb?)")
            if height[key] > MAX_YAML_DEPTH:
                raise ConfigError(f"aliases nest deeper than {MAX_YAML_DEPTH} levels")
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError("an alias refers to a value that contains it")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in size)


def load_yaml(text: str, source: str) -> Any:
    """YAML text as Python values, within the bounds above; errors are one-line ConfigErrors naming `source`."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_YAML_BYTES} bytes; a config file is a few kilobytes")
    loader = None
    try:
        loader = _BoundedLoader(text)  # (its reader already rejects unprintable characters)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _suggest(key: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(choices), n=1)
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
            value = load_yaml(raw, key) if raw.strip() else None
        except ConfigError as exc:
            if "is not valid YAML" not in str(exc):
                raise
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
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {_show(value)}")
    if tp is Any:
        return value
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {_show(value)}")
        return [_check_value(f"{key}[{i}]", v, args[0] if args else Any) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {_show(value)}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_show(value)}")
        if args and args[0] is str and (names := [k for k in value if not isinstance(k, str)]):
            raise ConfigError(f"{key}: {_show(names[0])} is not a name (keys are strings)")
        return {k: _check_value(f"{key}.{k}", v, args[1] if args else Any) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {_show(value)}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), list(names), n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {_show(prefix + str(key))}{hint}")
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
    if len(_seen) >= MAX_BASE_FILES:
        raise ConfigError(f"{path}: more than {MAX_BASE_FILES} files chained by `base`")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {' '.join(str(exc).split())}") from None
    data = load_yaml(text, path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    base = data.pop("base", None)
    if base and not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file name, got {_show(base)}")
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
        # Any Spark property passes through; a near miss of our own two keys is a typo, not a property.
        if (close := difflib.get_close_matches(key, ["spark.master", "spark.app_name"], n=1, cutoff=0.8)) and (
            key.count(".") == 1
        ):
            raise ConfigError(f"unknown key {key!r} (did you mean {close[0]!r}?)")
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
    out: dict[str, dict[str, Any]] = {}
    for name, params in filters.items():
        if params is None:
            params = {}
        if name not in FILTERS and (not isinstance(params, dict) or "class" not in params):
            raise ConfigError(
                f"unknown filter 'filters.{name}'{_suggest(name, FILTERS)}; known: {', '.join(FILTERS)} (a filter of "
                f"your own: filters.{name}.class=my_package.my_module:MyFilter)"
            )
        if not isinstance(params, dict):
            raise ConfigError(f"filters.{name}: expected a mapping of parameters, got {_show(params)}")
        try:
            cls = filter_class(name, params)
        except ValueError as exc:
            raise ConfigError(f"filters.{name}.class: {exc}") from None
        signature = inspect.signature(cls.__init__)
        hints = typing.get_type_hints(cls.__init__)
        allowed = {p for p in signature.parameters if p not in ("self", "words")} | {"enabled", "class"}
        checked: dict[str, Any] = {}
        for key, value in params.items():
            if key not in allowed:
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f" (did you mean 'filters.{name}.{close[0]}'?)" if close else ""
                raise ConfigError(f"unknown parameter 'filters.{name}.{key}'{hint}")
            tp = bool if key == "enabled" else str if key == "class" else hints.get(key, Any)
            checked[key] = _check_value(f"filters.{name}.{key}", value, tp)
        out[name] = checked
    return out


def _validate_classifier(config: Config) -> None:
    c = config.classifier
    c.classifiers = {
        str(name): spec if isinstance(spec, ClassifierModelSettings)
        else _build(ClassifierModelSettings, spec, f"classifier.classifiers.{name}.")
        for name, spec in c.classifiers.items()
    }  # fmt: skip
    models = c.models()
    for name, spec in models.items():
        key = f"classifier.classifiers.{name}" if name in c.classifiers else "classifier"
        if not spec.model:
            raise ConfigError(f"{key}.model: no model given (a folder from `corpus train-classifier` or a .bin/.ftz)")
        if spec.threshold is not None and not 0 <= spec.threshold <= 5:
            raise ConfigError(f"{key}.threshold: expected a probability (0-1) or a 0-5 score, got {spec.threshold}")
        if spec.max_tokens <= 0:
            raise ConfigError(f"{key}.max_tokens: must be positive")
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"classifier name {name!r}: use letters, digits, - and _ (it prefixes signal names)")
    if c.model and c.name in c.classifiers:
        raise ConfigError(
            f"classifier.name: {c.name!r} is also in classifier.classifiers; name one of them differently"
        )
    if c.decide is not None and c.decide not in models and c.decide not in DECISION_RULES:
        choices = [*models, *DECISION_RULES]
        hint = _suggest(c.decide, choices)
        raise ConfigError(
            f"classifier.decide: {c.decide!r} is neither a classifier nor a rule{hint}; use one of {', '.join(choices)}"
        )
    if c.decide is None and len(models) > 1:
        raise ConfigError(
            f"classifier.decide: {len(models)} classifiers ({', '.join(models)}); say which decides, or all/any"
        )
    if c.top_fraction is not None:
        if not 0 < c.top_fraction <= 1:
            raise ConfigError(f"classifier.top_fraction: must be in (0, 1], got {c.top_fraction}")
        if c.decide in DECISION_RULES:
            raise ConfigError("classifier.top_fraction: ranks one score; set classifier.decide to a classifier's name")
    if not 0 < c.quantile_error < 0.5:
        raise ConfigError(f"classifier.quantile_error: must be in (0, 0.5), got {c.quantile_error}")
    if c.batch_rows <= 0:
        raise ConfigError("classifier.batch_rows: must be positive")
    if c.kind not in CLASSIFIER_KINDS:
        raise ConfigError(f"classifier.kind: expected one of {', '.join(CLASSIFIER_KINDS)}, got {c.kind!r}")
    t = c.train
    if t.head not in EMBEDDING_HEADS:
        raise ConfigError(f"classifier.train.head: expected one of {', '.join(EMBEDDING_HEADS)}, got {t.head!r}")
    if not (0 < t.validation_fraction < 1 and 0 <= t.test_fraction < 1 and t.validation_fraction + t.test_fraction < 1):
        raise ConfigError("classifier.train.validation_fraction and test_fraction: shares in (0, 1) that sum below 1")
    for name in ("beta", "lr", "c"):
        if getattr(t, name) <= 0:
            raise ConfigError(f"classifier.train.{name}: must be positive")
    for name in ("epoch", "word_ngrams", "dim", "bucket"):
        if getattr(t, name) < 1:
            raise ConfigError(f"classifier.train.{name}: must be at least 1")
    g = config.gate
    if not 0 <= g.min_f1 <= 1 or not 0 <= g.max_drop <= 1:
        raise ConfigError("gate.min_f1 and gate.max_drop: must be between 0 and 1")
    a = config.annotate
    if a.concurrency < 1 or a.retries < 0 or a.rate < 0 or a.timeout <= 0 or a.max_chars <= 0 or a.max_tokens <= 0:
        raise ConfigError(
            "annotate: concurrency >= 1, retries >= 0, rate >= 0; timeout, max_chars, max_tokens positive"
        )


def validate(config: Config) -> Config:
    if config.recipe not in RECIPES:
        raise ConfigError(f"recipe: unknown recipe {config.recipe!r}; known: {', '.join(RECIPES)}")
    if config.compat not in COMPAT_MODES:
        raise ConfigError(f"compat: expected one of {', '.join(COMPAT_MODES)}, got {config.compat!r}")
    for stage in config.stages:
        if stage not in STAGES:
            raise ConfigError(f"stages: unknown stage {stage!r}{_suggest(stage, STAGES)}; known: {', '.join(STAGES)}")
    if config.input_format not in INPUT_FORMATS:
        raise ConfigError(
            f"input_format: expected one of {', '.join(INPUT_FORMATS)}, got {config.input_format!r}"
            f"{_suggest(config.input_format, INPUT_FORMATS)}"
        )
    if config.output_options.compression not in PARQUET_CODECS:
        raise ConfigError(
            f"output_options.compression: {config.output_options.compression!r} is not a Parquet codec"
            f"{_suggest(config.output_options.compression, PARQUET_CODECS)}; known: {', '.join(PARQUET_CODECS)}"
        )
    if config.reader.max_payload_bytes <= 0:
        raise ConfigError("reader.max_payload_bytes: must be positive")
    for code in config.reader.allowed_http_status:
        if not ((code.isdigit() and len(code) == 3) or (len(code) == 3 and code[0].isdigit() and code[1:] == "xx")):
            raise ConfigError(f"reader.allowed_http_status: {code!r} is neither a status code nor a range like 2xx")
    if config.reader.warc_reader not in WARC_READERS:
        raise ConfigError(
            f"reader.warc_reader: {config.reader.warc_reader!r} is not a reader"
            f"{_suggest(config.reader.warc_reader, WARC_READERS)}; known: {', '.join(WARC_READERS)}"
        )
    if config.extract.cpu_time_limit < 0:
        raise ConfigError("extract.cpu_time_limit: must be >= 0")
    if config.extract.files_per_job < 0:
        raise ConfigError("extract.files_per_job: must be >= 0 (0: 4 x the application's cores, at least 64)")
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
            raise ConfigError(f"storage.options.{protocol}: expected a mapping of fsspec options, got {_show(options)}")
    if config.output_options.check_shards not in SHARD_CHECKS:
        raise ConfigError(
            f"output_options.check_shards: expected one of {', '.join(SHARD_CHECKS)}, "
            f"got {_show(config.output_options.check_shards)}"
        )
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
    drift = config.drift
    if drift.sample_size <= 0 or config.report.bins <= 0 or config.report.samples_per_reason < 0:
        raise ConfigError("drift.sample_size and report.bins must be positive, report.samples_per_reason >= 0")
    for name in ("ks", "wasserstein", "psi", "removal_rate", "kept"):
        if getattr(drift, name) < 0:
            raise ConfigError(f"drift.{name}: a threshold must be >= 0, got {getattr(drift, name)}")
    config.filters = _validate_filters(config.filters)
    _validate_classifier(config)
    try:  # the manifest records the config as JSON, with its hash: YAML dates, bytes or mixed keys cannot be
        json.dumps(config.to_dict(), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a value cannot be recorded in the manifest (JSON): {exc}") from None
    language = config.filters.get("language", {})
    threshold = language.get("threshold", DEFAULT_THRESHOLD)
    if not 0 <= threshold <= 1:
        raise ConfigError(f"filters.language.threshold: must be between 0 and 1, got {threshold}")
    return config


def minhash_params(config: Config) -> MinhashParams:
    return MinhashParams(**dataclasses.asdict(config.dedup.minhash))


def config_from_dict(data: dict[str, Any]) -> Config:
    """A validated Config from a plain dict (e.g. `Config.to_dict()` shipped to Spark workers)."""
    return validate(_build(Config, data, ""))


def load_config(path: str | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    data = read_yaml(path) if path else {}
    for assignment in overrides:
        apply_override(data, assignment)
    return config_from_dict(data)
