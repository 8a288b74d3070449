"""corpus.pdf: the PDF extractor on generated PDFs (built here with PyMuPDF, no binary fixtures) and on the real
PDFs of ../shared/data/pdf (marked `shared`, skipped when that folder is absent): hand-annotated page checks
(tests/pdf_annotations.json, rules in tests/pdf_checks.py), and every PDF ending with a named status."""

from __future__ import annotations

import functools
import re

import pytest

from corpus.pdf.detect import is_pdf_record, truncation_reason
from corpus.pdf.ocr import tessdata_dir
from corpus.pdf.router import BROKEN, EMPTY, ENCRYPTED, NEEDS_OCR, NOT_PDF, OK, PdfExtraction, extract_pdf
from tests.conftest import SHARED
from tests.pdf_checks import cer, describe, load_annotations, markdown_tables, run_check

pymupdf = pytest.importorskip("pymupdf")

PDF_DIR = SHARED / "pdf"
STATUSES = {OK, EMPTY, NEEDS_OCR, NOT_PDF, ENCRYPTED, BROKEN}
CORPUS_MAX_PAGES = 60  # the whole-folder run stops here (a 352-page book would take a third of the time)

LOREM = (
    "Reading order matters for language models trained on documents, and so does clean text without running "
    "headers, footers or page numbers between the sentences of a paragraph."
)


# ------------------------------------------------------------------------------------------------ helpers


def pages_of(result: PdfExtraction) -> list[str]:
    bounds = [0, *result.page_ends]
    return [result.text[bounds[i] : bounds[i + 1]] for i in range(len(result.page_ends))]


def assert_consistent(result: PdfExtraction) -> None:
    """The invariants the pipeline relies on, for any input."""
    assert result.status in STATUSES
    assert len(result.page_ends) == len(result.routes) <= max(result.page_count, len(result.routes))
    assert len(result.reasons) == len(result.removed_lines) == len(result.page_seconds) == len(result.routes)
    assert set(result.ocr_wanted) <= {i for i, reason in enumerate(result.reasons) if reason}
    assert result.page_ends == sorted(result.page_ends)
    assert (result.page_ends[-1] if result.page_ends else 0) == len(result.text)
    if result.status == OK:
        assert result.text.strip()


def build(pages: list[list[tuple[tuple[float, float], str, float]]], **save: object) -> bytes:
    """A PDF with one page per list of (position, text, font size); '\\n' in a text makes wrapped lines."""
    doc = pymupdf.open()
    for items in pages:
        page = doc.new_page(width=612, height=792)
        for point, text, size in items:
            page.insert_text(point, text, fontname="helv", fontsize=size)
    return doc.tobytes(**save)


@functools.cache
def unicode_font() -> bytes:
    """PyMuPDF's built-in Droid Sans Fallback: a CID font with a ToUnicode map, for characters beyond WinAnsi."""
    return pymupdf.Font("cjk").buffer


def build_unicode(text: str) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_font(fontname="F0", fontbuffer=unicode_font())
    page.insert_text((72, 72), text, fontname="F0", fontsize=11)
    doc.subset_fonts()
    return doc.tobytes(garbage=3, deflate=True)


