"""Each filter's rules on small documents, the exactness of the fast n-gram statistics, and the 2024 switches."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from corpus.document import Document
from corpus.filters.c4 import C4QualityFilter
from corpus.filters.fineweb import FINEWEB_2024_STOP_CHARS, FineWebQualityFilter
from corpus.filters.gopher import GopherQualityFilter, GopherRepetitionFilter, NGrams

PROSE = (
    "The committee met on Tuesday to discuss the budget for the coming year. Members agreed that the "
    "library needs more funding, and that the park should have new benches. The mayor thanked everyone "
    "for their work and said that the town would publish the final plan in the spring. Several residents "
    "asked questions about the schedule, and the chair promised to answer them at the next meeting. "
)


def doc(text: str, url: str = "https://example.org/page") -> Document:
    return Document(id="<urn:test>", text=text, url=url)


def reason(flt, text: str) -> str | None:
    keep, why = flt.filter(doc(text))
    return None if keep else why


# -- Gopher repetition --------------------------------------------------------------------------------------------
def test_gopher_repetition_keeps_prose_and_records_signals():
    d = doc("\n\n".join(PROSE.split(". ")))
    assert GopherRepetitionFilter().filter(d) == (True, None)
    assert {"gopher_repetition.dup_line_frac", "gopher_repetition.top_2_gram"} <= d.signals.keys()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("same paragraph here\n\n" * 5 + "other", "dup_para_frac"),
        ("a line\n" * 5 + "x\ny", "dup_line_frac"),
        (("spam eggs " * 50) + PROSE, "top_2_gram"),
        (PROSE + " ".join(["the quick brown fox jumps over"] * 12), "top_3_gram"),
    ],
)
def test_gopher_repetition_reasons(text, expected):
    assert reason(GopherRepetitionFilter(), text) == expected


def _top_naive(words: list[str], n: int) -> int:
    counts = Counter(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    if not counts:
        return 0
    gram, count = counts.most_common(1)[0]
    return len(gram) * count


def _dup_naive(words: list[str], n: int) -> int:
    seen: set[str] = set()
    repeated = idx = 0
    while idx < len(words) - n + 1:
        gram = "".join(words[idx : idx + n])
        if gram in seen:
            repeated += len(gram)
            idx += n
        else:
            seen.add(gram)
            idx += 1
    return repeated


def test_ngram_statistics_equal_datatrove_definitions():
    # Small vocabularies force repeats, ties and concatenation collisions ("ab"+"c" == "a"+"bc").
    rng = random.Random(1)
    vocab = ["a", "b", "ab", "ba", "c", "abc", "é", "xxxxx", "\ud800"]
    for _ in range(2000):
        words = [rng.choice(vocab[: rng.randint(2, len(vocab))]) for _ in range(rng.randint(0, 40))]
        grams = NGrams(words)
        for n in range(2, 11):
            if len(words) >= n:
                assert grams.top_chars(n) == _top_naive(words, n), (words, n)
            assert grams.duplicated_chars(n) == _dup_naive(words, n), (words, n)


# -- Gopher quality ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PROSE, None),
        ("Too short to count.", "gopher_short_doc"),
        (" ".join(["#tag the and"] * 40), "gopher_too_many_hashes"),
        (" ".join(["wait... the and of"] * 30), "gopher_too_many_ellipsis"),
        ("\n".join(["- the item of a list and more words here"] * 20), "gopher_too_many_bullets"),
        (" ".join(["1234 5678 9012 ; the and"] * 30), "gopher_below_alpha_threshold"),
        (" ".join(["extraordinarily incomprehensibilities"] * 40), "gopher_above_avg_threshold"),
        (" ".join(["a b c d e f g h i j"] * 10), "gopher_below_avg_threshold"),
    ],
)
def test_gopher_quality_reasons(text, expected):
    assert reason(GopherQualityFilter(), text) == expected


def test_gopher_stop_words_distinct_vs_occurrences():
    # "the" six times and no other stop word: FineWeb (2024) counted occurrences, datatrove counts words.
    text = " ".join(["the quick brown fox jumps over lazy dogs"] * 6) + " again and again jumping"
    text = text.replace(" and ", " plus ")
    assert reason(GopherQualityFilter(), text) == "gopher_enough_stop_words"
    assert reason(GopherQualityFilter(count_distinct_stop_words=False), text) is None


# -- C4 ----------------------------------------------------------------------------------------------------------------
def test_c4_removes_lines_and_keeps_the_rest():
    text = "\n".join(
        [
            "Short line",  # fewer than 3 words
            "Please enable JavaScript to view this page properly.",
            "We use cookies to improve your experience on this site.",
            *PROSE.split(". "),
            "Cited fact here [1] and more [citation needed] words.",
        ]
    )
    d = doc(text)
    assert C4QualityFilter().filter(d) == (True, None)
    assert "JavaScript" not in d.text and "cookies" not in d.text and "Short line" not in d.text
    assert "Cited fact here  and more  words." in d.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PROSE + "\nLorem ipsum dolor sit amet, consectetur adipiscing.", "lorem_ipsum"),
        (PROSE + "\nfunction f() { return the value; }", "curly_bracket"),
        ("One sentence only here.\nAnd another one here.", "too_few_sentences"),
    ],
)
def test_c4_document_rules(text, expected):
    assert reason(C4QualityFilter(), text) == expected


def test_c4_terminal_punctuation_rule_is_off_by_default():
    text = "\n".join(s.rstrip(".") for s in PROSE.split(". ")) + "\nOne. Two. Three. Four. Five."
    assert reason(C4QualityFilter(), text) is None
    assert reason(C4QualityFilter(filter_no_terminal_punct=True), "\n".join(PROSE.split(". "))) == "too_few_sentences"


# -- FineWeb quality ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PROSE.replace(". ", ".\n"), None),
        ("\n".join(["no punctuation in this line at all ok"] * 3 + ["x y z"] * 30), "line_punct_ratio"),
        ("\n".join(["Short."] * 3 + ["A much longer line that ends with a period here."]), "short_line_ratio"),
        (PROSE.replace(". ", ".\n") + "\nRepeated line here, quite long indeed.\n" * 2, "char_dup_ratio"),
        ("\n".join(f"Supercalifragilisticexpialidocious{i}." for i in range(20)), "list_ratio"),
        ("\n\n  \n", "empty"),
    ],
)
def test_fineweb_quality_reasons(text, expected):
    assert reason(FineWebQualityFilter(), text) == expected


def test_fineweb_2024_counts_quotes_as_terminal_and_is_not_strict():
    lines = ['He said "yes"'] * 2 + ["plain words without any end"] * 13
    text = "\n".join(lines)  # 2/15 = 0.133 of lines end in a 2024 stop char, none in datatrove's set
    assert reason(FineWebQualityFilter(), text) == "line_punct_ratio"
    old = FineWebQualityFilter(stop_chars=FINEWEB_2024_STOP_CHARS, skip_empty_lines=False, strict_comparisons=False)
    assert reason(old, text) != "line_punct_ratio"
