"""Document filters. Each is a small class whose thresholds are named constructor parameters with FineWeb's
values as defaults, and whose `filter(doc)` returns ``(keep, reason)``; the class's `name` is the `removed_by`
value of what it drops. Filters record the quantities they compute in ``doc.signals`` as ``<name>.<signal>``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from corpus.document import Document

FilterResult = tuple[bool, str | None]


class Filter(ABC):
    #: Config key and `removed_by` value.
    name: ClassVar[str]
    #: Signal (without the ``<name>.`` prefix) -> the constructor parameters that bound it: what the report
    #: draws on the signal's histogram.
    THRESHOLDS: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def thresholds(cls, params: dict[str, Any]) -> dict[str, list[float]]:
        """``<name>.<signal>`` -> its thresholds under `params` (the config's `filters.<name>`, over the
        constructor's defaults), without building the filter (some load models or blocklists)."""
        defaults = {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        values = {**defaults, **params}
        out: dict[str, list[float]] = {}
        for signal, names in cls.THRESHOLDS.items():
            found = [
                float(values[n])
                for n in names
                if isinstance(values.get(n), int | float) and not isinstance(values[n], bool) and values[n] != -1
            ]  # None and -1 disable a bound
            if found:
                out[f"{cls.name}.{signal}"] = found
        return out

    @abstractmethod
    def filter(self, doc: Document) -> FilterResult:
        """Return ``(True, None)`` to keep the document, ``(False, reason)`` to drop it."""

    def signal(self, doc: Document, key: str, value: float) -> None:
        doc.signals[f"{self.name}.{key}"] = float(value)


KEEP: FilterResult = (True, None)
