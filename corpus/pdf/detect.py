"""PDF detection on the WARC side, the one definition for the whole project: which records hold a PDF (by MIME
type, URL or the `%PDF-` magic) and whether a PDF payload was cut short. Light on purpose (no PyMuPDF): it runs on
every record."""

from __future__ import annotations

from urllib.parse import urlsplit

PDF_MIME_TYPES = frozenset(
    {"application/pdf", "application/x-pdf", "application/acrobat", "applications/vnd.pdf", "text/pdf"}
)
PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024  # Acrobat accepts the header anywhere in the first 1024 bytes
EOF_WINDOW = 2048  # "%%EOF" is the last line; writers may append a little whitespace or junk after it


def is_pdf_record(payload_type: str | None, url: str | None, head_bytes: bytes = b"") -> bool:
    """A WARC record holds a PDF: by MIME type (FinePDFs' list; parameters and case ignored), by a URL path
    ending in .pdf, or by the `%PDF-` magic near the start of the payload."""
    if payload_type and payload_type.split(";", 1)[0].strip().lower() in PDF_MIME_TYPES:
        return True
    if url:
        try:
            if urlsplit(url).path.lower().endswith(".pdf"):
                return True
        except ValueError:
            pass
    return PDF_MAGIC in head_bytes[:MAGIC_WINDOW]


def truncation_reason(
    data: bytes, warc_truncated_header: str | None = None, declared_content_length: int | None = None
) -> str | None:
    """Why a PDF payload is incomplete, or None: `warc_truncated` (the crawler says so: WARC-Truncated),
    `short_payload` (fewer bytes than the HTTP Content-Length declared), `no_eof` (no %%EOF marker at the end,
    where every complete PDF has one). A truncated PDF should be refetched, not extracted: MuPDF's repair
    recovers a prefix of some files and nothing of others."""
    if warc_truncated_header:
        return "warc_truncated"
    if declared_content_length is not None and len(data) < declared_content_length:
        return "short_payload"
    if b"%%EOF" not in data[-EOF_WINDOW:]:
        return "no_eof"
    return None
