"""The FineWeb HTML recipe over one input file: records in, documents out (kept, removed or skipped).

    URL filter -> charset decoding -> trafilatura -> fastText LID -> Gopher repetition -> Gopher quality
    -> C4 -> FineWeb quality

Plain Python: the Spark job calls `FineWebRecipe.process_file` inside a task, tests call it directly. Nothing
raises out of `process_file`: unreadable records, undecodable or oversized payloads, extractor failures and
filter errors all become removed documents whose `reason` starts with ``error:``.

trafilatura runs in a sandboxed worker process (corpus.sandbox) whenever `extract.cpu_time_limit` is set: a page
that spins inside lxml's C code never returns to Python for the in-process budget (corpus.html.limits) to stop
it, so the kernel does (RLIMIT_CPU), with a wall-clock limit behind it. A fresh worker per input file keeps
trafilatura's repeated-segment memory per file. The cost is one round trip per page (measured in
docs/RELIABILITY.md). Pages with an element of thousands of attributes are refused before parsing.
"""

from __future__ import annotations

from corpus.config import Config
from corpus.document import Document
from corpus.html.charset import decode_html
from corpus.html.extract import HtmlExtractor, clean_text, extract_html
from corpus.html.limits import CpuTimeExceeded, too_many_attributes
from corpus.io.warc import WarcRecord, sniff_type
from corpus.recipes.loop import STATUS_PENDING, Recipe
from corpus.sandbox import Failed, Ok, Sandbox, removal_reason
from corpus.schema import STATUS_SKIPPED

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: Decoded.source values for which a UTF-8 page's text is the strict decoding of the whole payload (not "bom",
#: which drops the mark, nor "replaced").
UTF8_AS_IS = frozenset({"http", "meta", "utf8"})
#: Address space an extraction worker may add (a 10 MiB page parses in a few hundred MB).
EXTRACT_MEMORY_LIMIT = 2 << 30
#: The wall-clock limit per page, as a multiple of its CPU budget (a loaded machine gives a worker a fraction of a
#: core): the last resort, for a page that somehow neither uses CPU nor returns.
WALL_CLOCK_FACTOR = 4


class FineWebRecipe(Recipe):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.text_filters = [self.language_filter] if self.language_filter is not None else []
        self.text_filters += self.quality_filters
        ex = config.extract
        self.extract_options = {
            "favor_precision": ex.favor_precision,
            "include_comments": ex.include_comments,
            "include_tables": ex.include_tables,
            "deduplicate": ex.deduplicate,
            "cpu_time_limit": ex.cpu_time_limit,
            "fast_xpath": ex.fast_xpath,
        }
        #: in-process extraction, when no CPU limit is asked for (else a sandbox, started at the first page)
        self.extractor = None if ex.cpu_time_limit else HtmlExtractor(**self.extract_options)
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            limit = self.config.extract.cpu_time_limit
            self._sandbox = Sandbox(
                extract_html,
                timeout=max(WALL_CLOCK_FACTOR * limit, 10.0),
                cpu_limit=limit,
                memory_limit=EXTRACT_MEMORY_LIMIT,
                max_calls=None,  # a worker lives for one file (start_file), so that `deduplicate` is per file
                max_rss=None,
                preload=["trafilatura", "corpus.html.speedups"],
            )
        return self._sandbox

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def start_file(self) -> None:
        # trafilatura's repeated-segment memory is per file: a fresh worker, or a cleared cache in-process
        if self.extractor is not None:
            self.extractor.start_file()
        elif self._sandbox is not None:
            self._sandbox.recycle()

    def extract(self, doc: Document, html: str, utf8: bytes | None = None) -> Document | str | None:
        """The page's main text (None: trafilatura found none), or `doc` removed with the reason it could not be
        extracted. `utf8`: the payload when `html` is exactly its strict UTF-8 decoding (it is sent to the
        sandbox as it is, sparing an encoding of the page)."""
        if too_many_attributes(html):
            return self.remove(doc, "extract", "error:too_many_attributes")
        if self.extractor is not None:
            try:
                return self.extractor.extract(html)
            except CpuTimeExceeded:
                return self.remove(doc, "extract", "error:cpu_time_limit")
            except Exception as exc:
                return self.remove(doc, "extract", exc)
        outcome = self.sandbox.run(html if utf8 is None else utf8, **self.extract_options)
        if isinstance(outcome, Ok):
            return outcome.value
        if isinstance(outcome, Failed) and outcome.type == "CpuTimeExceeded":  # the limit raised inside the step
            return self.remove(doc, "extract", "error:cpu_time_limit")
        return self.remove(doc, "extract", removal_reason(outcome))

    def process_record(self, rec: WarcRecord, doc: Document) -> Document:
        if rec.rec_type == "revisit":
            doc.status, doc.reason = STATUS_SKIPPED, "revisit"
            return doc
        limit = self.config.reader.max_payload_bytes
        is_text = rec.rec_type == "conversion" and rec.payload_type == "text/plain"  # WET: text already extracted
        if rec.payload_type not in HTML_TYPES and not is_text:
            if rec.payload_type is not None:
                doc.status, doc.reason = STATUS_SKIPPED, f"content_type:{rec.payload_type}"
                return doc
            try:
                payload, too_large = rec.payload(limit)
            except Exception as exc:
                return self.remove(doc, "reader", exc)
            doc.content_type = sniff_type(payload)
            if doc.content_type not in HTML_TYPES:
                doc.status, doc.reason = STATUS_SKIPPED, f"content_type:{doc.content_type or 'unknown'}"
                return doc
        else:
            payload = None
        if (removed := self.screen(rec, doc)) is not None:
            return removed
        if payload is None:
            try:
                payload, too_large = rec.payload(limit)
            except Exception as exc:
                return self.remove(doc, "reader", exc)
        if too_large:
            return self.remove(doc, "reader", "error:payload_too_large")
        if (defect := rec.defect()) is not None:  # cut short, a lying length, ... (Common Crawl's own cuts are kept)
            return self.remove(doc, "reader", f"error:{defect}")

        decoded = decode_html(payload, rec.http_content_type)
        doc.charset = decoded.label
        if is_text:
            doc.text = clean_text(decoded.text).strip() or None
        else:
            as_is = type(payload) is bytes and decoded.charset == "utf-8" and decoded.source in UTF8_AS_IS
            utf8 = payload if as_is else None
            text = self.extract(doc, decoded.text, utf8)
            if isinstance(text, Document):
                return text
            doc.text = text
        if not doc.text:
            return self.remove(doc, "extract", "empty")
        doc.status = STATUS_PENDING  # the loop runs text_filters over it, with the documents around it
        return doc
