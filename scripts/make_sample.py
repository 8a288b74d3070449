"""Write the demo's sample crawl: two small Common-Crawl-style WARC files (per-record gzip, request + response
records), deterministic byte for byte.

The English pages are sections of the Python reference manual that every CPython installation ships
(`pydoc_data.topics`), laid out as web articles with navigation and footer boilerplate. Around them are the
cases a crawl is full of: pages in other languages, a boilerplate-only page, a list-like page, an exact
duplicate, a blocklisted URL, a 404, a gzip-encoded response, a windows-1251 page labelled only by its <meta>
tag, a UTF-8 page whose HTTP header claims latin-1, an image, a PDF, a revisit record and, at the end of the
second file, a truncated record.

    python scripts/make_sample.py data/sample
"""

from __future__ import annotations

import gzip
import html
import io
import os
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

ENGLISH_TOPICS = [
    "assert", "assignment", "async", "atom-identifiers", "augassign", "binary", "break", "calls", "class",
    "comparisons", "context-managers", "continue", "conversions", "del", "dict", "exceptions", "execmodel",
    "for", "function", "global", "identifiers", "if", "imaginary", "import", "in", "integers", "lambda",
    "naming", "nonlocal", "numbers", "objects", "pass", "power", "raise", "return", "shifting", "slicings",
    "subscriptions", "truth", "try", "types", "unary", "while", "with", "yield",
]  # fmt: skip

GERMAN = """Die Stadtbibliothek bleibt in den Sommerferien an allen Werktagen geöffnet. Wer Bücher ausleihen
möchte, braucht lediglich einen gültigen Ausweis, der an der Information ausgestellt wird.

Neben Romanen und Sachbüchern bietet die Bibliothek eine wachsende Sammlung von Hörbüchern, Zeitschriften und
Brettspielen an. Kinder und Jugendliche können sich außerdem für das Leseprogramm anmelden, bei dem es für
jedes gelesene Buch einen Stempel gibt.

Die Mitarbeiterinnen und Mitarbeiter helfen gerne bei der Suche nach Literatur und erklären, wie man den
Online-Katalog benutzt. Für Gruppen und Schulklassen werden auf Anfrage Führungen angeboten."""

FRENCH = """Le marché couvert du quartier ouvre ses portes chaque samedi matin dès sept heures. Les producteurs de
la région y vendent des fruits, des légumes, du fromage et du pain cuit au feu de bois.

Depuis l'année dernière, la mairie organise également un atelier de cuisine pour les enfants. Les recettes
changent selon les saisons et utilisent uniquement des produits achetés sur place.

Les habitants apprécient l'ambiance conviviale et la qualité des produits. Beaucoup viennent à pied ou à vélo,
car le stationnement reste difficile aux heures de pointe."""

RUSSIAN = """Городская библиотека работает без выходных. Читатели могут взять домой книги, журналы и
аудиокниги, а также воспользоваться читальным залом.

Для детей по субботам проводятся занятия, на которых библиотекари читают вслух и обсуждают прочитанное."""

NAV = (
    '<nav><a href="/">Home</a> | <a href="/docs/">Docs</a> | <a href="/blog/">Blog</a> | <a href="/about/">About</a>'
    "</nav>"
)
FOOTER = (
    '<footer><p>Copyright 2024 Example Docs. <a href="/privacy/">Privacy policy</a> | <a href="/terms/">Terms of use'
    "</a></p></footer>"
)
START = datetime(2024, 3, 1, tzinfo=timezone.utc)


def topic_html(name: str, text: str) -> str:
    """A reference-manual topic rendered as an article page: its headings and prose paragraphs (code examples
    and grammar rules are left out, as a docs site's prose would be on its own)."""
    text = re.sub(r'"([^"\s]+)"', r"\1", text)  # the manual quotes inline code: "assert" -> assert
    blocks = re.split(r"\n\s*\n", text.strip())
    body, title = [], name
    for block in blocks:
        lines = block.split("\n")
        if len(lines) >= 2 and set(lines[1].strip()) <= set("*=-~^") and lines[1].strip():
            heading = lines[0].strip()
            if title == name:
                title = heading  # the first heading is the page title
            else:
                body.append(f"<h2>{html.escape(heading)}</h2>")
            rest = "\n".join(lines[2:]).strip()
            if rest:
                body.append(f"<p>{html.escape(' '.join(rest.split()))}</p>")
        elif block.startswith(" ") or "::=" in block:
            continue
        else:
            body.append(f"<p>{html.escape(' '.join(block.split()))}</p>")
    return page(title, "\n".join(body))


def page(title: str, body: str, lang: str = "en", head: str = '<meta charset="utf-8">') -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head>{head}<title>{html.escape(title)}</title></head>\n'
        f"<body>{NAV}<main><article><h1>{html.escape(title)}</h1>\n{body}\n</article></main>{FOOTER}</body></html>\n"
    )


def paragraphs(text: str) -> str:
    return "\n".join(f"<p>{html.escape(' '.join(p.split()))}</p>" for p in text.split("\n\n"))


def banned_word() -> str:
    """A word from datatrove's URL word blocklist, read at generation time (no such word is kept here)."""
    import importlib.util

    spec = importlib.util.find_spec("datatrove")
    assert spec and spec.submodule_search_locations
    path = os.path.join(next(iter(spec.submodule_search_locations)), "assets", "banned_words.txt")
    with open(path, encoding="utf-8") as fh:
        return next(w.strip() for w in fh if w.strip() and not w.startswith("#") and w.strip().isalpha())