def image_only_pdf() -> bytes:
    """One page that is nothing but a picture, as a scan without a text layer."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 300, 400), False)
    pix.set_rect(pix.irect, (230, 230, 220))
    pix.set_rect(pymupdf.IRect(40, 40, 260, 60), (20, 20, 20))  # a dark bar, like a line of scanned text
    page.insert_image(page.rect, pixmap=pix)
    return doc.tobytes(deflate=True)


# ------------------------------------------------------------------------------------------------ generated PDFs


def test_hyphenated_line_breaks_are_joined_but_real_hyphens_kept():
    body = (
        "Extraction of text from PDF documents needs an extra-\n"
        "ordinary amount of care: words broken at the end of a\n"
        "line are joined again, as in the word hyphen-\n"
        "ation, while the AF-\n"
        "toxin and COVID-19-\n"
        "related cases keep the hyphen they really have."
    )
    result = extract_pdf(build([[((72, 100), body, 11)]]))
    assert result.status == OK
    text = " ".join(result.text.split())
    assert "needs an extraordinary amount of care" in text
    assert "as in the word hyphenation, while" in text
    assert "AF-toxin" in text
    assert "COVID-19-related" in text
    assert result.signals["dehyphenated"] == 2


def test_ligatures_and_presentation_forms_are_expanded():
    result = extract_pdf(build_unicode("The ﬁnal ﬂow is eﬃcient, signiﬁcant and oﬄine for everyone here."))
    assert result.status == OK
    assert "The final flow is efficient, significant and offline for everyone here." in result.text
    assert not re.search("[\ufb00-\ufb06]", result.text)


def test_garbled_characters_are_counted_and_removed():
    good = "This sentence is perfectly readable and long enough to count as a text layer. "
    result = extract_pdf(build_unicode(good + "\ufffd" * 12 + " \ue000\ue001 end."))
    assert result.status == OK
    assert result.signals["garbled_chars"] == 14
    assert 0 < result.signals["garbled_ratio"] < 0.3
    assert "\ufffd" not in result.text and "\ue000" not in result.text
    assert "perfectly readable" in result.text

    mostly = extract_pdf(build_unicode("Title " + "\ufffd" * 80), ocr_engine=None)  # no OCR engine
    assert mostly.routes == ["garbled"] and mostly.reasons == ["garbled"]
    assert mostly.status == NEEDS_OCR and mostly.ocr_wanted == [0]
    assert mostly.signals["garbled_ratio"] > 0.5


def test_image_only_page_needs_ocr():
    result = extract_pdf(image_only_pdf(), ocr_engine=None)  # OCR disabled: the removal reason stays needs_ocr
    assert result.status == NEEDS_OCR
    assert result.routes == ["no_text"] and result.reasons == ["no_text_layer"]
    assert result.signals["ocr_wanted.no_text_layer"] == 1 and result.signals["pages_no_text"] == 1
    assert result.text == ""
    assert result.signals["pages_scanned"] == 1


def test_blank_page_is_empty():
    result = extract_pdf(build([[]]))
    assert result.status == EMPTY
    assert result.routes == ["blank"]


def test_encrypted_with_user_password_is_refused_owner_only_is_read():
    page = [((72, 100), LOREM, 11)]
    locked = build([page], encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    result = extract_pdf(locked)
    assert result.status == ENCRYPTED
    assert result.text == ""
    # permissions-only encryption (no user password): every viewer opens it, and so do we
    owner_only = build([page], encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="")
    assert extract_pdf(owner_only).status == OK


def test_not_pdf_and_empty_inputs():
    assert extract_pdf(b"<!doctype html><html><body><p>Not found</p></body></html>").status == NOT_PDF
    assert extract_pdf(b"PK\x03\x04 a zip file").status == NOT_PDF
    assert extract_pdf(b"").status == EMPTY
    assert extract_pdf(b"   \n").status == EMPTY


def test_broken_and_truncated_bytes_never_raise():
    pages = [[((72, 100 + 20 * i), f"Page {p} line {i}: {LOREM[:60]}", 10) for i in range(20)] for p in range(12)]
    data = build(pages)
    assert extract_pdf(data).status == OK
    outcomes = set()
    for cut in (20, 200, len(data) // 10, len(data) // 3, len(data) // 2, len(data) - 300, len(data) - 10):
        result = extract_pdf(data[:cut])
        assert_consistent(result)
        outcomes.add(result.status)
    assert outcomes <= {OK, BROKEN, EMPTY}
    assert BROKEN in outcomes  # a cut in the header leaves nothing MuPDF can repair
    garbage = b"%PDF-1.7\n" + bytes(range(256)) * 40
    result = extract_pdf(garbage)
    assert result.status in {BROKEN, EMPTY}
    assert_consistent(result)
    # a PDF whose stream bytes were overwritten: pages may fail, the document still comes back
    damaged = bytearray(data)
    for start in range(len(damaged) // 4, len(damaged) * 3 // 4, 997):
        damaged[start : start + 40] = b"\x00" * 40
    assert_consistent(extract_pdf(bytes(damaged)))


def test_page_limit():
    data = build([[((72, 100), f"This is page number {p} of the document. {LOREM}", 11)] for p in range(1, 6)])
    result = extract_pdf(data, max_pages=2)
    assert result.status == OK
    assert result.page_count == 5
    assert len(result.routes) == len(result.page_ends) == 2
    assert result.signals["pages_truncated"] == 1
    assert "page number 2" in result.text and "page number 3" not in result.text
    full = extract_pdf(data)
    assert len(full.routes) == 5 and full.signals["pages_truncated"] == 0
    assert [p.split(".")[0] for p in pages_of(full)] == [
        f"This is page number {p} of the document" for p in range(1, 6)
    ]


def test_two_columns_running_headers_and_page_numbers():
    """Columns written right column first (content-stream order is not reading order), a running header and
    footer, and a page number on every page: the text comes out column by column, without them."""
    pages = []
    for p in range(1, 5):
        left = "\n".join(f"Left column sentence {p}.{i} reads first in order." for i in range(1, 21))
        right = "\n".join(f"Right column sentence {p}.{i} reads after it." for i in range(1, 21))
        pages.append(
            [
                ((320, 110), right, 10),
                ((72, 110), left, 10),
                ((72, 50), "Journal of Careful Extraction, Vol. 7", 9),
                ((420, 50), f"Smith et al. {2020 + p}", 9),
                ((300, 760), str(p + 40), 9),
            ]
        )
    result = extract_pdf(build(pages))
    assert result.status == OK
    for p, page in enumerate(pages_of(result), start=1):
        flat = " ".join(page.split())
        assert flat.index(f"Left column sentence {p}.20") < flat.index(f"Right column sentence {p}.1 ")
        assert flat.index(f"Left column sentence {p}.1 ") < flat.index(f"Left column sentence {p}.2 ")
        assert "Journal of Careful Extraction" not in page
        assert "Smith et al." not in page
        assert not re.search(rf"\b{p + 40}\b", page)
    assert result.signals["header_footer_lines_removed"] + result.signals["page_numbers_removed"] >= 12


BODY = [
    "Reading order matters for language models trained on documents, and so does clean text without",
    "running headers, footers or page numbers between the sentences of a paragraph. The body of this",
    "page is set in one font and one size, line after line, as the body of a journal article is, so",
    "that the lines above and below it, in the margins of the page, can be told apart by their size,",
    "their font, their shape and the space that separates them from the body text of the page.",
    "Each of these cues is tested on a single page here, since pages cut from longer documents and",
    "short documents give no repetition to go by, and a reader still sees at once what is margin.",
]


def one_page(margins: list[tuple[tuple[float, float], str, float, str]], top: float = 120) -> bytes:
    """A single page: BODY in 11 pt Helvetica from `top`, plus margin lines (position, text, size, font)."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    for i, line in enumerate(BODY):
        page.insert_text((72, top + 14 * i), line, fontname="helv", fontsize=11)
    for point, text, size, font in margins:
        page.insert_text(point, text, fontname=font, fontsize=size)
    return doc.tobytes()


