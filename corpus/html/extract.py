"""Main-content extraction from HTML with trafilatura, configured as datatrove runs it for FineWeb."""

from __future__ import annotations

import sys
import unicodedata
from typing import Any

from corpus.html.limits import cpu_budget


def clean_text(text: str) -> str:
    """NFC, and no lone surrogates (HTML character references can produce them; UTF-8 cannot hold them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return unicodedata.normalize("NFC", text)


class HtmlExtractor:
    """`trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=True)`, datatrove's
    call, under a CPU-time budget.

    `deduplicate` is trafilatura's own filter of text segments seen more than twice in recent documents. Its
    memory lives in the worker process, so `start_file()` clears it at every input file: each shard's output
    then depends only on that file, as in datatrove with one file per task, whatever else ran in the worker.
    """

    def __init__(
        self,
        favor_precision: bool = True,
        include_comments: bool = False,
        include_tables: bool = True,
        deduplicate: bool = True,
        cpu_time_limit: float | None = 30.0,
        fast_xpath: bool = True,
    ) -> None:
        """`fast_xpath` applies corpus.html.speedups (same output, about half the CPU) when the installed
        trafilatura is the version it was verified on; otherwise trafilatura runs as it is."""
        import trafilatura
        from trafilatura.deduplication import LRU_TEST

        if fast_xpath:
            from corpus.html import speedups

            if trafilatura.__version__ == speedups.VERIFIED_VERSION:
                speedups.install()
            else:
                print(
                    f"corpus: trafilatura {trafilatura.__version__} is not the version the XPath speedups were "
                    f"verified on ({speedups.VERIFIED_VERSION}); extracting without them",
                    file=sys.stderr,
                )

        self._extract = trafilatura.extract
        self._dedup_cache = LRU_TEST
        self.options = {
            "favor_precision": favor_precision,
            "include_comments": include_comments,
            "include_tables": include_tables,
            "deduplicate": deduplicate,
        }
        self.cpu_time_limit = cpu_time_limit

    def start_file(self) -> None:
        self._dedup_cache.clear()

    def extract(self, html: str) -> str | None:
        """Extracted text, or None when trafilatura finds no main content. Raises `CpuTimeExceeded`."""
        with cpu_budget(self.cpu_time_limit):
            text = self._extract(html, **self.options)
        if not text:
            return None
        text = clean_text(text)
        return text if text.strip() else None


_extractors: dict[tuple, HtmlExtractor] = {}


def extract_html(html: str | bytes, **options: Any) -> str | None:
    """`HtmlExtractor(**options).extract(html)` with one extractor per set of options in this process: the function
    a sandboxed worker runs (corpus.sandbox; a fresh worker per input file keeps `deduplicate` per file). `html`
    may be valid UTF-8 bytes, which cross the sandbox's socket as they are (a str is encoded to be pickled)."""
    if isinstance(html, bytes):
        html = html.decode("utf-8")
    key = tuple(sorted(options.items()))
    extractor = _extractors.get(key)
    if extractor is None:
        extractor = _extractors[key] = HtmlExtractor(**options)
    return extractor.extract(html)
