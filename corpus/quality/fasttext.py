"""fastText classifiers (DCLM-style): any supervised `.bin`/`.ftz` model, applied to whole batches of documents.

A supervised fastText model with a softmax output is linear in the average of its input rows:
the label scores of a document are ``B @ mean(A[f] for f in features)`` = ``mean((A @ B.T)[f])``. So the model
folds into one small table, `row_scores` = A @ B.T (one value per input row and label: 16 MB for two labels and
2M buckets instead of the 800 MB input matrix), and a batch is scored with a few vectorised NumPy passes over
its UTF-8 bytes: split on fastText's whitespace, FNV-1a hash every token as fastText does, look words up,
hash word n-grams into buckets, average the rows' scores per document, softmax. The result is fastText's own
`predict` (the same features, summed in another order; tests compare both), several times faster than calling
it document by document (scripts/bench_classify.py), because no Python object is made per document or token.

Models this cannot fold (quantized `.ftz`, one-vs-all or hierarchical softmax, character n-grams) are scored by
fastText's own `multilinePredict`. Either way a model is loaded once per Python worker (`fasttext_model`).
"""

from __future__ import annotations

import os
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.assets import atomic_write, cache_dir, fetch, is_url

LABEL_PREFIX = "__label__"
EOS = "</s>"
FNV32_OFFSET, FNV32_PRIME = np.uint32(2166136261), np.uint32(16777619)
NGRAM_PRIME = np.uint64(116049371)
#: Tokens longer than this are hashed one by one in Python (rare: URLs, base64 blobs); shorter ones together.
VECTOR_TOKEN_BYTES = 64
SET_LOOKUP_VOCABULARY = 500_000


def fasttext_hash(strings: pa.Array) -> np.ndarray:
    """fastText's hash of each string: 32-bit FNV-1a over its UTF-8 bytes taken as *signed* chars (a quirk of
    its C++ that changes the hash of every non-ASCII byte). Vectorised over strings, one pass per byte position."""
    strings = strings.cast(pa.large_string())
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], np.int64)[strings.offset : strings.offset + n + 1]
    data = np.frombuffer(strings.buffers()[2], np.uint8) if n and offsets[-1] > offsets[0] else np.zeros(0, np.uint8)
    signed = data.astype(np.uint32)
    signed[data >= 128] |= np.uint32(0xFFFFFF00)
    starts, lengths = offsets[:-1], np.diff(offsets)
    order = np.argsort(lengths, kind="stable")
    sorted_starts, sorted_lengths = starts[order], lengths[order]
    hashes = np.full(n, FNV32_OFFSET, np.uint32)
    longest = min(int(sorted_lengths[-1]) if n else 0, VECTOR_TOKEN_BYTES)
    with np.errstate(over="ignore"):
        for j in range(longest):
            first = int(np.searchsorted(sorted_lengths, j, side="right"))  # strings longer than j bytes
            tail = hashes[first:]
            np.bitwise_xor(tail, signed[sorted_starts[first:] + j], out=tail)
            np.multiply(tail, FNV32_PRIME, out=tail)
    for k in np.flatnonzero(sorted_lengths > VECTOR_TOKEN_BYTES):  # the rest of long strings, one by one
        h = int(hashes[k])
        for byte in data[sorted_starts[k] + VECTOR_TOKEN_BYTES : sorted_starts[k] + sorted_lengths[k]].tolist():
            h = ((h ^ (byte | 0xFFFFFF00 if byte >= 128 else byte)) * 16777619) & 0xFFFFFFFF
        hashes[k] = h
    out = np.empty(n, np.uint32)
    out[order] = hashes
    return out