class Crawl:
    def __init__(self, stream: io.BufferedIOBase) -> None:
        self.writer = WARCWriter(stream, gzip=True)
        self.clock = START

    def _headers(self, url: str, kind: str) -> dict[str, str]:
        self.clock += timedelta(seconds=7)
        return {
            "WARC-Date": self.clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, kind + ':' + url)}>",
        }

    def response(
        self,
        url: str,
        payload: bytes,
        content_type: str,
        status: str = "200 OK",
        extra_http: list[tuple[str, str]] | None = None,
        payload_type: str | None = None,
    ) -> None:
        request = StatusAndHeaders(f"GET {url} HTTP/1.1", [("User-Agent", "corpus-sample")], is_http_request=True)
        self.writer.write_record(
            self.writer.create_warc_record(
                url, "request", http_headers=request, warc_headers_dict=self._headers(url, "request")
            )
        )
        http = StatusAndHeaders(status, [("Content-Type", content_type), *(extra_http or [])], protocol="HTTP/1.1")
        warc_headers = self._headers(url, "response")
        mime = payload_type or content_type.split(";")[0]
        warc_headers["WARC-Identified-Payload-Type"] = mime
        record = self.writer.create_warc_record(
            url, "response", payload=io.BytesIO(payload), http_headers=http, warc_headers_dict=warc_headers
        )
        self.writer.write_record(record)

    def revisit(self, url: str) -> None:
        headers = self._headers(url, "revisit")
        headers["WARC-Refers-To-Target-URI"] = url
        record = self.writer.create_revisit_record(
            url, "sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", url, headers["WARC-Date"]
        )
        for key, value in headers.items():
            record.rec_headers.replace_header(key, value)
        self.writer.write_record(record)


def html_response(crawl: Crawl, url: str, doc: str, charset: str = "utf-8", header: str | None = "utf-8") -> None:
    content_type = f"text/html; charset={header}" if header else "text/html"
    crawl.response(url, doc.encode(charset), content_type)


def write_first(path: str) -> None:
    from pydoc_data.topics import topics

    with open(path, "wb") as fh:
        crawl = Crawl(fh)
        for i, name in enumerate(ENGLISH_TOPICS[:24]):
            url = f"https://docs.example.org/reference/{name}.html"
            html_response(crawl, url, topic_html(name, topics[name]), header="utf-8" if i % 3 else None)
        html_response(crawl, "https://bibliothek.example.de/sommer", page("Sommerferien", paragraphs(GERMAN), "de"))
        html_response(crawl, "https://marche.example.fr/samedi", page("Le marché", paragraphs(FRENCH), "fr"))
        # Labelled only by its <meta> tag, and in a single-byte Cyrillic charset.
        russian = page("Библиотека", paragraphs(RUSSIAN), "ru", head='<meta charset="windows-1251">')
        html_response(crawl, "https://biblioteka.example.ru/", russian, charset="windows-1251", header=None)
        boiler = page("Links", "\n".join(f'<p><a href="/p{i}">Page {i}</a></p>' for i in range(40)))
        html_response(crawl, "https://links.example.com/all", boiler)
        html_response(crawl, f"https://videos.example.com/{banned_word()}-clips", page("Clips", paragraphs(FRENCH)))
        crawl.response("https://docs.example.org/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
        crawl.revisit("https://docs.example.org/reference/assert.html")


def write_second(path: str) -> None:
    from pydoc_data.topics import topics

    buf = io.BytesIO()
    crawl = Crawl(buf)
    crawl.clock += timedelta(hours=1)
    for name in ENGLISH_TOPICS[24:]:
        url = f"https://docs.example.org/reference/{name}.html"
        doc = topic_html(name, topics[name])
        if name == "lambda":  # served gzip-compressed
            crawl.response(url, gzip.compress(doc.encode(), mtime=0), "text/html; charset=utf-8",
                           extra_http=[("Content-Encoding", "gzip")])  # fmt: skip
        elif name == "while":  # UTF-8 bytes behind a latin-1 label
            html_response(crawl, url, doc.replace("loop", "loop — «while»"), header="iso-8859-1")
        elif name == "raise":  # personal data for the PII step: an email address and a public IP address
            contact = (
                "<p>Questions about this page can be sent to Docs.Team@example.org, and the mirror that serves "
                "it answers at 93.184.216.34 for anyone who wants to check the copy.</p>"
            )
            html_response(crawl, url, doc.replace("</article>", contact + "</article>"))
        else:
            html_response(crawl, url, doc)
    # The same page again under a tracking URL: an exact duplicate, for the dedup stage.
    dup = topic_html("try", topics["try"])
    html_response(crawl, "https://docs.example.org/reference/try.html?utm_source=feed", dup)
    html_response(crawl, "https://docs.example.org/missing", page("Not found", "<p>Nothing here.</p>"))
    crawl.response("https://docs.example.org/missing.html", b"<html><body>Not found</body></html>", "text/html",
                   status="404 Not Found")  # fmt: skip
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    crawl.response("https://docs.example.org/guide.pdf", pdf, "application/pdf")
    data = buf.getvalue()
    # A last record cut short, as a crashed crawler leaves it: the reader must report it, not fail.
    tail = io.BytesIO()
    Crawl(tail).response("https://docs.example.org/cut.html", page("Cut", paragraphs(GERMAN)).encode(), "text/html")
    with open(path, "wb") as fh:
        fh.write(data + tail.getvalue()[: len(tail.getvalue()) // 2])


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else "data/sample"
    os.makedirs(out, exist_ok=True)
    write_first(os.path.join(out, "sample-00000.warc.gz"))
    write_second(os.path.join(out, "sample-00001.warc.gz"))
    print(f"sample written to {out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
