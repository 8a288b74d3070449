"""WARC/ARC reading on real archives, including broken ones: every good record out, every bad one named."""

from __future__ import annotations

import gzip

import pytest
from warcio.archiveiterator import ArchiveIterator

from corpus.document import to_record_batch
from corpus.io.warc import ReadError, WarcRecord, iter_records, parse_date, sniff_type
from corpus.recipes.loop import read_error_document, record_document
from tests.conftest import SHARED, shared_path


def _archives() -> list:
    root = SHARED / "warc"
    if not root.exists():  # one placeholder, which skips with the reason
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared data not available: {root}"))]
    return sorted(p for p in root.rglob("*") if p.is_file())


def _warcio_offsets(path) -> tuple[list[int], bool]:
    """Offsets of the records warcio itself yields (warcinfo/arc headers excluded), and whether it reached the end
    cleanly."""
    offsets = []
    try:
        with open(path, "rb") as fh:
            iterator = ArchiveIterator(fh)
            for record in iterator:
                record.content_stream().read()
                if record.rec_type not in ("warcinfo", "arc_header"):
                    offsets.append(iterator.get_record_offset())
    except Exception:
        return offsets, False
    return offsets, True


@pytest.mark.parametrize("path", _archives(), ids=lambda p: str(p.relative_to(SHARED / "warc")) if p else "absent")
def test_every_archive_is_read_to_its_end(path):
    items = []
    for item in iter_records(str(path)):  # must not raise
        if isinstance(item, WarcRecord):
            data, _ = item.payload(1 << 20)  # payloads decode (chunking, gzip, brotli) without raising
            assert isinstance(data, bytes)
        items.append(item)
    records = [i for i in items if isinstance(i, WarcRecord)]
    errors = [i for i in items if isinstance(i, ReadError)]
    offsets = [i.offset for i in items]
    assert offsets == sorted(offsets) and all(o >= 0 for o in offsets), "in file order, no negative offset"
    assert all(error.kind for error in errors)
    # every record's fields fit the document schema (an HTTP "status" of 14 digits once failed the task here)
    assert all(r.http_status is None or 100 <= r.http_status <= 999 for r in records)
    rows = [record_document(r, "c") for r in records] + [read_error_document(e, "c") for e in errors]
    assert to_record_batch(rows).num_rows == len(items)
    expected, clean = _warcio_offsets(path)
    if path.stat().st_size == 0:
        assert [e.kind for e in errors] == ["empty_file"]
    elif clean:
        # Nothing warcio reads is lost: each of its records is read, or named by an error at its offset (warcio
        # does not check lengths: it reads a record cut short, or with a lying length, as if it were whole).
        assert set(expected) <= {i.offset for i in items}
    else:
        assert len(records) >= len(expected)  # warcio stops earlier than we do (or at the same record)


def test_defects_in_the_shared_archives():
    """The broken records among the shared archives, each named (warcio reads them all as whole)."""

    def defects(*parts):
        found = []
        for item in iter_records(str(shared_path("warc", *parts))):
            if isinstance(item, WarcRecord):
                item.payload(1 << 20)  # (payload checks are made on what is read)
            else:
                found.append((item.offset, item.kind))
        return found

    assert defects("resiliparse", "clipped.warc.gz") == [(0, "truncated_record")]  # a gzip member cut short
    assert defects("edge-cases", "warcio", "example-space-in-url.arc") == [(151, "truncated_record")]  # 12 bytes short
    assert defects("edge-cases", "warcio", "example-trunc.warc") == [(1197, "bad_content_length")]  # 2 bytes short
    assert defects("pywb", "example-extra.warc") == [(3207, "truncated_payload")]  # 1269 of 1270 bytes
    # three ARC records whose lengths overlap: each one named, none swallowed
    assert defects("archive-it-aut", "aut-badexample.arc.gz") == [
        (2369, "bad_content_length"),
        (2606, "bad_content_length"),
        (2882, "truncated_record"),
    ]


def test_whole_file_gzip_is_read_through():
    path = shared_path("warc", "copycat-samples", "clueweb-09-sample", "en0000", "00.warc.gz")
    items = list(iter_records(str(path)))
    assert not [i for i in items if isinstance(i, ReadError)]
    assert sum(1 for i in items if i.rec_type == "response") == 23


