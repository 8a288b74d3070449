"""C4's line and document rules (Raffel et al. 2020), as datatrove's C4QualityFilter applies them for FineWeb.

This filter edits the text: lines that fail a line rule are removed, and what remains is kept if it still holds
enough sentences. FineWeb turns the terminal-punctuation rule off (`filter_no_terminal_punct=False`).
"""

from __future__ import annotations

import re
from typing import ClassVar

from corpus.document import Document
from corpus.filters.base import KEEP, Filter, FilterResult
from corpus.text import Splitter, splitter

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


class C4QualityFilter(Filter):
    name = "c4"
    THRESHOLDS: ClassVar[dict[str, tuple[str, ...]]] = {"sentences": ("min_num_sentences",)}

    def __init__(
        self,
        remove_citations: bool = True,
        filter_no_terminal_punct: bool = False,
        min_num_sentences: int = 5,
        min_words_per_line: int = 3,
        max_word_length: int = 1000,
        filter_lorem_ipsum: bool = True,
        filter_javascript: bool = True,
        filter_curly_bracket: bool = True,
        filter_policy: bool = True,
        words: Splitter | None = None,
    ) -> None:
        """-1 disables `min_num_sentences`, `min_words_per_line` and `max_word_length`, as in datatrove."""
        self.remove_citations = remove_citations
        self.filter_no_terminal_punct = filter_no_terminal_punct
        self.min_num_sentences = min_num_sentences
        self.min_words_per_line = min_words_per_line
        self.max_word_length = max_word_length
        self.filter_lorem_ipsum = filter_lorem_ipsum
        self.filter_javascript = filter_javascript
        self.filter_curly_bracket = filter_curly_bracket
        self.filter_policy = filter_policy
        self.splitter = words or splitter()

    def filter(self, doc: Document) -> FilterResult:
        lines = (doc.text or "").splitlines()
        num_sentences = 0
        kept_lines: list[str] = []
        for line in lines:
            line = line.strip()
            words = line.split()
            if self.max_word_length != -1 and max(map(len, words), default=0) > self.max_word_length:
                continue
            if self.remove_citations:
                line = CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
                continue
            if len(words) < self.min_words_per_line:
                continue
            lowered = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in lowered:
                return False, "lorem_ipsum"
            if self.filter_javascript and "javascript" in lowered:
                continue
            if self.filter_curly_bracket and "{" in line:
                return False, "curly_bracket"
            if self.filter_policy and any(p in lowered for p in POLICY_SUBSTRINGS):
                continue
            if self.min_num_sentences != -1:
                num_sentences += self.splitter.count_sentences(line)
            kept_lines.append(line)
        self.signal(doc, "lines_removed_ratio", 1 - len(kept_lines) / len(lines) if lines else 0.0)
        self.signal(doc, "sentences", num_sentences)
        if num_sentences < self.min_num_sentences:
            return False, "too_few_sentences"
        doc.text = "\n".join(kept_lines).strip()
        return KEEP