def body_text(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("line", "cue"),
    [
        (((72, 50), "Gravitropic movement and growth oscillations", 8, "helv"), "smaller"),
        (((72, 50), "Mediterranean Studies in the Social Sciences", 11, "tiit"), "font"),  # italic serif, same size
        (((72, 50), "Journal of Careful Extraction, Vol. 7, No. 3, pp. 41-58", 11, "helv"), "journal"),
        (((72, 760), "https://www.example.org/tobacco-control", 11, "helv"), "url"),
        (((72, 760), "DOI 10.1136/tc.2004.010025", 11, "helv"), "doi"),
        (((72, 760), "© 2012 Optical Society of America", 11, "helv"), "copyright"),
        (((72, 40), "Downloaded from example.org on July 12, 2017", 11, "helv"), "stamp"),
        (((72, 760), "March 29, 2018", 11, "helv"), "date"),
        (((400, 760), "Chapter 17: Programming 285", 11, "helv"), "page_number"),
        (((72, 760), "Contact: editor@example.org", 11, "helv"), "email"),
    ],
)
def test_single_page_header_and_footer_cues(line, cue):
    """One page, no repetition to go by: a band line set apart from the body goes, by the named cue, and is
    counted; the body stays whole."""
    result = extract_pdf(one_page([line]), ocr_engine=None)
    assert line[1] not in result.text
    assert result.removed_lines == [[line[1]]]
    assert result.signals[f"margin_lines.{cue}"] == 1 and result.signals["header_footer_lines_removed"] == 1
    assert body_text(" ".join(BODY)) in body_text(result.text)


