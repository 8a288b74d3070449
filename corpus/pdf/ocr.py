"""OCR on CPU for pages without a usable text layer, with the engine's lines handed to the same page model, reading
order and paragraphs as a text page's (corpus.pdf.layout).

Engines:
- `rapidocr` (the default): RapidOCR over onnxruntime, whose wheel ships PaddleOCR's PP-OCRv6 small detection and
  recognition models and the PP-OCRv4 line-orientation classifier (Latin-script languages, Chinese, Japanese), so
  nothing is downloaded at run time. One intra-op thread: a Spark task owns one core.
- `tesseract`: Tesseract inside MuPDF (`Page.get_textpage_ocr`), when its language data is installed
  (`tessdata_dir`); no Python package needed.
`resolve_engine("auto")` takes RapidOCR when it imports, else Tesseract when installed, else None (pages that need
OCR then stay without text and a mostly scanned document is removed as `needs_ocr`).

A page is rendered at `dpi`, lowered so that the image has at most `max_pixels` pixels (the page's memory budget:
detection's buffers grow with the image, recognition's do not, since every line is scaled to 48 pixels high).
RapidOCR's lines come back as quadrilaterals in the rendered page; each line's writing direction is read from its
shape (a line taller than wide was turned a quarter) and from the orientation classifier (0 or 180 degrees), so a
page scanned upside down or sideways is read in its own direction. Lines are grouped into blocks (a line joins the
block above it when they overlap horizontally, are set in about the same size and the gap is under a line's
height), which the layout code then orders and joins into paragraphs as it does MuPDF's blocks.

`ocr_page(data, index, ...)` is a top-level function of the PDF's bytes, so corpus.sandbox can run one page at a
time with its own time and memory limits (the PDF recipe does).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

RAPIDOCR = "rapidocr"
TESSERACT = "tesseract"
ENGINES = (RAPIDOCR, TESSERACT)
AUTO = "auto"

TALL = 1.5  # RapidOCR turns a line crop a quarter when it is this much taller than wide
LINE_SIZE = 1.4  # a detected line box is about this many times the font size high (det's unclip ratio 1.6)
BLOCK_GAP = 1.0  # lines closer than this many line heights (and overlapping across) are one block
SAME_HEIGHT = 1.5  # ... if their heights differ by less than this factor


@dataclass
class OcrLine:
    """One line found by OCR: its box in the rendered page's coordinates (points), its writing direction (a unit
    axis vector, as MuPDF's `dir`), text and the recognizer's confidence."""

    bbox: tuple[float, float, float, float]
    direction: tuple[int, int]
    text: str
    score: float


@dataclass
class OcrPage:
    """What OCR made of one page: lines, the page size they refer to (the page as displayed, rotation applied),
    the engine, seconds spent, and the render scale actually used."""

    engine: str
    width: float
    height: float
    lines: list[OcrLine] = field(default_factory=list)
    dpi: float = 0.0
    seconds: float = 0.0
    page_dict: dict[str, Any] | None = None  # MuPDF's own structured text (the Tesseract path)


@cache
def tessdata_dir() -> str | None:
    """Tesseract's language-data folder when MuPDF's built-in OCR can use it, else None; looked up once per
    process, without starting a subprocess ($TESSDATA_PREFIX, then Debian's tesseract-ocr locations)."""
    candidates = [os.environ.get("TESSDATA_PREFIX", "")]
    candidates += sorted(glob.glob("/usr/share/tesseract-ocr/*/tessdata"), reverse=True)
    candidates += ["/usr/share/tessdata", "/usr/local/share/tessdata"]
    for folder in candidates:
        if folder and glob.glob(os.path.join(folder, "*.traineddata")):
            return folder
    return None


@cache
def _rapidocr_installed() -> bool:
    """RapidOCR and onnxruntime are installed (looked up without importing them: the caller may be a process
    that only hands pages to a sandbox)."""
    return all(importlib.util.find_spec(name) is not None for name in ("rapidocr", "onnxruntime"))


def engine_available(engine: str) -> bool:
    if engine == RAPIDOCR:
        return _rapidocr_installed()
    if engine == TESSERACT:
        return tessdata_dir() is not None
    raise ValueError(f"unknown OCR engine {engine!r} (known: {', '.join(ENGINES)})")


def resolve_engine(engine: str | None) -> str | None:
    """The engine to use for `engine` ("auto", an engine name, or None for no OCR), or None if it is unavailable."""
    if engine is None:
        return None
    if engine == AUTO:
        return next((name for name in ENGINES if engine_available(name)), None)
    return engine if engine_available(engine) else None


@cache
def _rapidocr() -> Any:
    """The RapidOCR engine, built once per process from the models inside its wheel (no download)."""
    from rapidocr import RapidOCR

    return RapidOCR(
        params={
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


def warm_up(engine: str | None) -> None:
    """Load the engine's models now (in a sandbox's zygote, so that workers share them)."""
    if engine == RAPIDOCR and _rapidocr_installed():
        _rapidocr()._load_det_model()
        _rapidocr()._load_cls_model()
        _rapidocr()._load_rec_model()


def _zoom(page: Any, dpi: float, max_pixels: int) -> float:
    zoom = dpi / 72
    area = abs(page.rect) * zoom * zoom
    if area > max_pixels:
        zoom *= (max_pixels / area) ** 0.5
    return zoom


def _direction(quad: Any, flipped: bool) -> tuple[int, int]:
    """A line's writing direction from its quadrilateral (taller than wide: turned a quarter, as RapidOCR turns
    such crops counter-clockwise before reading them) and whether its crop was read upside down."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    width = max(((x0 - x1) ** 2 + (y0 - y1) ** 2) ** 0.5, ((x2 - x3) ** 2 + (y2 - y3) ** 2) ** 0.5)
    height = max(((x0 - x3) ** 2 + (y0 - y3) ** 2) ** 0.5, ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5)
    if height >= TALL * width:  # read after a counter-clockwise quarter turn: the text ran downwards
        return (0, -1) if flipped else (0, 1)
    return (-1, 0) if flipped else (1, 0)


def _run_rapidocr(image: Any) -> list[tuple[Any, tuple[int, int], str, float]]:
    """RapidOCR's steps (detection, orientation, recognition) with one orientation per page: the classifier's
    verdict on each line (upright or upside down) is put to a vote weighted by the lines' lengths, and lines that
    disagree are turned to agree before they are read (a short or faint line is often misjudged, and then read as
    gibberish). Returns (quad in image pixels, direction, text, score) per recognized line."""
    from rapidocr.utils.process_img import map_boxes_to_original

    engine = _rapidocr()
    prepared, record = engine.preprocess_img(image)
    try:
        crops, det = engine.detect_and_crop(prepared, record)
        crops, cls = engine.cls_and_rotate(crops)
    except Exception:  # RapidOCRError: nothing detected
        return []
    if det.boxes is None or not crops:
        return []
    threshold = engine.cfg.Cls.cls_thresh
    flipped = ["180" in label and score > threshold for label, score in cls.cls_res]
    lengths = [max(crop.shape[:2]) for crop in crops]
    upside_down = sum(n for n, f in zip(lengths, flipped) if f) > sum(lengths) / 2
    for i, flip in enumerate(flipped):
        if flip != upside_down:
            crops[i] = crops[i][::-1, ::-1]  # a half turn
            flipped[i] = upside_down
    rec = engine.recognize_txt(crops)
    if rec.txts is None:
        return []
    directions = [_direction(box, flip) for box, flip in zip(det.boxes, flipped)]
    boxes = map_boxes_to_original(det.boxes, record, image.shape[0], image.shape[1])
    minimum = engine.cfg.Global.text_score
    return [
        (box, direction, text, float(score))
        for box, direction, text, score in zip(boxes, directions, rec.txts, rec.scores)
        if text.strip() and score >= minimum
    ]


def ocr_loaded_page(
    page: Any, engine: str, dpi: float = 150, max_pixels: int = 6_000_000, language: str = "eng"
) -> OcrPage:
    """OCR one PyMuPDF page with `engine` (see the module docstring)."""
    import pymupdf

    started = time.perf_counter()
    zoom = _zoom(page, dpi, max_pixels)
    if engine == TESSERACT:
        flags = (pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP) & ~pymupdf.TEXT_PRESERVE_LIGATURES
        textpage = page.get_textpage_ocr(
            flags=flags, language=language, dpi=round(72 * zoom), full=True, tessdata=tessdata_dir()
        )
        result = OcrPage(TESSERACT, page.rect.width, page.rect.height, dpi=72 * zoom)
        result.page_dict = textpage.extractDICT()
        result.seconds = time.perf_counter() - started
        return result
    if engine != RAPIDOCR:
        raise ValueError(f"unknown OCR engine {engine!r}")
    import numpy as np

    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False)
    image = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.width, 3)
    result = OcrPage(RAPIDOCR, pixmap.width / zoom, pixmap.height / zoom, dpi=72 * zoom)
    for quad, direction, text, score in _run_rapidocr(image):
        xs, ys = [float(p[0]) / zoom for p in quad], [float(p[1]) / zoom for p in quad]
        result.lines.append(OcrLine((min(xs), min(ys), max(xs), max(ys)), direction, text, score))
    del image, pixmap
    result.seconds = time.perf_counter() - started
    return result


def ocr_page(
    data: bytes,
    index: int,
    engine: str = RAPIDOCR,
    dpi: float = 150,
    max_pixels: int = 6_000_000,
    language: str = "eng",
) -> OcrPage:
    """OCR page `index` of the PDF `data` (for corpus.sandbox: one page per call, each under its own limits)."""
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        return ocr_loaded_page(doc[index], engine, dpi, max_pixels, language)


# ------------------------------------------------------------------------------------------------ lines to blocks


def _turned(bbox: tuple[float, float, float, float], direction: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box in the frame where `direction` runs left to right (the rotation of corpus.pdf.layout._frame)."""
    dx, dy = direction
    a, b, c, d = dx, dy, -dy, dx
    x0, y0, x1, y1 = bbox
    xs, ys = (a * x0 + b * y0, a * x1 + b * y1), (c * x0 + d * y0, c * x1 + d * y1)
    return min(xs), min(ys), max(xs), max(ys)


def page_dict(ocr: OcrPage) -> dict[str, Any]:
    """The OCR lines as MuPDF's structured-text dict (blocks of lines of spans), so that the page goes through
    corpus.pdf.layout like any other. Lines are grouped into blocks in their own writing direction."""
    if ocr.page_dict is not None:
        return ocr.page_dict
    blocks: list[list[int]] = []
    frames = [_turned(line.bbox, line.direction) for line in ocr.lines]
    order = sorted(range(len(ocr.lines)), key=lambda i: (ocr.lines[i].direction, frames[i][1], frames[i][0]))
    open_blocks: list[list[int]] = []
    for i in order:
        x0, y0, x1, y1 = frames[i]
        height = y1 - y0
        home = None
        for block in open_blocks:
            j = block[-1]
            if ocr.lines[j].direction != ocr.lines[i].direction:
                continue
            px0, py0, px1, py1 = frames[j]
            overlap = min(x1, px1) - max(x0, px0)
            previous, gap = py1 - py0, y0 - py1
            if (
                overlap > 0.3 * min(x1 - x0, px1 - px0)
                and -0.25 * previous <= gap < BLOCK_GAP * max(height, previous)
                and max(height, previous) < SAME_HEIGHT * min(height, previous)
            ):
                home = block
                break
        if home is None:
            home = []
            open_blocks.append(home)
            blocks.append(home)
        home.append(i)
    out = []
    for block in blocks:
        lines = []
        for i in block:
            line = ocr.lines[i]
            x0, y0, x1, y1 = frames[i]
            size = round((y1 - y0) / LINE_SIZE * 2) / 2
            span = {"text": line.text, "size": size, "bbox": line.bbox, "char_flags": 8, "alpha": 255}
            lines.append({"dir": line.direction, "bbox": line.bbox, "spans": [span]})
        out.append({"type": 0, "bbox": _union([ocr.lines[i].bbox for i in block]), "lines": lines})
    return {"width": ocr.width, "height": ocr.height, "blocks": out}


def _union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)
