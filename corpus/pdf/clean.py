"""Text hygiene: ligatures and presentation forms expanded, TeX's spacing accents composed, odd spaces made
spaces, invisible, control and garbled characters removed (the garbled ones are counted first, see `_GARBLED`)."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# Characters removed from the text; the garbled ones among them are counted first.
_GARBLED = re.compile("[\ufffd\ue000-\uf8ff\U000f0000-\U0010ffff\x00-\x08\x0e-\x1f]")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff\ufffd\ufffe\uffff\ue000-\uf8ff]")
_SPACES = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_LEADERS = re.compile(r"(?:\s*[.·…_]){4,}\s*")  # dot leaders of tables of contents and tables
_HYPHENS = "-\u00ad\u2010"
_TERMINAL = frozenset(".!?:;\"'”’)]»。！？")


@cache
def _translation() -> dict[int, str]:
    """NFKC for presentation forms only: ligatures (U+FB00-FB4F) and Arabic forms (U+FB50-FDFF, U+FE70-FEFE)."""
    table = {}
    for start, end in ((0xFB00, 0xFDFF), (0xFE70, 0xFEFE)):
        for cp in range(start, end + 1):
            folded = unicodedata.normalize("NFKC", chr(cp))
            if folded != chr(cp):
                table[cp] = folded
    return table


# A spacing accent before a letter, as TeX's accent macros come out of many PDFs ("na¨ıve", "R´enyi", "Erd˝os"):
# composed into the accented letter. The acute only before a vowel, since "´" also stands in for an apostrophe.
_ACCENTS = {"¨": "\u0308", "ˆ": "\u0302", "˜": "\u0303", "ˇ": "\u030c", "˘": "\u0306", "˚": "\u030a", "˝": "\u030b"}
_ACCENTED = re.compile("([¨ˆ˜ˇ˘˚˝])([A-Za-zı])|´([AEIOUYaeiouyı])")


def _accent(match: re.Match[str]) -> str:
    if match.group(3):
        return match.group(3).replace("ı", "i") + "\u0301"
    return match.group(2).replace("ı", "i") + _ACCENTS[match.group(1)]


def _clean(text: str) -> str:
    text = text.rstrip()
    text = _ACCENTED.sub(_accent, text)
    if text.endswith("\u00ad"):  # a soft hyphen at the end of a line is where the word was broken
        text = text[:-1] + "-"
    text = _INVISIBLE.sub("", text.translate(_translation()))
    return _SPACES.sub(" ", _LEADERS.sub(" ", text)).strip()