def test_single_page_keeps_titles_headings_and_footnotes():
    """What is not a margin: a title larger than the body at the top, a heading set close to its paragraph,
    footnotes at the bottom (a footer below them goes, they stay), and a line in the band with no cue."""
    title = ((72, 60), "A Large Title at the Top", 20, "hebo")
    heading = ((72, 100), "1. Introduction", 11, "hebo")
    footnotes = [
        ((72, 700), "1 See the appendix for the full derivation of these results.", 8, "helv"),
        ((72, 710), "2 The data were collected in 2019 at three sites.", 8, "helv"),
    ]
    footer = ((280, 770), "Page 3 of 9", 8, "helv")
    result = extract_pdf(one_page([title, heading, *footnotes, footer], top=114), ocr_engine=None)
    flat = body_text(result.text)
    for kept in ("A Large Title at the Top", "1. Introduction", footnotes[0][1], footnotes[1][1]):
        assert kept in flat
    assert "Page 3 of 9" not in flat
    plain = ((72, 50), "Notes on the method", 11, "helv")  # in the band, same size and font, no shape
    assert "Notes on the method" in extract_pdf(one_page([plain]), ocr_engine=None).text
    bold_title = ((72, 60), "The Evolution of the Word Processor", 11, "hebo")  # body size, bold, then a gap
    assert "The Evolution of the Word Processor" in extract_pdf(one_page([bold_title]), ocr_engine=None).text


def test_repetition_needs_five_pages():
    """A line repeated at the top of pages (same font and size as the body: only repetition tells) goes on a
    six-page document; on a two-page one it stays, whatever it is (two pages that open alike are not a header)."""
    header = ((72, 50), "Annual report of the reading society", 11)
    six = extract_pdf(build([[header, ((72, 120), LOREM + f" Page body {p}.", 11)] for p in range(6)]), ocr_engine=None)
    assert "Annual report of the reading society" not in six.text
    assert six.signals["header_footer_lines_removed"] == 6
    two = extract_pdf(build([[header, ((72, 120), LOREM, 11)] for _ in range(2)]), ocr_engine=None)
    assert two.text.count("Annual report of the reading society") == 2


# ------------------------------------------------------------------------------------------------ routing and OCR


