"""Document filters and their registry.

Each filter is a small class (see `base.Filter`) whose thresholds are named constructor parameters with
FineWeb's values as defaults, and whose `filter(doc)` returns ``(keep, reason)``. `FILTERS` maps a config name
(``filters.<name>.*`` in the YAML, and the `removed_by` value of what the filter drops) to its class, in the
order the recipes apply them; the config layer validates ``filters.*`` against it.
"""

from __future__ import annotations

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


def configured_thresholds(filters: dict) -> dict[str, list[float]]:
    """`<filter>.<signal>` -> its thresholds under a config's `filters` section (defaults where it says nothing)."""
    out: dict[str, list[float]] = {}
    for name, cls in FILTERS.items():
        out.update(cls.thresholds({k: v for k, v in (filters.get(name) or {}).items() if k != "enabled"}))
    return out


__all__ = ["FILTERS", "KEEP", "Filter", "FilterResult", "configured_thresholds"]
