"""The FineWeb HTML recipe over one input file: records in, documents out (kept, removed or skipped).

    URL filter -> charset decoding -> trafilatura -> fastText LID -> Gopher repetition -> Gopher quality
    -> C4 -> FineWeb quality

Plain Python: the Spark job calls `FineWebRecipe.process_file` inside a task, tests call it directly. Nothing
raises out of `process_file`: unreadable records, undecodable or oversized payloads, extractor failures and
filter errors all become removed documents whose `reason` starts with ``error:``.
"""

from __future__ import annotations

from corpus.config import Config
from corpus.document import Document
from corpus.filters import Filter
from corpus.html.charset import decode_html
from corpus.html.extract import HtmlExtractor, clean_text
from corpus.html.limits import CpuTimeExceeded
from corpus.io.warc import WarcRecord, sniff_type
from corpus.recipes.loop import Recipe
from corpus.schema import STATUS_KEPT, STATUS_SKIPPED

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


class FineWebRecipe(Recipe):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.text_filters: list[Filter] = [self.language_filter] if self.language_filter is not None else []
        self.text_filters += self.quality_filters
        ex = config.extract
        self.extractor = HtmlExtractor(
            favor_precision=ex.favor_precision,
            include_comments=ex.include_comments,
            include_tables=ex.include_tables,
            deduplicate=ex.deduplicate,
            cpu_time_limit=ex.cpu_time_limit,
            fast_xpath=ex.fast_xpath,
        )

    def start_file(self) -> None:
        self.extractor.start_file()  # trafilatura's repeated-segment memory is per file

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
            try:
                doc.text = self.extractor.extract(decoded.text)
            except CpuTimeExceeded:
                return self.remove(doc, "extract", "error:cpu_time_limit")
            except Exception as exc:
                return self.remove(doc, "extract", exc)
        if not doc.text:
            return self.remove(doc, "extract", "empty")
        removed = self.apply_filters(doc, self.text_filters)
        if removed is not None:
            return removed
        doc.status = STATUS_KEPT
        return doc
