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
import pyarrow as pa
import pyarrow.compute as pc
import regex
import xxhash
from datatrove.utils.text import PUNCTUATION

from corpus.text import _Memo, splitter

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


def _ascii_chunks(text: str) -> list[str]:
    if any(digit in text for digit in "0123456789"):  # ten C substring scans beat one regex scan
        text = _ASCII_NUMBERS.sub("0", text)
    return text.translate(_PUNCTUATION_TO_SPACE).split()


def simplify_text(text: str) -> str:
    r"""datatrove's current `simplify_text` with its default TextNormConfig: lowercase, numbers -> 0,
    punctuation -> space, whitespace collapsed, diacritics removed. (`" ".join(s.split())` is the regex
    `\s+ -> " "` plus strip: Python's `\s` and `str.isspace` agree on every code point.)"""
    text = text.lower()
    if text.isascii():
        return " ".join(_ascii_chunks(text))
    text = " ".join(_NUMBERS.sub("0", text).translate(_PUNCTUATION_TO_SPACE).split())
    # Like datatrove, no second collapse: removing a lone combining mark can leave two spaces.
    return unicodedata.normalize("NFD", text).translate(_DROP_MARKS).strip()


def simplified_chunks(text: str) -> list[str]:
    """The whitespace-separated chunks of `simplify_text(text)` (what the word splitter starts from)."""
    lowered = text.lower()
    return _ascii_chunks(lowered) if lowered.isascii() else simplify_text(text).split()


def simplify_text_2024(text: str) -> str:
    """`simplify_text` as FineWeb (April 2024) ran it: lowercase, whitespace collapsed, punctuation deleted
    (so "well-known" becomes "wellknown"), diacritics removed, digit runs -> 0."""
    text = _WHITESPACE.sub(" ", text.lower().strip())
    text = text.translate(_PUNCTUATION_DELETE)
    text = unicodedata.normalize("NFD", text).translate(_DROP_MARKS)
    return _DIGITS.sub("0", text).strip()


def _sha1_64(shingle: str) -> int:
    return int.from_bytes(hashlib.sha1(shingle.encode("utf-8", "surrogatepass")).digest()[:8], "little")


def _sha1_32(shingle: str) -> int:
    return int.from_bytes(hashlib.sha1(shingle.encode("utf-8", "surrogatepass")).digest()[:4], "little")


def _xxhash_64(shingle: str) -> int:
    return xxhash.xxh64_intdigest(shingle.encode("utf-8", "surrogatepass"))


def _xxhash_32(shingle: str) -> int:
    return xxhash.xxh32_intdigest(shingle.encode("utf-8", "surrogatepass"))


HASH_FUNCTIONS = {
    ("sha1", 64): _sha1_64,
    ("sha1", 32): _sha1_32,
    ("xxhash", 64): _xxhash_64,
    ("xxhash", 32): _xxhash_32,
}


@dataclass(frozen=True)
class MinhashParams:
    """MinHash settings; the defaults are FineWeb's where FineWeb fixes them (5-grams, 14 bands of 8, seed 1,
    64-bit values).

    `shingle_hash` and `permutation` choose the hash functions. `"sha1"` + `"mersenne"` reproduce datatrove's
    FineWeb signatures value for value (`"xxhash"` + `"mersenne"` its default config); the defaults, `"words"`
    + `"multiply_shift"`, compute the same kind of signature (same shingles, same banding) with hashing that
    numpy does for a whole document at once, several times faster (docs/BENCHMARKS.md).
    """

    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1
    precision: int = 64  # 64 or 32 bits
    shingle_hash: str = "words"  # "words" (vectorized), "sha1" (FineWeb) or "xxhash" (datatrove's default)
    permutation: str = "multiply_shift"  # "multiply_shift" or "mersenne" (datatrove's (a*h + b) mod 2**61 - 1)

    @property
    def num_hashes(self) -> int:
        return self.num_buckets * self.hashes_per_bucket

    def validate(self) -> None:
        if self.shingle_hash not in ("words", "sha1", "xxhash"):
            raise ValueError(f"shingle_hash: expected words, sha1 or xxhash, got {self.shingle_hash!r}")
        if self.permutation not in ("multiply_shift", "mersenne"):
            raise ValueError(f"permutation: expected multiply_shift or mersenne, got {self.permutation!r}")
        if self.precision not in (32, 64):
            raise ValueError(f"precision: expected 32 or 64, got {self.precision}")
        if min(self.n_grams, self.num_buckets, self.hashes_per_bucket) < 1:
            raise ValueError("n_grams, num_buckets and hashes_per_bucket must be positive")


