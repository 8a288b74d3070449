"""Coverage-guided fuzzing (atheris, libFuzzer) of the front doors of untrusted input: the WARC/ARC reader, HTTP
body decoding (chunked, gzip, deflate, brotli), charset decoding, the config loader and the PDF recipe up to
and through its sandboxed extraction.

Each target takes bytes and raises only on a bug: an exception that escapes, an invariant broken (a negative
offset, a payload over its cap, a record with two rows), an input that hangs (libFuzzer's -timeout) or eats
memory (-rss_limit_mb). `scripts/fuzz` runs them for as long as asked; tests/test_fuzz.py runs each briefly in CI
and replays every input that ever failed (its REGRESSIONS).

    python -m tests.fuzz_targets TARGET CORPUS_DIR [libFuzzer options]     (scripts/fuzz does this)
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

_SCRATCH = Path(tempfile.gettempdir()) / f"corpus-fuzz-{os.getpid()}"
_LIMIT = 1 << 20


def _scratch(name: str, data: bytes) -> str:
    _SCRATCH.mkdir(exist_ok=True)
    path = _SCRATCH / name
    path.write_bytes(data)
    return str(path)


def fuzz_warc(data: bytes) -> None:
    """Every record and error in file order, none with a negative offset; payloads within the cap; a defect, if
    any, named; the record loop gives each content record one row."""
    from corpus.io.warc import ReadError, WarcRecord, iter_records

    path = _scratch("f.warc.gz" if data[:2] == b"\x1f\x8b" else "f.warc", data)
    last = -1
    for item in iter_records(path):
        assert item.offset >= 0 and item.offset >= last, (item.offset, last)
        last = item.offset
        if isinstance(item, ReadError):
            assert item.kind
            continue
        assert isinstance(item, WarcRecord)
        payload, _ = item.payload(64 * 1024)
        assert len(payload) <= 64 * 1024
        defect = item.defect()
        assert defect is None or isinstance(defect, str)
    _loop_rows(path)


def _loop_rows(path: str) -> None:
    from corpus.io.warc import CONTENT_RECORDS, ReadError, WarcRecord, iter_records
    from corpus.recipes.loop import Recipe

    class Reads(Recipe):  # the record loop with a step that reads every payload (no extraction: fast)
        def __init__(self) -> None:
            self._warned: set[str] = set()
            self.config = _config()

        def process_record(self, rec: WarcRecord, doc):  # type: ignore[no-untyped-def]
            rec.payload(64 * 1024)
            doc.status = "kept"
            return doc

    counts = {"rows": 0}

    def counted():  # type: ignore[no-untyped-def]
        for item in iter_records(path):
            counts["rows"] += isinstance(item, ReadError) or item.rec_type in CONTENT_RECORDS
            yield item

    docs = list(Reads().process_file(path, counted()))
    assert len(docs) == counts["rows"], (len(docs), counts)  # one row per content record and per error
    assert not [d for d in docs if d.status == "kept" and d.removed_by], docs


_config_cache: list = []


def _config():  # type: ignore[no-untyped-def]
    if not _config_cache:
        from corpus.config import load_config

        _config_cache.append(load_config())
    return _config_cache[0]


_ENCODINGS = [None, "gzip", "deflate", "br", "identity"]


def fuzz_http(data: bytes) -> None:
    """Any stored body decodes to at most the cap, whatever it claims."""
    from corpus.io.http import decode_body

    if not data:
        return
    chunked, encoding = bool(data[0] & 1), _ENCODINGS[(data[0] >> 1) % len(_ENCODINGS)]
    limit = 1 + (data[1] if len(data) > 1 else 0) * 512
    body = decode_body(io.BytesIO(data[2:]), limit, chunked, encoding)
    assert len(body.data) <= limit and body.stored_bytes <= len(data)
    assert body.too_large or body.stored_bytes == len(data[2:])


_CONTENT_TYPES = [None, "text/html", "text/html; charset=utf-8", "text/html; charset=iso-8859-1",
                  "text/html; charset=shift_jis", "text/html; charset=utf-16", "text/html; charset=bogus"]  # fmt: skip


def fuzz_charset(data: bytes) -> None:
    from corpus.html.charset import decode_html

    if not data:
        return
    decoded = decode_html(data[1:], _CONTENT_TYPES[data[0] % len(_CONTENT_TYPES)])
    assert isinstance(decoded.text, str) and decoded.charset and decoded.source


def fuzz_config(data: bytes) -> None:
    """A config file or a key=value: a Config or a one-line ConfigError, nothing else."""
    from corpus.config import ConfigError, load_config

    text = data.decode("utf-8", "replace")
    try:
        load_config(_scratch("c.yaml", text.encode()))
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000, str(exc)[:200]
    try:
        load_config(None, [f"input={text}", f"filters.c4.min_num_sentences={text[:200]}"])
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000, str(exc)[:200]


_pdf_recipe: list = []


def fuzz_pdf(data: bytes) -> None:
    """Bytes served as a PDF: one row, whatever they hold (extraction runs in the sandbox)."""
    from corpus import hostile
    from corpus.config import load_config
    from corpus.recipes import FinePdfsRecipe

    if not _pdf_recipe:
        _pdf_recipe.append(
            FinePdfsRecipe(load_config(None, ["recipe=finepdfs", "pdf.time_limit=20", "pdf.ocr_language=null"]))
        )
    block = hostile.http_response(data, [("Content-Type", "application/pdf")])
    record = hostile.warc_record("https://fuzz.test/x.pdf", block)
    docs = list(_pdf_recipe[0].process_file(_scratch("p.warc", record)))
    assert len(docs) == 1 and docs[0].status in ("kept", "removed", "skipped"), docs


TARGETS: dict[str, Callable[[bytes], None]] = {
    "warc": fuzz_warc,
    "http": fuzz_http,
    "charset": fuzz_charset,
    "config": fuzz_config,
    "pdf": fuzz_pdf,
}


# --- seeds: small valid and hostile inputs, built on demand (nothing stored) ----------------------------------


def _tiny_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A page of text for the fuzzer to mutate.")
    data = doc.tobytes()
    doc.close()
    return data


def seeds(target: str) -> list[bytes]:
    from corpus import hostile

    page = hostile.english_page("Seed", 800)
    if target == "warc":
        records = [hostile.html_record(f"https://seed.test/{i}", page) for i in range(2)]
        small = [
            hostile.warc_file(records, True), hostile.warc_file(records, False), hostile.cut_last_record(True, 0.5),
            hostile.lying_length("-5", False), hostile.lying_length("99", True), hostile.shifted_length(40),
            hostile.corrupt_member(2), hostile.short_http_body(), hostile.cut_chunked_body(), hostile.utf16_lie(),
            hostile.chunked_gzip_bomb(4 << 20, chunks=3), hostile.crawler_truncated(),
            b"http://a.test/ 1.2.3.4 20080509190241 text/html 5\nhello\n",  # ARC
        ]  # fmt: skip
        return [s[:200_000] for s in small]
    if target == "http":
        gz = gzip.compress(page)
        chunked = b"".join(b"%x\r\n" % len(gz[i : i + 500]) + gz[i : i + 500] + b"\r\n" for i in range(0, len(gz), 500))
        return [b"\x00\x10" + page, b"\x02\x10" + gz, b"\x03\x10" + chunked + b"0\r\n\r\n", b"\x05\x10"
                + zlib.compress(page), b"\x01\x01" + chunked[:-300]]  # fmt: skip
    if target == "charset":
        text = page.decode()
        return [b"\x01" + page, b"\x00" + text.encode("cp1251", "replace"), b"\x05" + text.encode("utf-16-le"),
                b"\x02" + b"\xef\xbb\xbf" + page, b"\x04" + "日本語のページ".encode("shift_jis")]  # fmt: skip
    if target == "config":
        root = Path(__file__).resolve().parent.parent / "conf"
        return [p.read_bytes() for p in sorted(root.glob("*.yaml"))] + [
            hostile.billion_laughs(4, 4).encode(), hostile.self_alias().encode(), hostile.deep_nesting(80).encode(),
            b"filters:\n  c4:\n    min_num_sentences: 3\nstorage:\n  options:\n    s3: {anon: true}\n",
        ]  # fmt: skip
    if target == "pdf":
        pdf = _tiny_pdf()
        return [pdf, pdf[: len(pdf) // 2], b"%PDF-1.4\n%%EOF\n"]
    raise KeyError(target)


def write_seeds(target: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds(target)):
        (folder / f"seed-{i:02d}").write_bytes(data)


def main(argv: list[str]) -> None:
    import atheris

    target = argv[1]
    with atheris.instrument_imports(include=["corpus", "warcio"]):
        import corpus.config
        import corpus.html.charset
        import corpus.io.http
        import corpus.io.warc
        import corpus.recipes  # noqa: F401 (imported to be instrumented)

    fn = TARGETS[target]
    atheris.Setup([argv[0], *argv[2:]], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
