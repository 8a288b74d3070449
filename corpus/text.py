"""Word and sentence splitting for the quality filters and MinHash.

datatrove splits English text with spaCy (`spacy.blank("en")` plus the sentencizer), and its filters' keep/drop
decisions depend on the exact tokens. Building spaCy `Doc` objects costs about as much as trafilatura itself, so
`SpacyRulesSplitter` re-runs spaCy's tokenizer algorithm (spacy/tokenizer.pyx: whitespace chunks, special cases,
prefix/suffix/infix rules, the special-case matcher) in Python over spaCy's own rule set, memoized per whitespace
chunk. It yields the same tokens and sentence counts as datatrove (tests/test_text.py checks them token for
token against spaCy) at a small fraction of the cost, because most chunks of real text are memo hits.

`NltkSplitter` serves `compat: fineweb-2024` (FineWeb was made with NLTK's `word_tokenize` / punkt).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from itertools import chain
from typing import Any, Protocol

_WS_OR_CHUNK = re.compile(r"\s+|\S+")
#: Whitespace that spaCy makes a token of: anything but single spaces between chunks.
_WS_TOKEN = re.compile(r"[^\S ]| {2}|^ | $")
#: The chunks most words of running text are: ASCII letters, maybe with one trailing , ; : ! or ?. spaCy's English
#: prefix, suffix and infix rules need a character other than an ASCII letter to match anything (the letter-only
#: suffixes, units such as "km" or "K", follow a digit; "'s" needs its apostrophe), and that mark is one of its
#: plain punctuation suffixes, so such a chunk is the word's tokens and then the mark; `_chunk_tokens` takes this
#: path without the affix loop (about 70 % of the distinct chunks of English text; tests/test_text.py checks it).
_PLAIN_CHUNK = re.compile(r"([A-Za-z]+)([,;:!?]?)")


class Splitter(Protocol):
    def words(self, text: str) -> list[str]: ...

    def count_sentences(self, text: str) -> int: ...


class _Memo(dict):
    """A bounded memo whose misses are computed by `compute`; hits run at C speed through `__getitem__`."""

    def __init__(self, compute: Callable[[str], Any], max_size: int) -> None:
        super().__init__()
        self.compute = compute
        self.max_size = max_size

    def __missing__(self, key: str) -> Any:
        if len(self) >= self.max_size:
            self.clear()
        value = self[key] = self.compute(key)
        return value


def is_punct(token: str) -> bool:
    """spaCy's IS_PUNCT lexical attribute: every character is Unicode punctuation (P*)."""
    return all(unicodedata.category(ch).startswith("P") for ch in token)


