"""Document filters and their registry.

Each filter is a small class (see `base.Filter`) whose thresholds are named constructor parameters with
FineWeb's values as defaults, and whose `filter(doc)` returns ``(keep, reason)``. `FILTERS` maps a config name
(``filters.<name>.*`` in the YAML, and the `removed_by` value of what the filter drops) to its class, in the
order the recipes apply them; the config layer validates ``filters.*`` against it.
"""

from __future__ import annotations

import importlib

from corpus.filters.base import KEEP, Filter, FilterResult
from corpus.filters.c4 import C4QualityFilter
from corpus.filters.fineweb import FineWebQualityFilter
from corpus.filters.gopher import GopherQualityFilter, GopherRepetitionFilter
from corpus.filters.language import LanguageFilter
from corpus.filters.url import URLFilter

#: The recipe's filters, in the order FineWeb applies them (the URL filter runs before extraction).
FILTERS: dict[str, type[Filter]] = {
    "url": URLFilter,
    "language": LanguageFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "gopher_quality": GopherQualityFilter,
    "c4": C4QualityFilter,
    "fineweb_quality": FineWebQualityFilter,
}


def import_filter(path: str) -> type[Filter]:
    """A filter class named by import path, `package.module:ClassName` (a user's own filter: the config names it
    as ``filters.<name>.class``). Raises ValueError saying what is wrong."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"{path!r} is not an import path like my_package.my_module:MyFilter")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} ({exc}); is it on PYTHONPATH?") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Filter)):
        raise ValueError(f"{path!r} is not a corpus.filters.Filter subclass")
    return cls


def filter_class(name: str, params: dict) -> type[Filter]:
    """The class of filter `name`: a user's (`class` in its parameters) or a built-in one."""
    if "class" in params:
        return import_filter(str(params["class"]))
    return FILTERS[name]


def configured_thresholds(filters: dict) -> dict[str, list[float]]:
    """`<filter>.<signal>` -> its thresholds under a config's `filters` section (defaults where it says nothing)."""
    out: dict[str, list[float]] = {}
    for name, cls in FILTERS.items():
        out.update(cls.thresholds({k: v for k, v in (filters.get(name) or {}).items() if k != "enabled"}))
    return out


__all__ = ["FILTERS", "KEEP", "Filter", "FilterResult", "configured_thresholds", "filter_class", "import_filter"]