def text_page_pdf() -> bytes:
    """A page of body text with a text layer (the OCR tests' reference)."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    for i, line in enumerate(BODY * 2):
        page.insert_text((72, 100 + 16 * i), line, fontname="helv", fontsize=11)
    return doc.tobytes()


def scanned(
    data: bytes, dpi: int = 150, rotate: int = 0, producer: str = "", hidden: str = "", stamp: str = ""
) -> bytes:
    """The first page of `data` as a scan: rendered to pixels (turned by `rotate` degrees), the picture alone on
    a page; optionally with an invisible text layer (render mode 3, as scanners' OCR writes it), a visible stamp
    line at the top, and a producer."""
    pix = pymupdf.open(stream=data)[0].get_pixmap(dpi=dpi)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(page.rect, pixmap=pix, rotate=rotate)
    if hidden:
        page.insert_textbox(pymupdf.Rect(72, 90, 540, 700), hidden, fontsize=11, render_mode=3)
    if stamp:
        page.insert_text((72, 30), stamp, fontsize=7)
    if producer:
        doc.set_metadata({"producer": producer})
    return doc.tobytes(deflate=True)


THREE_LINES = "\n".join([LOREM[:100]] * 3)


def test_routing_reasons_without_an_engine():
    """Each reason the router sends a page to OCR for, with OCR disabled: the page keeps what text it has (or
    none), the reason is recorded per page and counted, and the page is listed in `ocr_wanted`."""
    reference = text_page_pdf()
    cases = {
        "no_text_layer": scanned(reference),
        "bad_ocr_layer": scanned(reference, hidden="t'he rn0 ~~ ,,q Mahome- a. t>. dans 1l1 ;; %% " * 12),
        "image_coverage": scanned(reference, stamp="Downloaded from the archive on 12 July 2017"),
        "scanner_producer": scanned(reference, producer="Canon iR-ADV C5535 PDF", stamp=THREE_LINES),
    }
    for reason, data in cases.items():
        result = extract_pdf(data, ocr_engine=None)
        assert result.reasons == [reason], reason
        assert result.ocr_wanted == [0] and result.signals[f"ocr_wanted.{reason}"] == 1
    readable = extract_pdf(scanned(reference, hidden=" ".join(BODY)), ocr_engine=None)  # a good OCR layer is kept
    assert readable.reasons == [None] and readable.routes == ["text"] and readable.ocr_wanted == []
    assert "Reading order matters for language models" in readable.text
    same_without_scanner = extract_pdf(scanned(reference, stamp=THREE_LINES), ocr_engine=None)
    assert same_without_scanner.reasons == [None]  # 3 lines over a picture: only in a scanner's PDF is it OCR'd
    assert extract_pdf(reference, ocr_engine=None).reasons == [None]  # a text page is never OCR'd


def test_outlined_text_is_routed_to_ocr():
    """A page whose text is drawn as vector outlines (no text layer, many paths) needs OCR."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    shape = page.new_shape()
    for i in range(150):  # glyph-like strokes
        x, y = 72 + (i % 30) * 15, 100 + (i // 30) * 20
        shape.draw_bezier((x, y), (x + 4, y - 8), (x + 8, y + 8), (x + 12, y))
        shape.finish(color=(0, 0, 0))  # one path per stroke
    shape.commit()
    result = extract_pdf(doc.tobytes(), ocr_engine=None)
    assert result.reasons == ["vector_only"] and result.status == NEEDS_OCR


def test_ocr_of_a_rendered_text_page_matches_its_text_layer():
    """OCR on CPU (RapidOCR's bundled models) of a text page rendered to pixels at 150 dpi, compared with the
    page's own text layer. Bound: CER <= 0.03. Clean 11 pt Helvetica at 150 dpi is easy print (PP-OCR's errors
    on real book pages at 150 dpi are 1-5%, scripts/bench_pdf.py); a page read in the wrong order, lines lost,
    lines not joined into paragraphs in order, or read upside down gives a CER far above 0.1, so the test fails
    on any of those. The same page scanned upside down must read the same (one orientation per page)."""
    pytest.importorskip("rapidocr")
    reference = extract_pdf(text_page_pdf(), ocr_engine=None)
    for rotate in (0, 180):
        result = extract_pdf(scanned(text_page_pdf(), rotate=rotate), ocr_engine="rapidocr")
        assert result.routes == ["ocr"] and result.reasons == ["no_text_layer"]
        assert result.signals["pages_ocr"] == 1 and result.signals["ocr_seconds"] > 0
        assert cer(reference.text, result.text) <= 0.03, (rotate, result.text)


def test_tesseract_through_pymupdf_when_installed():
    """Tesseract inside MuPDF, the engine used when the system has its language data."""
    if tessdata_dir() is None:
        pytest.skip("Tesseract's language data is not installed")
    reference = extract_pdf(text_page_pdf(), ocr_engine=None)
    result = extract_pdf(scanned(text_page_pdf()), ocr_engine="tesseract")
    assert result.routes == ["ocr"]
    assert cer(reference.text, result.text) <= 0.05


def ruled_table_pdf() -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 80), "Table 1: Fruit prices in the market this week, per kilogram.", fontname="helv")
    rows = [("Fruit", "Price", "Origin"), ("Apple", "2.40", "Italy"), ("Banana", "1.10", "Ecuador")]
    xs, ys = [72, 222, 372, 522], [100, 125, 150, 175]
    for x in xs:
        page.draw_line((x, ys[0]), (x, ys[-1]))
    for y in ys:
        page.draw_line((xs[0], y), (xs[-1], y))
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            page.insert_text((xs[c] + 6, ys[r] + 17), cell, fontname="helv", fontsize=11)
    page.insert_text((72, 220), "The table above is followed by a closing sentence.", fontname="helv")
    return doc.tobytes()


