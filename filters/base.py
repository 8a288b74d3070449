"""Document filters. Each is a small class whose thresholds are named constructor parameters with FineWeb's
values as defaults, and whose `filter(doc)` returns ``(keep, reason)``; the class's `name` is the `removed_by`
value of what it drops. Filters record the quantities they compute in ``doc.signals`` as ``<name>.<signal>``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from corpus.document import Document

FilterResult = tuple[bool, str | None]


class Filter(ABC):
    #: Config key and `removed_by` value.
    name: ClassVar[str]

    @abstractmethod
    def filter(self, doc: Document) -> FilterResult:
        """Return ``(True, None)`` to keep the document, ``(False, reason)`` to drop it."""

    def signal(self, doc: Document, key: str, value: float) -> None:
        doc.signals[f"{self.name}.{key}"] = float(value)


KEEP: FilterResult = (True, None)
