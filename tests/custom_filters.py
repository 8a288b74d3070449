"""A filter of a user's own, named in configs by import path (`tests.custom_filters:ShortDocuments`)."""

from __future__ import annotations

from corpus.document import Document
from corpus.filters import KEEP, Filter, FilterResult


class ShortDocuments(Filter):
    name = "short_documents"

    def __init__(self, min_words: int = 20) -> None:
        """Drop documents with fewer than `min_words` whitespace-separated words."""
        self.min_words = min_words

    def filter(self, doc: Document) -> FilterResult:
        words = len((doc.text or "").split())
        self.signal(doc, "words", words)
        return KEEP if words >= self.min_words else (False, "too_short")
