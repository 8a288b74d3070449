"""Language filter: fastText LID-176 labels every document, and documents not in the configured languages with a
probability strictly above the threshold are dropped (datatrove's LanguageFilter). The PDF recipe applies the
same decision (`LanguageFilter.decide`) to page-averaged scores."""

from __future__ import annotations

from collections.abc import Mapping

from corpus.document import Document
from corpus.filters.base import KEEP, Filter, FilterResult
from corpus.lid import language_identifier

#: FineWeb's language threshold: a document is kept when a wanted language scores strictly above it.
DEFAULT_THRESHOLD = 0.65


class LanguageFilter(Filter):
    name = "language"

    def __init__(
        self,
        languages: list[str] | None = ("en",),
        threshold: float = DEFAULT_THRESHOLD,
        model: str | None = None,
        newline_replacement: str = " ",
        top_k: int = -1,
    ) -> None:
        """`languages=None` keeps any language whose top score clears the threshold. `newline_replacement` and
        `top_k` are datatrove's (" ", all labels); FineWeb's 2024 code used "" and 1."""
        self.languages = tuple(languages) if languages else None
        self.threshold = threshold
        self.model = model
        self.newline_replacement = newline_replacement
        self.top_k = top_k
        self.lid = language_identifier(model)

    def filter(self, doc: Document) -> FilterResult:
        pairs = self.lid.predict(doc.text or "", k=self.top_k, newline=self.newline_replacement)
        if not pairs:
            return False, "no_prediction"
        doc.language, doc.language_score = pairs[0]
        return self.decide(dict(pairs), doc.language)

    def decide(self, scores: Mapping[str, float], best: str) -> FilterResult:
        """Keep or drop a document whose label probabilities are `scores` and whose top label is `best`."""
        if self.languages is None:
            return KEEP if scores[best] > self.threshold else (False, "low_score")
        if any(scores.get(lang, 0.0) > self.threshold for lang in self.languages):
            return KEEP
        return False, ("low_score" if best in self.languages else "other_language")