class SpacyRulesSplitter:
    """spaCy's rule-based tokenizer and sentencizer, reproduced on plain strings (see module docstring)."""

    def __init__(self, lang: str = "en", max_cache: int = 500_000) -> None:
        import spacy
        from spacy.attrs import ORTH
        from spacy.pipeline.sentencizer import Sentencizer

        tokenizer = spacy.blank(lang).tokenizer
        self._prefix_search = tokenizer.prefix_search
        self._suffix_search = tokenizer.suffix_search
        self._infix_finditer = tokenizer.infix_finditer
        self._token_match = tokenizer.token_match
        self._url_match = tokenizer.url_match
        self._specials: dict[str, tuple[str, ...]] = {
            key: tuple(tok[ORTH] for tok in value) for key, value in tokenizer.rules.items()
        }
        # Special cases that contain affix characters are re-applied after affix splitting by spaCy's
        # PhraseMatcher pass; index their affix-split token patterns by first token.
        self._patterns: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for key in self._specials:
            if self._find_prefix(key) or self._find_suffix(key) or self._find_infixes(key) or " " in key:
                pattern = tuple(self._split_chunk(key, with_specials=False))
                self._patterns.setdefault(pattern[0], []).append((pattern, key))
        self.sentence_punct = frozenset(Sentencizer.default_punct_chars)
        self._sentence_punct_re = re.compile("[" + re.escape("".join(sorted(self.sentence_punct))) + "]")
        self._tokens = _Memo(self._chunk_tokens, max_cache)
        self._steps = _Memo(self._sentence_steps, max_cache)
        self._last: tuple[str, list[str]] = ("", [])

    # -- spaCy's affix machinery ---------------------------------------------------------------------------
    def _find_prefix(self, s: str) -> int:
        m = self._prefix_search(s) if self._prefix_search else None
        return m.end() - m.start() if m is not None else 0

    def _find_suffix(self, s: str) -> int:
        m = self._suffix_search(s) if self._suffix_search else None
        return m.end() - m.start() if m is not None else 0

    def _find_infixes(self, s: str) -> list[re.Match]:
        return list(self._infix_finditer(s)) if self._infix_finditer else []

    def _split_chunk(self, string: str, with_specials: bool = True) -> list[str]:
        """Tokenizer._split_affixes + _attach_tokens for one whitespace-free chunk."""
        specials = self._specials if with_specials else {}
        if string in specials:
            return list(specials[string])
        prefixes: list[str] = []
        suffixes: list[str] = []
        last_size = 0
        while string and len(string) != last_size:
            if (self._token_match and self._token_match(string)) or string in specials:
                break
            last_size = len(string)
            pre_len = self._find_prefix(string)
            if pre_len:
                prefix, minus_pre = string[:pre_len], string[pre_len:]
                if minus_pre and minus_pre in specials:
                    string = minus_pre
                    prefixes.append(prefix)
                    break
            suf_len = self._find_suffix(string[pre_len:])
            if suf_len:
                suffix, minus_suf = string[-suf_len:], string[:-suf_len]
                if minus_suf and minus_suf in specials:
                    string = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and pre_len + suf_len <= len(string):
                string = string[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                string = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                string = minus_suf
                suffixes.append(suffix)
        tokens = prefixes
        if string:
            if string in specials:
                tokens.extend(specials[string])
            elif (self._token_match and self._token_match(string)) or (self._url_match and self._url_match(string)):
                tokens.append(string)
            else:
                start = 0
                for match in self._find_infixes(string):
                    s, e = match.start(), match.end()
                    if s == 0:
                        continue
                    if s != start:
                        tokens.append(string[start:s])
                    if s != e:
                        tokens.append(string[s:e])
                    start = e
                if string[start:]:
                    tokens.append(string[start:])
        tokens.extend(reversed(suffixes))
        return tokens

    def _apply_special_patterns(self, tokens: list[str]) -> list[str]:
        """Tokenizer._apply_special_cases: longest matches first, then leftmost; overlaps are dropped."""
        matches = []
        for i, tok in enumerate(tokens):
            for pattern, key in self._patterns.get(tok, ()):
                if tuple(tokens[i : i + len(pattern)]) == pattern:
                    matches.append((i, i + len(pattern), key))
        if not matches:
            return tokens
        matches.sort(key=lambda m: (m[1] - m[0], -m[0]))
        seen: set[int] = set()
        kept = []
        for start, end, key in reversed(matches):
            if start not in seen and end - 1 not in seen:
                kept.append((start, end, key))
            seen.update(range(start, end))
        out: list[str] = []
        pos = 0
        for start, end, key in sorted(kept):
            out.extend(tokens[pos:start])
            out.extend(self._specials[key])
            pos = end
        out.extend(tokens[pos:])
        return out

    def _chunk_tokens(self, chunk: str) -> tuple[str, ...]:
        plain = _PLAIN_CHUNK.fullmatch(chunk)
        if plain is not None and chunk not in self._specials:  # "word" or "word," (see _PLAIN_CHUNK)
            word, mark = plain.groups()
            tokens = list(self._specials.get(word, (word,)))
            if mark:
                tokens.append(mark)
        else:
            tokens = self._split_chunk(chunk)
        return tuple(self._apply_special_patterns(tokens))

    def _sentence_steps(self, chunk: str) -> tuple[int, bool, int, bool]:
        """The sentencizer's effect of one chunk: (sentences added, period pending after) when entered without
        and with a pending sentence-final punctuation mark."""
        out: list[int | bool] = []
        tokens = self._tokens[chunk]
        for seen_period in (False, True):
            added = 0
            for tok in tokens:
                in_punct = tok in self.sentence_punct
                if seen_period and not in_punct and not is_punct(tok):
                    added += 1
                    seen_period = False
                elif in_punct:
                    seen_period = True
            out += [added, seen_period]
        return tuple(out)  # type: ignore[return-value]

    # -- public API -------------------------------------------------------------------------------------------
    def chunk_tokens(self, chunk: str) -> tuple[str, ...]:
        return self._tokens[chunk]

    def words(self, text: str) -> list[str]:
        """datatrove's `split_into_words(text, "en")`: spaCy tokens, stripped, whitespace tokens dropped.
        The last result is kept, as datatrove's lru_cache does, for consecutive filters on the same text."""
        if text is self._last[0] or text == self._last[0]:
            return self._last[1]
        words = list(chain.from_iterable(map(self._tokens.__getitem__, text.split())))
        self._last = (text, words)
        return words

    def count_sentences(self, text: str) -> int:
        """datatrove's `len(split_into_sentences(text, "en"))`: spaCy's sentencizer (a sentence ends after a
        sentence-final mark, at the next token that is not punctuation) over the token stream, in which
        whitespace runs other than a single space are tokens of their own."""
        if not self._sentence_punct_re.search(text):
            return 1 if text else 0  # every non-empty text has a token, and nothing can end a sentence
        count = 1
        seen_period = False
        if not _WS_TOKEN.search(text):  # the usual case: chunks separated by single spaces
            for added_f, seen_f, added_t, seen_t in map(self._steps.__getitem__, text.split(" ")):
                if seen_period:
                    count, seen_period = count + added_t, seen_t
                else:
                    count, seen_period = count + added_f, seen_f
            return count
        for m in _WS_OR_CHUNK.finditer(text):
            piece = m.group()
            if piece[0].isspace():
                # A single space after a token is folded into that token; any other whitespace is a token.
                if (m.start() == 0 or piece != " ") and seen_period:
                    count += 1
                    seen_period = False
            else:
                added_f, seen_f, added_t, seen_t = self._steps[piece]
                count, seen_period = (count + added_t, seen_t) if seen_period else (count + added_f, seen_f)
        return count


class NltkSplitter:
    """NLTK's `word_tokenize` / `sent_tokenize`, as FineWeb's 2024 filters used them.

    punkt's trained English parameters are a download; when they are installed (`nltk.download("punkt_tab")`)
    this is exactly FineWeb's tokenization. Offline it falls back to an untrained punkt model (same algorithm,
    no learned abbreviations), which differs only around abbreviations such as "Dr." (README, "Fidelity").
    """

    def __init__(self) -> None:
        from nltk.tokenize import NLTKWordTokenizer
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        self.exact = True
        try:
            from nltk.tokenize import _get_punkt_tokenizer

            self._sentences = _get_punkt_tokenizer("english")
        except (LookupError, ImportError, OSError):
            self._sentences = PunktSentenceTokenizer()
            self.exact = False
        self._words = NLTKWordTokenizer()

    def sentences(self, text: str) -> list[str]:
        return [s.strip() for s in self._sentences.tokenize(text) if s.strip()]

    def words(self, text: str) -> list[str]:
        tokens = [t for sent in self._sentences.tokenize(text) for t in self._words.tokenize(sent)]
        return [t.strip() for t in tokens if t.strip()]

    def count_sentences(self, text: str) -> int:
        return len(self.sentences(text))


@cache
def splitter(compat: str = "datatrove", lang: str = "en") -> Splitter:
    """One splitter per Python worker (spaCy's rules take ~1 s to load)."""
    if compat == "fineweb-2024":
        return NltkSplitter()
    return SpacyRulesSplitter(lang)
