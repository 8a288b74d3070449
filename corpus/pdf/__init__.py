"""PDF to text on CPU: PDF records told apart in WARC files, and their text extracted page by page over PyMuPDF
(the whole design is in the docstring of `router`). Importing the package is cheap: PyMuPDF is imported on the
first extraction.

- `detect`: which WARC records hold a PDF, and whether a PDF payload is truncated (no PyMuPDF).
- `clean`: text hygiene (ligatures, TeX accents, odd spaces, invisible and garbled characters).
- `layout`: the page model, reading order (a recursive XY-cut) and paragraphs; the per-page route names.
- `margins`: running headers and footers, and bare page numbers.
- `tables`: tables from rules, booktabs rules and aligned cells, as Markdown.
- `ocr`: OCR on CPU (RapidOCR's bundled PP-OCR models, or Tesseract inside MuPDF), one page at a time.
- `router`: `extract_pdf` and `PdfExtraction`: the per-page router, the document's status (OK, EMPTY, ...).
"""

from corpus.pdf.detect import EOF_WINDOW, MAGIC_WINDOW, PDF_MAGIC, PDF_MIME_TYPES, is_pdf_record, truncation_reason
from corpus.pdf.ocr import AUTO, ENGINES, OcrPage, ocr_page, resolve_engine, tessdata_dir, warm_up
from corpus.pdf.router import (
    BROKEN,
    EMPTY,
    ENCRYPTED,
    NEEDS_OCR,
    NOT_PDF,
    OK,
    PdfExtraction,
    extract_pdf,
)

__all__ = [
    "AUTO",
    "BROKEN",
    "EMPTY",
    "ENCRYPTED",
    "ENGINES",
    "EOF_WINDOW",
    "MAGIC_WINDOW",
    "NEEDS_OCR",
    "NOT_PDF",
    "OK",
    "PDF_MAGIC",
    "PDF_MIME_TYPES",
    "OcrPage",
    "PdfExtraction",
    "extract_pdf",
    "is_pdf_record",
    "ocr_page",
    "resolve_engine",
    "tessdata_dir",
    "truncation_reason",
    "warm_up",
]