def test_ruled_table_becomes_markdown():
    result = extract_pdf(ruled_table_pdf())
    assert result.routes == ["tables"] and result.signals["tables"] == 1
    tables = markdown_tables(result.text)
    assert tables == [[["Fruit", "Price", "Origin"], ["Apple", "2.40", "Italy"], ["Banana", "1.10", "Ecuador"]]]
    assert result.text.index("Table 1:") < result.text.index("| Fruit") < result.text.index("closing sentence")


def test_layout_route_for_table_pages():
    """layout=True sends pages with tables to pymupdf4llm's layout mode; the text keeps the table."""
    pytest.importorskip("pymupdf4llm")
    result = extract_pdf(ruled_table_pdf(), layout=True)
    assert result.routes == ["layout"]
    assert result.signals["pages_layout"] == 1
    assert run_check(result.text, {"type": "table", "cell": "Apple", "right": "2.40", "top_heading": "Fruit"})
    assert run_check(result.text, {"type": "order", "text": ["Table 1:", "Banana", "closing sentence"]})
    plain = extract_pdf(build([[((72, 100), LOREM, 11)]]), layout=True)
    assert plain.routes == ["text"]  # pages without tables stay on the fast path


def test_pdf_checks_rules():
    page = "Intro text with a hyph- en.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nPage 150"
    assert run_check(page, {"type": "present", "text": "Intro text"})
    assert not run_check(page, {"type": "present", "text": "hyphen"})
    assert run_check(page, {"type": "absent", "text": "50"})  # word boundaries: not inside "150"
    assert not run_check(page, {"type": "absent", "text": "150"})
    assert run_check(page, {"type": "order", "text": ["Intro", "Page 150"]})
    assert not run_check(page, {"type": "order", "text": ["Page 150", "Intro"]})
    assert run_check(page, {"type": "table", "cell": "3", "right": "4", "up": "1", "top_heading": "a"})
    assert not run_check(page, {"type": "table", "cell": "3", "right": "2"})


# ------------------------------------------------------------------------------------------------ WARC side


@pytest.mark.parametrize(
    ("payload_type", "url", "head", "expected"),
    [
        ("application/pdf", "https://example.org/download?id=7", b"", True),
        ("application/x-pdf", None, b"", True),
        ("Application/PDF; charset=binary", None, b"", True),
        ("application/pdf;charset=UTF-8", "https://example.org/a", b"", True),
        ("text/html", "https://example.org/Report.PDF", b"<html>", True),
        ("text/html", "https://example.org/report.pdf?download=1#page=2", b"", True),
        ("application/octet-stream", "https://example.org/file", b"%PDF-1.7\n%\xe2\xe3", True),
        ("application/octet-stream", None, b"\xef\xbb\xbf   \r\n%PDF-1.4", True),  # junk before the header
        ("text/html", "https://example.org/pdf-guide.html", b"<html>" + b" " * 2000 + b"%PDF-", False),
        ("text/html", "https://example.org/index.html", b"<html>", False),
        (None, None, b"", False),
        ("image/png", "https://example.org/pdf/logo.png", b"\x89PNG", False),
    ],
)
def test_is_pdf_record(payload_type, url, head, expected):
    assert is_pdf_record(payload_type, url, head) is expected