class FastTextModel:
    """A supervised fastText model. `predict(texts)` -> probabilities [documents, labels] as fastText reports
    them (its probability + 1e-5, which is what thresholds like DCLM's 0.018112 were read from)."""

    def __init__(self, path: str, cache_key: str | None = None, newline: str = " ") -> None:
        from fasttext.FastText import _FastText

        self.path = fetch(path, "fastText model", "classifier.<name>.model")
        self.model = _FastText(model_path=self.path)
        self.labels = [label.removeprefix(LABEL_PREFIX) for label in self.model.labels]
        self.newline = newline
        args = self.model.f.getArgs()
        self.word_ngrams, self.bucket = args.wordNgrams, args.bucket
        loss = str(args.loss).rsplit(".", 1)[-1]
        self.output = loss
        foldable = loss == "softmax" and args.maxn <= 0 and not self.model.is_quantized()
        self.row_scores: np.ndarray | None = self._row_scores(cache_key) if foldable else None
        if self.row_scores is not None:
            # one contiguous column per label; for a two-label softmax only the difference matters
            table = self.row_scores
            if table.shape[1] == 2:
                table = table[:, 1:] - table[:, :1]
            self.columns = [np.ascontiguousarray(table[:, k]) for k in range(table.shape[1])]
            words = self.model.get_words(on_unicode_error="replace")
            self.nwords = len(words)
            self.vocab = {word: i for i, word in enumerate(words)}
            self.vocab_array = pa.array(words, pa.large_string())
            self.word_hashes = fasttext_hash(pa.array(words, pa.large_string()))
            self.eos_id = self.vocab.get(EOS, -1)
            self.eos_hash = fasttext_hash(pa.array([EOS]))[0]

    def _row_scores(self, cache_key: str | None) -> np.ndarray:
        """A @ B.T: each input row's score for each label, cached on disk by model (computing it reads the whole
        input matrix once)."""
        stat = os.stat(self.path)
        key = cache_key or f"{os.path.abspath(self.path)}-{stat.st_size}-{stat.st_mtime_ns}"
        import hashlib

        target = cache_dir() / "fasttext" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npy"
        if target.exists():
            return np.load(target)
        table = (self.model.get_input_matrix() @ self.model.get_output_matrix().T).astype(np.float32)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, table)

        atomic_write(target, write)
        return table

    def _word_ids(self, unique: pa.Array) -> np.ndarray:
        """Vocabulary ids of distinct tokens (-1: not a word of the model). Arrow's set lookup rebuilds its hash
        table from the vocabulary at every call, which beats a Python dict up to a vocabulary of about 20 times
        the distinct tokens of a batch."""
        if len(self.vocab) <= SET_LOOKUP_VOCABULARY:
            found = pc.index_in(unique.cast(pa.large_string()), value_set=self.vocab_array)
            return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.fromiter((self.vocab.get(w, -1) for w in unique.to_pylist()), np.int64, len(unique))

    def predict(self, texts: pa.Array | list[str | None]) -> np.ndarray:
        array = pa.array(texts, pa.large_string()) if isinstance(texts, list) else texts.cast(pa.large_string())
        array = array.fill_null("")
        if self.newline != " ":
            array = pc.replace_substring(array, "\n", self.newline)
        if self.row_scores is None:
            return self._predict_fasttext(array.to_pylist())
        return self._predict_folded(array)

    def _predict_fasttext(self, texts: list[str]) -> np.ndarray:
        lines = [t.replace("\n", " ") + "\n" for t in texts]  # as fastText's own predict() does
        labels, probs = self.model.f.multilinePredict(lines, -1, 0.0, "strict")
        index = {f"{LABEL_PREFIX}{label}": i for i, label in enumerate(self.labels)}
        out = np.zeros((len(texts), len(self.labels)), np.float64)
        for row, (names, values) in enumerate(zip(labels, probs)):
            for name, value in zip(names, values):
                out[row, index[name]] = value
        return out

    def _predict_folded(self, array: pa.LargeStringArray) -> np.ndarray:
        n = len(array)
        if n == 0:
            return np.zeros((0, len(self.labels)))
        # fastText's tokens: runs of bytes other than " \n\r\t\v\f\0" (Arrow's ASCII whitespace plus NUL)
        tokens = pc.ascii_split_whitespace(pc.replace_substring(array, "\0", " "))
        encoded = pc.list_flatten(tokens).dictionary_encode()
        unique, index = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
        doc = pc.list_parent_indices(tokens).to_numpy()
        # Arrow yields empty strings around leading and trailing whitespace; __label__x is a label, not a word
        skip = pc.or_(pc.equal(unique, ""), pc.starts_with(unique, LABEL_PREFIX)).to_numpy(zero_copy_only=False)
        if skip.any():
            keep = ~skip[index]
            index, doc = index[keep], doc[keep]
        unique_ids = self._word_ids(unique)
        unique_hashes = self.word_hashes[np.maximum(unique_ids, 0)]
        unknown = np.flatnonzero((unique_ids < 0) & ~skip)
        if len(unknown):
            unique_hashes[unknown] = fasttext_hash(unique.take(pa.array(unknown)))
        # every document ends with fastText's end-of-line token
        place = np.searchsorted(doc, np.arange(n), side="right")
        ids = np.insert(unique_ids[index], place, self.eos_id)
        h32 = np.insert(unique_hashes[index], place, self.eos_hash)
        doc = np.insert(doc, place, np.arange(n))
        known = ids >= 0
        parts = [(ids[known], doc[known])]
        # fastText keeps hashes as int32 and widens them to uint64 with their sign: so must we
        wide = h32.view(np.int32).astype(np.int64).view(np.uint64)
        gram = wide
        with np.errstate(over="ignore"):
            for span in range(1, self.word_ngrams):  # word n-grams of span + 1 words, within a document
                gram = gram[:-1] * NGRAM_PRIME + wide[span:]
                inside = doc[: len(doc) - span] == doc[span:]
                parts.append(
                    (self.nwords + (gram[inside] % np.uint64(self.bucket)).astype(np.int64), doc[:-span][inside])
                )
        counts = sum(np.bincount(owner, minlength=n) for _, owner in parts).astype(np.float64)
        logits = (
            np.stack(
                [
                    sum(np.bincount(owner, column[feature], minlength=n) for feature, owner in parts)
                    for column in self.columns
                ],
                axis=1,
            )
            / np.maximum(counts, 1)[:, None]
        )
        if len(self.columns) == 1:  # two labels: the difference of their logits
            probs = 1 / (1 + np.exp(-logits[:, 0]))
            probs = np.stack([1 - probs, probs], axis=1)
        else:
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
        probs = probs + 1e-5  # fastText reports exp(log(p + 1e-5))
        probs[counts == 0] = 0.0  # fastText predicts nothing for a document without features
        return probs


def fasttext_model(path: str, newline: str = " ") -> FastTextModel:
    """One model per Python worker (Spark reuses workers across tasks and runs): a local file that changed since
    it was loaded (same path, new model) is loaded again."""
    stamp = None
    if not is_url(path) and os.path.exists(path):
        stat = os.stat(path)
        stamp = (stat.st_size, stat.st_mtime_ns)
    return _load(path, stamp, newline)


@cache
def _load(path: str, stamp: tuple | None, newline: str) -> FastTextModel:
    return FastTextModel(path, newline=newline)