_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: the polynomial that combines word hashes into a shingle hash
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)  # splitmix64's finalizer
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)


def _ngram_hashes(h: np.ndarray, n: int) -> np.ndarray:
    """The hash of every window of `n` consecutive word hashes: a polynomial in the words' hashes, then
    splitmix64's finalizer (len(h) - n + 1 values; none when there are fewer than n words)."""
    m = len(h) - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        acc = h[:m].copy()
        for j in range(1, n):
            acc *= _MIX
            acc += h[j : j + m]
        acc ^= acc >> _S30
        acc *= _M1
        acc ^= acc >> _S27
        acc *= _M2
        acc ^= acc >> _S31
    return acc


class MinHasher:
    """Signatures and band keys for documents; one per Python worker (`minhasher()`)."""

    def __init__(self, params: MinhashParams = MinhashParams(), compat: str = "datatrove") -> None:
        params.validate()
        self.params = params
        self.normalize = simplify_text_2024 if compat == "fineweb-2024" else simplify_text
        self.splitter = splitter(compat)
        if params.shingle_hash != "words":
            self.hash = HASH_FUNCTIONS[(params.shingle_hash, params.precision)]
        seed = params.seed
        self._word_hash = _Memo(lambda w: xxhash.xxh64_intdigest(w.encode("utf-8", "surrogatepass"), seed), 1 << 20)
        # Whitespace chunk of normalized text -> its words' hashes as packed uint64 bytes (spaCy may split a
        # chunk in several words); a document's hashes are then one bytes join away from a numpy array.
        chunk_tokens = getattr(self.splitter, "chunk_tokens", None)
        self._chunk_hashes = None
        if chunk_tokens is not None and compat != "fineweb-2024":
            self._chunk_hashes = _Memo(
                lambda chunk: np.array([self._word_hash[w] for w in chunk_tokens(chunk)], dtype=np.uint64).tobytes(),
                1 << 20,
            )
        rng = np.random.RandomState(params.seed)
        self.a = rng.randint(1, MERSENNE, dtype=np.uint64, size=(1, params.num_hashes))
        self.b = rng.randint(0, MERSENNE, dtype=np.uint64, size=(1, params.num_hashes))
        self.a_odd = self.a | np.uint64(1)

    def words(self, text: str) -> list[str]:
        return self.splitter.words(self.normalize(text))

    def chunks(self, text: str) -> list[str]:
        """The normalized text's whitespace chunks (words before spaCy's splitting rules)."""
        return self.normalize(text).split() if self._chunk_hashes is None else simplified_chunks(text)

    def shingles(self, text: str, chunks: list[str] | None = None) -> np.ndarray:
        """The hashes of the word n-grams of the normalized text, as a (N, 1) uint64 column (N may be 0)."""
        n = self.params.n_grams
        if chunks is None:
            chunks = self.chunks(text)
        if self.params.shingle_hash == "words":
            # Each distinct word is hashed once (memoized); an n-gram's hash is a polynomial in its words'
            # hashes, then mixed, all in numpy. Equal n-grams get equal hashes.
            if self._chunk_hashes is not None:
                packed = b"".join(map(self._chunk_hashes.__getitem__, chunks))
                h = np.frombuffer(packed, dtype=np.uint64)
            else:
                h = np.fromiter(map(self._word_hash.__getitem__, self.splitter.words(" ".join(chunks))), np.uint64)
            return _ngram_hashes(h, n).reshape(-1, 1)
        # datatrove's way: hash the string " ".join(words[i:i+n]) of every n-gram.
        words = self.splitter.words(" ".join(chunks))
        m = len(words) - n + 1
        if m <= 0:
            return np.empty((0, 1), dtype=np.uint64)
        joined = " ".join(words)
        starts = [0]
        for word in words:
            starts.append(starts[-1] + len(word) + 1)
        grams = {joined[starts[i] : starts[i + n] - 1] for i in range(m)}
        return np.fromiter(map(self.hash, grams), dtype=np.uint64, count=len(grams)).reshape(-1, 1)

    def signature(self, text: str, chunks: list[str] | None = None) -> np.ndarray | None:
        """The num_hashes minima, or None for a text with fewer than n_grams words (never deduplicated,
        as in datatrove)."""
        shingles = self.shingles(text, chunks)
        return None if shingles.size == 0 else self.signatures([shingles.ravel()])[0]

    def signatures(self, shingle_sets: list[np.ndarray]) -> np.ndarray:
        """Signatures of several documents at once, shape (documents, num_hashes). Every set must be
        non-empty."""
        lengths = [len(s) for s in shingle_sets]
        offsets = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        return self._signatures(np.concatenate(shingle_sets), offsets)

    def _signatures(self, shingles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Signatures of documents whose shingle hashes are concatenated in `shingles`, document i starting at
        `offsets[i]` (increasing: no empty document): all hashes go through the hash functions in one numpy
        pass and `minimum.reduceat` takes each document's minima (cheaper than one small pass per document)."""
        h = shingles.reshape(1, -1)
        if self.params.permutation == "mersenne":
            with np.errstate(over="ignore"):
                x = self.a.T * h  # wraps modulo 2**64 before the modulo, as datatrove's does
                x += self.b.T
            x = (x & MERSENNE) + (x >> _SHIFT)  # x mod (2**61 - 1) without a division
            x -= MERSENNE * (x >= MERSENNE)
            sigs = np.minimum.reduceat(x, offsets, axis=1).T
            return sigs & np.uint64(0xFFFFFFFF) if self.params.precision == 32 else sigs
        with np.errstate(over="ignore"):
            x = self.a_odd.T * h  # a bijection of uint64 (a is odd); its high bits are well mixed
            x += self.b.T
        sigs = np.minimum.reduceat(x, offsets, axis=1).T
        return sigs >> _S32 if self.params.precision == 32 else sigs

    def band_keys(self, signature: np.ndarray) -> list[bytes]:
        """One 16-byte key per band: a 128-bit hash of the band's values (equal bands, equal keys; unequal
        bands collide with probability 2**-128)."""
        bands = signature.reshape(self.params.num_buckets, self.params.hashes_per_bucket)
        return [xxhash.xxh3_128_digest(band.tobytes()) for band in bands]

    def keys(
        self, texts: list[str], max_shingles: int = 4096, slice_chars: int = 1 << 21
    ) -> list[tuple[bytes, list[bytes] | None]]:
        """What the dedup stage needs of each document, normalizing it once: a 128-bit hash of its normalized
        words (equal for exact duplicates up to case, punctuation, digits, diacritics and spacing) and its band
        keys (None when it has fewer than n_grams words); the same values as `signature` and `band_keys`, per
        document. Signatures are computed in groups of documents of about `max_shingles` shingles: big enough
        to amortize numpy's per-call cost, small enough that the (hashes x shingles) matrix stays in cache
        (measured: 4096 is about 30 % faster than 65536). Long lists go by slices of about `slice_chars`
        characters, whose arrays stay in cache (measured: 2 MB slices about 1.7x faster than 70 MB)."""
        out: list[tuple[bytes, list[bytes] | None]] = []
        start = size = 0
        for end, text in enumerate(texts, 1):
            size += len(text)
            if size >= slice_chars or end == len(texts):
                out += self._keys(texts[start:end], max_shingles)
                start, size = end, 0
        return out

    def _keys(self, texts: list[str], max_shingles: int) -> list[tuple[bytes, list[bytes] | None]]:
        normalized, n_chunks = [], []
        for text in texts:  # the chunk lists are not kept: a batch of them costs more in memory traffic
            chunks = self.chunks(text)
            normalized.append(" ".join(chunks))
            n_chunks.append(len(chunks))
        exact = [xxhash.xxh3_128_digest(s.encode("utf-8", "surrogatepass")) for s in normalized]
        batch = self._batch_shingles(normalized, n_chunks) if self.params.shingle_hash == "words" else None
        if batch is None:
            sets = [self.shingles(text, s.split()).ravel() for text, s in zip(texts, normalized)]
            batch = (np.concatenate(sets), np.array([len(s) for s in sets], dtype=np.int64))  # texts: never empty
        shingles, counts = batch
        bands: list[list[bytes] | None] = [None] * len(texts)
        ends = np.cumsum(counts)
        docs = np.flatnonzero(counts)
        # Consecutive documents with shingles, cut where the running shingle count crosses a multiple of
        # max_shingles; their shingles are contiguous in `shingles`.
        cuts = np.flatnonzero(np.diff(ends[docs] // max_shingles)) + 1
        group_size = self.params.num_buckets
        band_bytes = self.params.hashes_per_bucket * 8
        for group in np.split(docs, cuts):
            if len(group) == 0:
                continue
            starts = ends[group] - counts[group]
            signatures = self._signatures(shingles[starts[0] : ends[group[-1]]], starts - starts[0])
            blob = signatures.astype(np.uint64, copy=False).tobytes()
            digests = [xxhash.xxh3_128_digest(blob[k : k + band_bytes]) for k in range(0, len(blob), band_bytes)]
            for i, doc in enumerate(group.tolist()):
                bands[doc] = digests[i * group_size : (i + 1) * group_size]
        return list(zip(exact, bands))

    def _batch_shingles(self, normalized: list[str], n_chunks: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """The shingle hashes of a batch of normalized texts, concatenated, and each text's count; None when
        this hashing has no per-chunk memo. Equal to `shingles` per text, but the batch's chunks are split
        and deduplicated by Arrow in C, so Python looks up each distinct chunk once per batch rather than
        every occurrence (that lookup was a third of the cost)."""
        if self._chunk_hashes is None:
            return None
        chunk_counts = np.array(n_chunks, dtype=np.int64)
        if not chunk_counts.any():
            return np.empty(0, np.uint64), np.zeros(len(normalized), dtype=np.int64)
        try:
            joined = pa.array([" ".join(s for s in normalized if s)], pa.large_string())  # one string: fast to convert
        except (pa.ArrowException, UnicodeEncodeError):  # lone surrogates: Arrow holds valid UTF-8 only
            return None
        encoded = pc.split_pattern(joined, " ").flatten().dictionary_encode()
        packed = list(map(self._chunk_hashes.__getitem__, encoded.dictionary.to_pylist()))
        indices = encoded.indices.to_numpy()
        unique_hashes = np.frombuffer(b"".join(packed), dtype=np.uint64)
        unique_lengths = np.fromiter(map(len, packed), dtype=np.int64, count=len(packed)) // 8
        if (unique_lengths == 1).all():  # every chunk one word (the usual case)
            words, n_words = unique_hashes[indices], chunk_counts
        else:  # spaCy splits some chunks in several words: gather each chunk's run of hashes
            lengths = unique_lengths[indices]
            unique_starts = np.cumsum(unique_lengths) - unique_lengths
            run_starts = np.cumsum(lengths) - lengths
            words = unique_hashes[np.repeat(unique_starts[indices] - run_starts, lengths) + np.arange(lengths.sum())]
            words_before = np.concatenate([[0], np.cumsum(lengths)])  # words before each chunk
            n_words = np.diff(words_before[np.cumsum(chunk_counts)], prepend=0)
        n = self.params.n_grams
        windows = _ngram_hashes(words, n)
        counts = np.maximum(n_words - n + 1, 0)
        word_starts = np.cumsum(n_words) - n_words
        window_starts = np.cumsum(counts) - counts
        return windows[np.repeat(word_starts - window_starts, counts) + np.arange(counts.sum())], counts


@cache
def minhasher(params: MinhashParams, compat: str) -> MinHasher:
    return MinHasher(params, compat)