def test_truncation_reason():
    complete = build([[((72, 100), LOREM, 11)]])
    assert truncation_reason(complete) is None
    assert truncation_reason(complete + b"\r\n") is None  # trailing whitespace after %%EOF
    assert truncation_reason(complete, None, len(complete)) is None
    assert truncation_reason(complete, "length") == "warc_truncated"
    assert truncation_reason(complete, "length", len(complete)) == "warc_truncated"
    assert truncation_reason(complete[:-100], None, len(complete)) == "short_payload"
    assert truncation_reason(complete[: len(complete) // 2]) == "no_eof"
    assert truncation_reason(b"") == "no_eof"


# ------------------------------------------------------------------------------------------------ real PDFs

_shared = pytest.mark.shared


@functools.cache
def corpus_results() -> dict[str, PdfExtraction | BaseException]:
    """extract_pdf over every PDF of the shared folder once per session (an exception is kept, not raised), without
    OCR (a fifth of the folder is scans: OCR'ing them all would take many minutes); see `annotated_result`."""
    out: dict[str, PdfExtraction | BaseException] = {}
    for path in sorted(PDF_DIR.rglob("*.pdf")):
        try:
            result = extract_pdf(path.read_bytes(), max_pages=CORPUS_MAX_PAGES, ocr_engine=None)
            out[path.relative_to(PDF_DIR).as_posix()] = result
        except BaseException as exc:  # recorded and reported by the test
            out[path.relative_to(PDF_DIR).as_posix()] = exc
    return out


@functools.cache
def annotated_result(pdf: str, page: int) -> PdfExtraction | BaseException:
    """The extraction an annotated page is checked on: the folder run's, or, when that page needed OCR, the
    document again up to that page with OCR (RapidOCR's bundled models)."""
    result = corpus_results()[pdf]
    if isinstance(result, PdfExtraction) and page in result.ocr_wanted:
        return extract_pdf((PDF_DIR / pdf).read_bytes(), max_pages=page + 1)
    return result


def need_shared() -> None:
    if not PDF_DIR.is_dir():
        pytest.skip(f"shared data not available: {PDF_DIR}")


@_shared
def test_every_shared_pdf_ends_with_a_named_status():
    need_shared()
    results = corpus_results()
    assert len(results) >= 100
    raised = {name: repr(r) for name, r in results.items() if isinstance(r, BaseException)}
    assert not raised
    for result in results.values():
        assert_consistent(result)
    statuses = {r.status for r in results.values()}
    assert {OK, NEEDS_OCR, ENCRYPTED, BROKEN} <= statuses
    ok = [name for name, r in results.items() if r.status == OK]
    assert len(ok) >= 0.55 * len(results)  # about a fifth are scans; some are encrypted or broken on purpose


@_shared
def test_shared_pdfs_with_known_outcomes():
    need_shared()
    results = corpus_results()
    assert results["docling/pdf_password/2206.01062_pg3.pdf"].status == ENCRYPTED
    assert results["py-pdf-sample-files/005-libreoffice-writer-password/libreoffice-writer-password.pdf"].status == (
        ENCRYPTED
    )
    assert results["pdfjs-selected/poppler-742-0-fuzzed.pdf"].status == BROKEN
    assert results["pdfjs-selected/poppler-742-0-fuzzed.pdf"].error
    scanned = results["docling/ocr/ocr_test.pdf"]
    assert scanned.status in ({NEEDS_OCR} if not scanned.signals.get("pages_ocr") else {OK})
    garbled = results["pdfjs-selected/TAMReview.pdf"]  # fonts without a usable Unicode mapping
    assert garbled.signals["garbled_ratio"] > 0
    assert garbled.routes.count("garbled") >= len(garbled.routes) // 2
    book = results["pdfjs-selected/freeculture.pdf"]
    assert book.page_count > CORPUS_MAX_PAGES == len(book.routes)
    assert book.signals["pages_truncated"] == 1


def _annotation_params() -> list:
    params = []
    for entry in load_annotations():
        for number, check in enumerate(entry["checks"]):
            marks = [_shared]
            if check.get("xfail"):
                marks.append(pytest.mark.xfail(reason=check["xfail"], strict=True))
            name = f"{entry['split']}-{entry['pdf'].rsplit('/', 1)[-1][:-4]}-p{entry['page']}-{number}-{check['type']}"
            params.append(pytest.param(entry["pdf"], entry["page"], check, id=name, marks=marks))
    return params


@pytest.mark.parametrize(("pdf", "page", "check"), _annotation_params())
def test_annotated_page(pdf, page, check):
    need_shared()
    result = annotated_result(pdf, page)
    assert isinstance(result, PdfExtraction) and result.status == OK
    text = pages_of(result)[page]
    assert run_check(text, check), f"{describe(check)}\n--- page text ---\n{text[:3000]}"
