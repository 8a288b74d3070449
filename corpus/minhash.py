"""MinHash signatures, as datatrove computes them for FineWeb, with the hashing vectorized.

A document's shingles are the word 5-grams of its normalized text (datatrove's `simplify_text`, then words);
each shingle is hashed to 64 bits (FineWeb: the first 8 bytes of its SHA-1), and 112 hash functions
``(a * h + b) mod (2**61 - 1)`` (uint64 arithmetic that wraps before the modulo, exactly as datatrove's numpy code
does, with `a` and `b` drawn from ``RandomState(seed)``) give the signature: the minimum of each over the
shingles. The signature is cut into 14 bands of 8; two documents that share any band are candidate duplicates.
With the same parameters the signatures are datatrove's, value for value (tests/test_minhash.py checks).

Where it differs from datatrove it is only in cost: words come from `corpus.text` (spaCy's rules without spaCy),
the normalization uses C-level `str.translate` tables instead of a per-character loop, and the modulo by the
Mersenne prime is a shift and a mask.
"""

from __future__ import annotations

import hashlib
import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import regex
import xxhash
from datatrove.utils.text import PUNCTUATION

from corpus.text import splitter

MERSENNE = np.uint64((1 << 61) - 1)
_SHIFT = np.uint64(61)

# datatrove's simplify_text, step by step (datatrove/utils/text.py).
_NUMBERS = regex.compile(r"\p{Nd}+([.,،٫⎖⎗⎘]{1}\p{Nd}+)?", regex.VERSION0)
_ASCII_NUMBERS = re.compile(r"[0-9]+([.,][0-9]+)?")
_WHITESPACE = re.compile(r"\s+")
_PUNCTUATION_TO_SPACE = str.maketrans(PUNCTUATION, " " * len(PUNCTUATION))
_PUNCTUATION_DELETE = str.maketrans("", "", PUNCTUATION)
#: Every nonspacing mark (category Mn), mapped to nothing: NFD + this table strips diacritics in C.
_DROP_MARKS = {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Mn"}
_DIGITS = re.compile(r"\d+")


def simplify_text(text: str) -> str:
    """datatrove's current `simplify_text` with its default TextNormConfig: lowercase, numbers -> 0,
    punctuation -> space, whitespace collapsed, diacritics removed."""
    text = text.lower()
    text = (_ASCII_NUMBERS if text.isascii() else _NUMBERS).sub("0", text)
    text = text.translate(_PUNCTUATION_TO_SPACE)
    text = _WHITESPACE.sub(" ", text.strip())
    if not text.isascii():
        text = unicodedata.normalize("NFD", text).translate(_DROP_MARKS)
    return text.strip()


def simplify_text_2024(text: str) -> str:
    """`simplify_text` as FineWeb (April 2024) ran it: lowercase, whitespace collapsed, punctuation deleted
    (so "well-known" becomes "wellknown"), diacritics removed, digit runs -> 0."""
    text = _WHITESPACE.sub(" ", text.lower().strip())
    text = text.translate(_PUNCTUATION_DELETE)
    text = unicodedata.normalize("NFD", text).translate(_DROP_MARKS)
    return _DIGITS.sub("0", text).strip()


def _sha1_64(shingle: str) -> int:
    return int.from_bytes(hashlib.sha1(shingle.encode("utf-8")).digest()[:8], "little")


def _sha1_32(shingle: str) -> int:
    return int.from_bytes(hashlib.sha1(shingle.encode("utf-8")).digest()[:4], "little")


def _xxhash_64(shingle: str) -> int:
    return xxhash.xxh64_intdigest(shingle.encode("utf-8"))


def _xxhash_32(shingle: str) -> int:
    return xxhash.xxh32_intdigest(shingle.encode("utf-8"))


HASH_FUNCTIONS = {
    ("sha1", 64): _sha1_64,
    ("sha1", 32): _sha1_32,
    ("xxhash", 64): _xxhash_64,
    ("xxhash", 32): _xxhash_32,
}


@dataclass(frozen=True)
class MinhashParams:
    """FineWeb's MinHash configuration: word 5-grams, 14 bands of 8 hashes, SHA-1 truncated to 64 bits."""

    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1
    hash_fc: str = "sha1"  # "sha1" (FineWeb) or "xxhash" (datatrove's default)
    precision: int = 64  # 64 or 32 bits

    @property
    def num_hashes(self) -> int:
        return self.num_buckets * self.hashes_per_bucket


class MinHasher:
    """Signatures and band keys for documents; one per Python worker (`minhasher()`)."""

    def __init__(self, params: MinhashParams = MinhashParams(), compat: str = "datatrove") -> None:
        if (params.hash_fc, params.precision) not in HASH_FUNCTIONS:
            raise ValueError(f"unsupported hash {params.hash_fc!r} with precision {params.precision}")
        self.params = params
        self.normalize = simplify_text_2024 if compat == "fineweb-2024" else simplify_text
        self.splitter = splitter(compat)
        self.hash = HASH_FUNCTIONS[(params.hash_fc, params.precision)]
        rng = np.random.RandomState(params.seed)
        self.a = rng.randint(1, MERSENNE, dtype=np.uint64, size=(1, params.num_hashes))
        self.b = rng.randint(0, MERSENNE, dtype=np.uint64, size=(1, params.num_hashes))

    def shingles(self, text: str) -> np.ndarray:
        """The hashed word n-grams of the normalized text, as a (N, 1) uint64 column (N may be 0)."""
        words = self.splitter.words(self.normalize(text))
        n = self.params.n_grams
        if len(words) < n:
            return np.empty((0, 1), dtype=np.uint64)
        # n-grams as slices of the joined words: the same strings as " ".join(words[i:i+n])
        joined = " ".join(words)
        starts = [0]
        for word in words:
            starts.append(starts[-1] + len(word) + 1)
        hash_ = self.hash
        grams = {joined[starts[i] : starts[i + n] - 1] for i in range(len(words) - n + 1)}
        return np.fromiter(map(hash_, grams), dtype=np.uint64, count=len(grams)).reshape(-1, 1)

    def signature(self, text: str) -> np.ndarray | None:
        """The num_hashes minima, or None for a text with fewer than n_grams words (never deduplicated,
        as in datatrove)."""
        shingles = self.shingles(text)
        if shingles.size == 0:
            return None
        with np.errstate(over="ignore"):
            x = shingles * self.a + self.b  # wraps modulo 2**64, as datatrove's does
        x = (x & MERSENNE) + (x >> _SHIFT)  # x mod (2**61 - 1), without a division
        x -= MERSENNE * (x >= MERSENNE)
        sig = x.min(axis=0)
        if self.params.precision == 32:
            sig &= np.uint64(0xFFFFFFFF)
        return sig

    def band_keys(self, signature: np.ndarray) -> list[bytes]:
        """One 16-byte key per band: a 128-bit hash of the band's values (equal bands, equal keys; unequal
        bands collide with probability 2**-128)."""
        bands = signature.reshape(self.params.num_buckets, self.params.hashes_per_bucket)
        return [xxhash.xxh3_128_digest(band.tobytes()) for band in bands]


@cache
def minhasher(params: MinhashParams, compat: str) -> MinHasher:
    return MinHasher(params, compat)
