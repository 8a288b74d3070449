"""The fast splitter must produce datatrove's (spaCy's) tokens and sentence counts exactly."""

from __future__ import annotations

import random

import pytest

from corpus.text import SpacyRulesSplitter, splitter
from tests.conftest import SHARED

EDGE_CASES = [
    "",
    "   ",
    "Hello world.",
    "Don't stop! U.S. officials said so at 5p.m. yesterday :) (really?)",
    "e-mail me at someone@example.com or visit https://example.com/a-b?c=d.",
    "Mr. Smith paid $3.50 for 2kg... 'Quoted' \"text\" — and «more».",
    "well-known, state-of-the-art; 10,000 people/day",
    "a.  (b)\tc\nd  e.\r\n f",
    "Hi!!! there?! ...and then",
    "日本語のテキスト。次の文！",
    "Ein Satz. Noch einer? Ja!",
    ":):-) 8-) <3 ^_^ (-_-)",
    "I'm you're they'll we'd can't won't ain't y'all",
]


def _texts() -> list[str]:
    texts = list(EDGE_CASES)
    rng = random.Random(7)
    alphabet = list("abc ABC.,;:!?'\"-()[]{}$%&/\\\n\t  0123456789éü—…«»")
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120))) for _ in range(300)]
    for folder in ("cleaneval-dev", "cleanportaleval"):
        gold = SHARED / "html" / folder / "GoldStandard"
        if gold.exists():
            texts += [p.read_text(errors="replace") for p in sorted(gold.iterdir())[:60]]
    sentences = SHARED / "langid" / "lingua-testdata" / "sentences"
    if sentences.exists():
        texts += [p.read_text(errors="replace")[:5000] for p in sorted(sentences.iterdir())[:40]]
    return texts


@pytest.fixture(scope="module")
def reference():
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    return load_word_tokenizer("en")


def test_words_match_datatrove_spacy(reference):
    ours = SpacyRulesSplitter()
    mismatches = [t for t in _texts() if ours.words(t) != reference.word_tokenize(t)]
    assert mismatches == []


def test_sentence_counts_match_datatrove_spacy(reference):
    from datatrove.utils.text import split_into_sentences

    ours = SpacyRulesSplitter()
    lines = [line.strip() for text in _texts() for line in text.splitlines() if line.strip()]
    lines += [t for t in EDGE_CASES if t]
    mismatches = [
        (line, ours.count_sentences(line))
        for line in lines
        if ours.count_sentences(line) != len(split_into_sentences(line))
    ]
    assert mismatches == []


def test_memo_is_bounded_and_results_stable():
    small = SpacyRulesSplitter(max_cache=10)
    text = " ".join(f"word{i}." for i in range(100))
    first = small.words(text)
    assert len(small._tokens) <= 10
    assert small.words(text + " ") == first  # recomputed after evictions, same tokens


def test_splitter_is_shared_per_worker():
    assert splitter() is splitter()
    assert splitter("fineweb-2024") is not splitter()
