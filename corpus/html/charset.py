"""Decoding HTML payloads to text.

datatrove tries UTF-8, then cchardet, and silently drops the page when both fail. We follow the order browsers use
and never drop: a byte-order mark, then the HTTP header's charset, then the page's own ``<meta>`` charset, then
UTF-8, then statistical detection, and as a last resort the best candidate decoded with replacement characters
(counted in the ``charset`` column as ``.../replaced``). A declared single-byte charset (latin-1, cp1252, ...)
decodes any bytes without error, so when such a declaration meets bytes that are valid multi-byte UTF-8 we take
UTF-8: that lie is common on the web and costs readers mojibake otherwise. UTF-16 without a byte-order mark
behind any label is recognised by its NUL bytes (every other byte of Latin text; a NUL is valid UTF-8, so the
label would otherwise "work" and give text that extracts to nothing): `source` is then ``nul``.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# WHATWG maps these labels to supersets (browsers decode "iso-8859-1" as windows-1252, and so on); Python's strict
# codecs would otherwise reject or garble real pages labelled this way. Keys are Python's canonical codec names.
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}
_LABEL_ALIASES = {"x-gbk": "gbk", "x-sjis": "shift_jis", "windows-31j": "cp932", "ks_c_5601-1987": "euc_kr",
                  "x-user-defined": "cp1252", "unicode": "utf-8", "utf8": "utf-8"}  # fmt: skip
_SINGLE_BYTE = {"cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_HIGH_BYTES = re.compile(rb"[\x80-\xff]")
META_SCAN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    charset: str  # Python codec name
    source: str  # bom | nul | http | meta | utf8 | detected | replaced

    @property
    def label(self) -> str:
        return f"{self.charset}/{self.source}"


def normalize_label(label: str | None) -> str | None:
    """A charset label from a header or a page -> a Python codec name, or None if Python has no such codec."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_LABEL_ALIASES.get(label, label)).name
    except LookupError:
        return None
    return _SUPERSETS.get(name, name)


def header_charset(content_type: str | None) -> str | None:
    m = _HEADER_CHARSET.search(content_type or "")
    return m.group(1) if m else None


def meta_charset(payload: bytes) -> str | None:
    m = _META_CHARSET.search(payload[:META_SCAN_BYTES])
    return m.group(1).decode("ascii", "replace") if m else None


def _strict(payload: bytes, codec: str) -> str | None:
    try:
        return payload.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


#: Encodings by how common they are on the web (W3Techs); breaks ties between equally plausible detections, which
#: are frequent: a page that uses only Latin-1 letters reads the same in cp1250, cp1252 and cp1257.
_WEB_PRIORITY = [
    "utf-8", "cp1252", "cp1251", "gb18030", "cp932", "euc_jp", "cp1250", "cp949", "cp1256", "cp1254", "cp1253",
    "big5hkscs", "iso8859-15", "cp874", "koi8-r", "cp1255", "iso8859-2", "cp1257", "cp1258", "koi8-u",
]  # fmt: skip


def detect(payload: bytes) -> str | None:
    """The most plausible codec for bytes that declare none (or declare one that fails)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(payload[: 1 << 20]))
    if not matches:
        return None
    best = matches[0]
    tied = [
        m.encoding
        for m in matches
        if m.chaos <= best.chaos + 0.002 and m.coherence >= best.coherence - 0.01 and normalize_label(m.encoding)
    ]
    rank = {name: i for i, name in enumerate(_WEB_PRIORITY)}
    return min((normalize_label(e) for e in tied), key=lambda c: rank.get(c, len(rank)), default=None)  # type: ignore[arg-type]


def utf16_by_nul_bytes(payload: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" when NUL bytes fill the odd (or even) positions of the first 4 KiB, as they do in
    UTF-16 text that is mostly Latin script (markup always is); None otherwise, and at once without NUL bytes."""
    head = payload[:4096]
    if b"\x00" not in head or len(head) < 64:
        return None
    pairs = len(head) // 2
    even, odd = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
    if odd >= 0.3 * pairs and even <= 0.02 * pairs:
        return "utf-16-le"
    if even >= 0.3 * pairs and odd <= 0.02 * pairs:
        return "utf-16-be"
    return None


def decode_html(payload: bytes, content_type: str | None = None) -> Decoded:
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return Decoded(payload[len(bom) :].decode(codec, "replace"), codec, "bom")
    if (wide := utf16_by_nul_bytes(payload)) is not None:
        return Decoded(payload.decode(wide, "replace"), wide, "nul")

    candidates: list[tuple[str, str]] = []
    for source, label in (("http", header_charset(content_type)), ("meta", meta_charset(payload))):
        codec = normalize_label(label)
        if codec and codec not in (c for c, _ in candidates):
            candidates.append((codec, source))
    utf8 = _strict(payload, "utf-8")
    for codec, source in candidates:
        if codec in _SINGLE_BYTE and utf8 is not None and _HIGH_BYTES.search(payload):
            return Decoded(utf8, "utf-8", "utf8")  # a single-byte label on valid multi-byte UTF-8: the label lies
        text = utf8 if codec == "utf-8" else _strict(payload, codec)
        if text is not None:
            return Decoded(text, codec, source)
    if utf8 is not None:
        return Decoded(utf8, "utf-8", "utf8")

    detected = detect(payload)
    if detected:
        text = _strict(payload, detected)
        if text is not None:
            return Decoded(text, detected, "detected")
    fallback = candidates[0][0] if candidates else detected or "utf-8"
    return Decoded(payload.decode(fallback, "replace"), fallback, "replaced")
