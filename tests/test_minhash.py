"""MinHash signatures: datatrove's exactly when configured so, and LSH detection as theory predicts."""

from __future__ import annotations

import numpy as np
import pytest
import xxhash

from corpus.minhash import MinHasher, MinhashParams, simplify_text, simplify_text_2024
from corpus.synthetic import SyntheticCorpus, detection_probability, jaccard
from tests.conftest import SHARED

SAMPLES = [
    "Héllo, Wörld! The 3.14 numbers; 1,000,000 and ٣٫١٤ are normalized — also «quotes».",
    "I'm sure they can't; don't you think? E-mail: someone@example.com, 10:30 a.m.",
    "Ａｒａｂｉｃ ٣ and Ｆｕｌｌｗｉｄｔｈ text\twith\u00a0odd  spacing\u2028and a line separator",
    "  short  ",
    "",
    "Ünïcödé çåñ bé ñørmàlîzèd tóò: naïve café résumé coöperate",
]


def _texts() -> list[str]:
    corpus = SyntheticCorpus.create(seed=3, vocabulary_size=2000)
    texts = SAMPLES + list(corpus.documents(40))
    gold = SHARED / "html" / "cleaneval-dev" / "GoldStandard"
    if gold.exists():
        texts += [p.read_text(errors="replace") for p in sorted(gold.iterdir())[:40]]
    return texts


def test_simplify_text_is_datatrove_s():
    from datatrove.utils.text import simplify_text as reference

    for text in _texts():
        assert simplify_text(text) == reference(text)
    assert simplify_text_2024("Well-known, 12 items!") == "wellknown 0 items"


@pytest.mark.parametrize("shingle_hash", ["sha1", "xxhash"])
def test_signatures_equal_datatrove_s(shingle_hash):
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    reference = MinhashDedupSignature(
        output_folder="/tmp/unused", config=MinhashConfig(hash_config=HashConfig(precision=64, hash_fc=shingle_hash))
    )
    ours = MinHasher(MinhashParams(shingle_hash=shingle_hash, permutation="mersenne"))
    for text in _texts():
        shingles = reference.get_shingles(text)
        expected = np.array(reference.get_signature(shingles)).ravel() if shingles.size else None
        got = ours.signature(text)
        assert (expected is None and got is None) or np.array_equal(expected, got), text[:80]


def test_fast_signatures_are_deterministic_and_word_based():
    hasher = MinHasher(MinhashParams())
    corpus = SyntheticCorpus.create(seed=5, vocabulary_size=3000)
    text = corpus.document()
    sig = hasher.signature(text)
    assert sig.dtype == np.uint64 and sig.shape == (112,)
    assert np.array_equal(sig, MinHasher(MinhashParams()).signature(text))  # same seed, other worker
    assert np.array_equal(sig, hasher.signature(text.upper().replace(" ", " ,  ")))  # same normalized words
    assert not np.array_equal(sig, MinHasher(MinhashParams(seed=2)).signature(text))
    assert hasher.signature("four words only here") is None
    keys = hasher.band_keys(sig)
    assert len(keys) == 14 and all(len(k) == 16 for k in keys)


@pytest.mark.parametrize("params", [MinhashParams(), MinhashParams(shingle_hash="sha1", permutation="mersenne")])
def test_band_collisions_follow_the_s_curve(params):
    """Candidate pairs (any equal band) at each similarity level, against 1 - (1 - s^8)^14."""
    hasher = MinHasher(params)
    corpus = SyntheticCorpus.create(seed=11)
    observed: dict[float, list[bool]] = {0.5: [], 0.7: [], 0.8: [], 0.9: []}
    similarities: dict[float, list[float]] = {k: [] for k in observed}
    rates = {0.5: 0.07, 0.7: 0.034, 0.8: 0.021, 0.9: 0.0105}  # word substitution rate -> about that Jaccard
    for target, rate in rates.items():
        for _ in range(250):
            base = corpus.document(300, 500)
            copy = corpus.variant(base, rate)
            a, b = hasher.band_keys(hasher.signature(base)), hasher.band_keys(hasher.signature(copy))
            observed[target].append(any(x == y for x, y in zip(a, b)))
            similarities[target].append(jaccard(base, copy))
    for target in observed:
        expected = np.mean([detection_probability(s) for s in similarities[target]])
        rate = np.mean(observed[target])
        assert abs(rate - expected) < 0.09, (target, rate, expected)
    unrelated = [hasher.band_keys(hasher.signature(corpus.document())) for _ in range(200)]
    collisions = sum(any(x == y for x, y in zip(a, b)) for i, a in enumerate(unrelated) for b in unrelated[i + 1 :])
    assert collisions == 0


@pytest.mark.parametrize(
    "params",
    [MinhashParams(), MinhashParams(precision=32), MinhashParams(shingle_hash="sha1", permutation="mersenne")],
    ids=["default", "32-bit", "datatrove-hashing"],
)
@pytest.mark.parametrize("compat", ["datatrove", "fineweb-2024"])
def test_batch_keys_equal_per_document_signatures(params, compat):
    """`keys` hashes a whole batch at once (Arrow splits and deduplicates the chunks); it must give every
    document what `signature` and `band_keys` give it alone, whatever the batch and group boundaries."""
    texts = [
        *_texts(),
        "cannot gonna wanna lemme 10km 5kg $100 US$ 3pm #tag @user :) e.g. i.e. ' s",  # spaCy splits these
        "one two three four",  # too short for a 5-gram
        "\ud800 lone surrogate in some words here today",  # not valid UTF-8: the per-document path
    ]
    hasher = MinHasher(params, compat)
    expected = []
    for text in texts:
        signature = hasher.signature(text)
        normalized = " ".join(hasher.chunks(text)).encode("utf-8", "surrogatepass")
        bands = None if signature is None else hasher.band_keys(signature)
        expected.append((xxhash.xxh3_128_digest(normalized), bands))
    assert sum(keys is None for _, keys in expected) >= 3
    for max_shingles, slice_chars in ((1, 1 << 21), (700, 5000), (4096, 1), (1 << 30, 1 << 30)):
        assert hasher.keys(texts, max_shingles=max_shingles, slice_chars=slice_chars) == expected
    assert hasher.keys(texts[-2:-1]) == expected[-2:-1]
    assert hasher.keys([]) == []
    assert hasher.keys(["", " "]) == [expected[SAMPLES.index("")]] * 2
