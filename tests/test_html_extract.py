"""The FineWeb recipe hands a UTF-8 page to trafilatura's sandbox as its payload bytes: the same text must come
out, and only pages whose decoded text is exactly the payload's strict UTF-8 decoding may go that way."""

from __future__ import annotations

import gzip

from corpus.config import load_config
from corpus.html.extract import extract_html
from corpus.recipes import FineWebRecipe
from tests.conftest import shared_path

OPTIONS = {"favor_precision": True, "include_comments": False, "include_tables": True, "deduplicate": False}


def test_extract_html_gives_the_same_text_for_utf8_bytes_and_for_the_str():
    pages = sorted(shared_path("html", "cleaneval-dev", "input").glob("*.html.gz"))[:8]
    compared = 0
    for page in pages:
        payload = gzip.decompress(page.read_bytes())
        try:
            html = payload.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert extract_html(payload, **OPTIONS) == extract_html(html, **OPTIONS)
        compared += 1
    assert compared >= 4


def test_only_exact_utf8_pages_cross_the_sandbox_as_bytes():
    warc = shared_path("ccdev", "ccdev-00004.warc.gz")
    recipe = FineWebRecipe(load_config(None, ["crawl=test"]))
    seen: list[tuple[str, bytes | None]] = []
    extract = recipe.extract

    def spy(doc, html, utf8=None):  # type: ignore[no-untyped-def]
        seen.append((html, utf8))
        return extract(doc, html, utf8)

    recipe.extract = spy  # type: ignore[method-assign]
    try:
        docs = list(recipe.process_file(str(warc)))
    finally:
        recipe.close()
    assert docs and seen
    assert any(utf8 is not None for _, utf8 in seen)
    for html, utf8 in seen:
        if utf8 is not None:
            assert utf8.decode("utf-8") == html
