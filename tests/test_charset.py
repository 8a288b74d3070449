"""Charset decoding: header, <meta>, BOM, UTF-8, detection, and replacement as the counted last resort."""

from __future__ import annotations

import codecs

from corpus.html.charset import decode_html, normalize_label

RUSSIAN = "<html><body><p>Городская библиотека работает без выходных, и читатели довольны.</p></body></html>"


def test_http_header_charset_wins():
    d = decode_html(RUSSIAN.encode("koi8-r"), "text/html; charset=KOI8-R")
    assert (d.text, d.charset, d.source) == (RUSSIAN, codecs.lookup("koi8-r").name, "http")


def test_meta_charset_when_the_header_has_none():
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"></head>' + RUSSIAN
    d = decode_html(page.encode("cp1251"), "text/html")
    assert d.text == page and d.source == "meta" and d.label == "cp1251/meta"


def test_bom_overrides_labels():
    d = decode_html(codecs.BOM_UTF8 + "é".encode(), "text/html; charset=iso-8859-1")
    assert (d.text, d.source) == ("é", "bom")


def test_single_byte_label_on_utf8_bytes_is_a_lie():
    d = decode_html("naïve café — «quoted»".encode(), "text/html; charset=ISO-8859-1")
    assert d.text == "naïve café — «quoted»" and d.source == "utf8"


def test_declared_charset_that_fails_falls_through():
    # Declared UTF-8, but the bytes are cp1252: strict UTF-8 fails, so detection decides.
    text = (
        "Le marché couvert du quartier ouvre ses portes chaque samedi matin dès sept heures. Les producteurs de "
        "la région y vendent des fruits, des légumes, du fromage et du pain cuit au feu de bois. Depuis l'année "
        "dernière, la mairie organise également un atelier de cuisine pour les enfants."
    )
    d = decode_html(text.encode("cp1252"), "text/html; charset=utf-8")
    assert d.text == text and d.source == "detected"


def test_no_label_plain_utf8():
    d = decode_html("日本語のページ".encode(), None)
    assert (d.text, d.source) == ("日本語のページ", "utf8")


def test_undecodable_bytes_are_replaced_not_dropped():
    payload = b"<p>ok</p>\xff\xfe\xfa" + "ü".encode()[:1] + b"<p>more</p>" * 3
    d = decode_html(payload, "text/html; charset=utf-8")
    assert "ok" in d.text and "more" in d.text
    assert d.source in ("replaced", "detected")


def test_labels():
    assert normalize_label("ISO-8859-1") == "cp1252"  # WHATWG: latin-1 means windows-1252
    assert normalize_label("gb2312") == "gb18030"
    assert normalize_label("x-no-such-charset") is None
    assert normalize_label('"utf8"') == "utf-8"