def test_missing_separator_lines_in_old_arc_files():
    path = shared_path("warc", "copycat-samples", "cc-arc-sample", "small-sample-1213893279526_0.arc")
    records = [i for i in iter_records(str(path)) if isinstance(i, WarcRecord)]
    assert len(records) > 100  # warcio alone stops after the file header
    assert all(r.format == "arc" and r.record_id.startswith("<urn:sha1:") for r in records)
    assert records[0].url == "http://cineciudad.com/pelicula/index/502"


def test_broken_files_produce_named_errors():
    empty = shared_path("warc", "edge-cases", "warc2zim", "empty-file")
    assert [(e.kind, e.offset) for e in iter_records(str(empty))] == [("empty_file", 0)]
    bad = shared_path("warc", "edge-cases", "webarchive-commons-link-extraction-test.warc")
    items = [i for i in iter_records(str(bad)) if isinstance(i, ReadError) or i.payload(1 << 20)]
    # the last record has no WARC-Target-URI (and a payload cut short): named, and the file reads to its end
    assert isinstance(items[-1], ReadError) and items[-1].kind == "missing_target_uri"
    assert sum(isinstance(i, WarcRecord) for i in items) == 6
    assert next((e.offset, e.kind) for e in items if isinstance(e, ReadError)) == (1696, "truncated_payload")


def test_brotli_content_encoding():
    path = shared_path("warc", "edge-cases", "ukwa", "transfer_compression_brotli.warc.gz")
    for record in iter_records(str(path)):
        if isinstance(record, WarcRecord) and record.rec_type == "response":
            data, _ = record.payload(1 << 20)
            assert b"<html" in data.lower()
            break
    else:
        pytest.fail("no response record")


def test_truncated_last_record_is_reported(sample_dir):
    items = list(iter_records(str(sample_dir / "sample-00001.warc.gz")))
    assert isinstance(items[-1], ReadError) and items[-1].kind == "truncated_record"
    assert items[-1].offset > items[-2].offset  # where the cut record starts


@pytest.mark.parametrize("name", ["ccdev-00001.warc.gz", "ccdev-00004.warc.gz"])
def test_offsets_seek_back_to_their_record(name):
    path = shared_path("ccdev", name)
    with open(path, "rb") as fh:
        for record in iter_records(str(path)):
            assert isinstance(record, WarcRecord)
            fh.seek(record.offset)
            found = next(iter(ArchiveIterator(fh)))
            assert found.rec_headers.get_header("WARC-Record-ID") == record.record_id


def test_offsets_in_uncompressed_files(tmp_path, sample_dir):
    plain = tmp_path / "plain.warc"
    # A per-record gzip file decompresses to an uncompressed WARC; offsets must then be plain byte offsets.
    with gzip.open(sample_dir / "sample-00000.warc.gz", "rb") as src:
        plain.write_bytes(src.read())
    with open(plain, "rb") as fh:
        for record in iter_records(str(plain)):
            fh.seek(record.offset)
            assert next(iter(ArchiveIterator(fh))).rec_headers.get_header("WARC-Record-ID") == record.record_id


def test_dates_and_sniffing():
    assert parse_date("2024-03-01T00:06:08Z").isoformat() == "2024-03-01T00:06:08+00:00"
    assert parse_date("2024-03-01T00:06:08.123456Z").microsecond == 123456
    assert parse_date("20080509190241").year == 2008
    assert parse_date("2024-03-0") is None
    assert sniff_type(b"\xef\xbb\xbf  <!DOCTYPE html><html>") == "text/html"
    assert sniff_type(b"%PDF-1.7") == "application/pdf"
    assert sniff_type(b"\x89PNG") is None


def test_a_record_without_target_uri_is_named_and_spaces_in_uris_are_quiet(tmp_path, capfd):
    def record(headers: dict[str, str], body: bytes) -> bytes:
        payload = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return f"WARC/1.0\r\n{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload + b"\r\n\r\n"

    common = {"WARC-Type": "response", "WARC-Date": "2024-01-01T00:00:00Z", "Content-Type": "application/http"}
    path = tmp_path / "x.warc"
    path.write_bytes(
        record({**common, "WARC-Record-ID": "<urn:uuid:1>"}, b"<html>no uri</html>")
        + record({**common, "WARC-Record-ID": "<urn:uuid:2>", "WARC-Target-URI": "http://a.example/x y"}, b"<p>ok</p>")
    )
    items = list(iter_records(str(path)))
    assert isinstance(items[0], ReadError) and items[0].kind == "missing_target_uri"
    assert isinstance(items[1], WarcRecord) and items[1].url == "http://a.example/x%20y"  # read on after it
    assert "Replacing spaces" not in capfd.readouterr().err
