"""Language identification with the real LID-176 model, and fetching a model from a URL."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from corpus.assets import AssetError, fetch
from corpus.document import Document
from corpus.filters.language import LanguageFilter
from corpus.lid import LanguageIdentifier, default_model_path

SENTENCES = {
    "en": "The library is open every weekday during the summer holidays.",
    "de": "Die Bibliothek ist in den Sommerferien an allen Werktagen geöffnet.",
    "fr": "La bibliothèque est ouverte tous les jours de la semaine pendant les vacances.",
    "ru": "Библиотека открыта каждый будний день во время летних каникул.",
    "ja": "図書館は夏休みの間、毎週平日に開いています。",
}


def test_labels_known_sentences():
    lid = LanguageIdentifier()
    for language, sentence in SENTENCES.items():
        best, score = lid.predict(sentence)[0]
        assert best == language and score > 0.5


def test_language_filter_annotates_and_decides():
    flt = LanguageFilter()
    english, german = Document("a", SENTENCES["en"], "u"), Document("b", SENTENCES["de"], "u")
    assert flt.filter(english) == (True, None) and english.language == "en"
    assert flt.filter(german) == (False, "other_language") and german.language == "de"
    assert LanguageFilter(languages=None).filter(german) == (True, None)
    assert LanguageFilter(languages=["de", "fr"]).filter(german) == (True, None)


def test_newline_handling_matches_the_mode():
    lid = LanguageIdentifier()
    text = "first line\nsecond line of English text about the weather"
    assert lid.predict(text, newline=" ") == lid.predict(text.replace("\n", " "))
    assert lid.predict(text, newline="") == lid.predict(text.replace("\n", ""))


@pytest.fixture
def http_root(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_model_from_a_url_is_downloaded_once(http_root, tmp_path_factory, monkeypatch):
    root, base = http_root
    shutil.copy(default_model_path(), root / "lid.176.ftz")
    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    path = fetch(f"{base}/lid.176.ftz", "language-ID model", "filters.language.model")
    assert Path(path).read_bytes() == Path(default_model_path()).read_bytes()
    (root / "lid.176.ftz").unlink()  # a second fetch must not need the server
    assert fetch(f"{base}/lid.176.ftz", "language-ID model", "filters.language.model") == path
    lid = LanguageIdentifier(f"{base}/lid.176.ftz")
    assert lid.predict(SENTENCES["fr"])[0][0] == "fr"
    with pytest.raises(AssetError, match=r"set filters\.language\.model to its local path"):
        fetch(f"{base}/missing.bin", "language-ID model", "filters.language.model")
