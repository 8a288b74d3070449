"""FastWARC (corpus.io.warc_fast) and warcio's reader (corpus.io.warc) give the same records, offsets, payloads and
errors: on every shared archive (broken ones included) and on every hostile case of corpus.hostile; and the
hand-over to warcio's reader runs where FastWARC cannot be trusted, from the record where the trouble starts."""

from __future__ import annotations

import ast
import gzip
import subprocess
import sys
import textwrap
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corpus.io.warc_fast as warc_fast
from corpus import hostile
from corpus.io.warc import ReadError, iter_records
from tests.conftest import SHARED, shared_path

#: What a reader gives the recipes: every field of a record, its payload (cap 1 MiB) and defect, and the errors.
#: `read`: "payload" reads each payload then asks its defect (as the recipes do), "defect" only asks the defect,
#: "nothing" moves on without either (the reader then reports a defect as an error of its own), "defect_first" asks
#: the defect before reading the payload.
READS = ("payload", "defect", "nothing", "defect_first")


def _items(path: str, reader: str, read: str) -> list[tuple]:
    out: list[tuple] = []
    for item in iter_records(path, reader):
        if isinstance(item, ReadError):
            out.append(("error", item.offset, item.kind, item.message))
            continue
        row: tuple = (
            item.offset, item.format, item.rec_type, item.record_id, item.url, item.date, item.payload_type,
            item.http_status, item.http_content_type, item.http_content_length, item.truncated, item.refers_to,
        )  # fmt: skip
        if read == "payload":
            row += (item.payload(1 << 20), item.defect(), item.payload(100))
        elif read == "defect":
            row += (item.defect(),)
        elif read == "defect_first":  # (the payload is then what is left of it: nothing)
            row += (item.defect(), item.payload(1 << 20))
        out.append(row)
    return out


def _archives() -> list:
    root = SHARED / "warc"
    if not root.exists():  # one placeholder, which skips with the reason
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"shared data not available: {root}"))]
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def handed_over(monkeypatch) -> list[tuple[int, int]]:
    """(offset, records before) of each hand-over to warcio's reader."""
    calls: list[tuple[int, int]] = []
    read_from = warc_fast.read_from

    def recorded(path: str, start: int = 0, before: int = 0):
        calls.append((start, before))
        return read_from(path, start, before)

    monkeypatch.setattr(warc_fast, "read_from", recorded)
    return calls


@pytest.mark.parametrize("path", _archives(), ids=lambda p: str(p.relative_to(SHARED / "warc")) if p else "absent")
def test_every_shared_archive_reads_the_same_with_either_reader(path):
    for read in READS:
        assert _items(str(path), "fastwarc", read) == _items(str(path), "warcio", read), read


@pytest.mark.parametrize(
    ("parts", "start"),
    [
        (("commoncrawl", "whirlwind.warc.gz"), None),  # read by FastWARC alone
        (("edge-cases", "warcio", "example.warc"), None),
        (("edge-cases", "warcio", "example.arc"), 0),  # ARC: warcio's reader from the start
        (("copycat-samples", "clueweb-09-sample", "en0000", "00.warc.gz"), 0),  # whole-file gzip
        (("edge-cases", "warcio", "example-trunc.warc"), 1197),  # a lying length: from that record on
        (("edge-cases", "webarchive-commons-link-extraction-test.warc"), 258),  # LF line ends in a header
    ],
)
def test_the_hand_over_runs_from_where_the_trouble_starts(parts, start, handed_over):
    path = str(shared_path("warc", *parts))
    assert _items(path, "fastwarc", "payload") == _items(path, "warcio", "payload")
    assert [offset for offset, _ in handed_over[:1]] == ([] if start is None else [start])


def _hostile_cases() -> dict[str, bytes]:
    cases = {
        "lying_length_huge": hostile.lying_length("1000000000000", gzipped=True),
        "lying_length_huge_plain": hostile.lying_length("1000000000000", gzipped=False),
        "lying_length_negative": hostile.lying_length("-5", gzipped=True),
        "lying_length_text": hostile.lying_length("abc", gzipped=False),
        "lying_length_last": hostile.lying_length("1000000000000", gzipped=True, position=3),
        "short_http_body": hostile.short_http_body(),
        "cut_chunked_body": hostile.cut_chunked_body(),
        "crawler_truncated": hostile.crawler_truncated(),
        "corrupt_member": hostile.corrupt_member(),
        "corrupt_first_member": hostile.corrupt_member(corrupt=0),
    }
    for gzipped in (True, False):
        suffix = "gz" if gzipped else "plain"
        cases[f"cut_last_record_{suffix}"] = hostile.cut_last_record(gzipped)
        cases[f"cut_early_{suffix}"] = hostile.cut_last_record(gzipped, fraction=0.05)
        for delta in (-7, -1, 1, 2, 7, 300):
            cases[f"shifted_{delta}_{suffix}"] = hostile.shifted_length(delta, gzipped)
    pages = [record for _, record in hostile.good_pages(3)]
    cases["junk_between_records"] = b"".join([pages[0], b"junk line\r\n", pages[1], pages[2]])
    cases["blank_lines_between_records"] = b"".join([pages[0], b"\r\n\r\n", pages[1], pages[2]])
    cases["trailing_junk"] = b"".join(pages) + b"\x00\x01 not a record"
    cases["junk_member"] = b"".join([hostile.gzip_member(pages[0]), b"not gzip", *map(hostile.gzip_member, pages[1:])])
    cases["two_records_in_a_member"] = b"".join(
        [hostile.gzip_member(pages[0]), hostile.gzip_member(pages[1] + pages[2])]
    )
    cases["folded_header"] = b"".join(
        [pages[0], pages[1].replace(b"\r\nWARC-Date:", b"\r\n WARC-Note: folded\r\nWARC-Date:", 1), pages[2]]
    )
    cases["spaced_header"] = b"".join([pages[0], pages[1].replace(b"WARC-Type: ", b"WARC-Type:   ", 1), pages[2]])
    return cases


HOSTILE = _hostile_cases()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_read_the_same_with_either_reader(tmp_path, name, handed_over):
    path = tmp_path / ("x.warc" if HOSTILE[name][:2] != b"\x1f\x8b" else "x.warc.gz")
    path.write_bytes(HOSTILE[name])
    for read in READS:
        assert _items(str(path), "fastwarc", read) == _items(str(path), "warcio", read), read
    if name not in ("short_http_body", "cut_chunked_body", "crawler_truncated", "blank_lines_between_records"):
        assert handed_over, "a broken file goes to warcio's reader"  # (the others are whole: FastWARC reads them)


def test_a_whole_file_is_read_by_fastwarc_alone(tmp_path, handed_over):
    path = tmp_path / "good.warc.gz"
    path.write_bytes(hostile.warc_file([record for _, record in hostile.good_pages(5)], gzipped=True))
    items = _items(str(path), "fastwarc", "payload")
    assert len(items) == 5 and handed_over == []
    assert items == _items(str(path), "warcio", "payload")


def test_auto_is_the_default_and_warcio_reads_alone(tmp_path, handed_over):
    path = tmp_path / "good.warc"
    path.write_bytes(hostile.warc_file([record for _, record in hostile.good_pages(2)], gzipped=False))
    list(iter_records(str(path), "warcio"))
    assert handed_over == []  # (warcio's reader read it without FastWARC)
    assert _items(str(path), "auto", "payload") == _items(str(path), "warcio", "payload")


# --- memory: one record of hundreds of MB -----------------------------------------------------------------------


def _big_record(path, size: int, gzipped: bool, chunked: bool) -> None:
    """A response of `size` bytes of HTML-ish text, written a MiB at a time, then a small page."""
    piece = (b"<p>" + b"lorem ipsum dolor sit amet " * 37 + b"</p>\n") * 1024
    piece = piece[: 1 << 20]
    count = size // len(piece)
    if chunked:
        framed = b"%x\r\n" % len(piece) + piece + b"\r\n"
        body_len, tail = count * len(framed) + 5, b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    else:
        framed, body_len, tail = piece, count * len(piece), b""
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % body_len
    warc = (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:big>\r\nWARC-Target-URI: http://big.example/\r\n"
        b"WARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: application/http; msgtype=response\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(head) + body_len)
    )
    small = hostile.good_pages(1, "after")[0][1]
    with gzip.open(path, "wb", compresslevel=1) if gzipped else open(path, "wb") as out:
        out.write(warc + head)
        for _ in range(count):
            out.write(framed)
        out.write(tail + b"\r\n\r\n")
    if gzipped:  # the next record in its own member
        with open(path, "ab") as out:
            out.write(hostile.gzip_member(small))
    else:
        with open(path, "ab") as out:
            out.write(small)


@pytest.mark.parametrize(
    ("gzipped", "chunked"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["plain", "gz", "chunked", "gz-chunked"],
)
def test_a_record_of_hundreds_of_mb_costs_the_cap_in_memory(tmp_path, gzipped, chunked):
    """A 300 MB record read by each reader in a fresh process: the payload is cut at the cap (10 MiB) while it
    streams, and the process grows by a bounded amount, whatever the record's size."""
    path = tmp_path / ("big.warc.gz" if gzipped else "big.warc")
    _big_record(path, 300 << 20, gzipped, chunked)
    seen = {}
    for reader in ("fastwarc", "warcio"):  # each in its own process: peak RSS only grows
        script = textwrap.dedent(f"""
            import resource
            import corpus.io.warc_fast  # (imported before the baseline)
            from corpus.io.warc import WarcRecord, iter_records
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out = []
            for r in iter_records({str(path)!r}, {reader!r}):
                if isinstance(r, WarcRecord):
                    data, too_large = r.payload(10 << 20)
                    out.append((r.url, len(data), too_large, r.defect()))
            print(out, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        records, grown_mib = result.stdout.rsplit(" ", 1)
        seen[reader] = ast.literal_eval(records)
        assert int(grown_mib) < 100, f"{reader}: reading a 300 MB record grew the process by {grown_mib} MiB"
    assert seen["fastwarc"] == seen["warcio"]
    assert seen["fastwarc"][0] == ("http://big.example/", 10 << 20, True, None)


# --- mutated files ----------------------------------------------------------------------------------------------

_GOOD = [record for _, record in hostile.good_pages(3, "mut")]
_BASES = [hostile.warc_file(_GOOD, gzipped=True), hostile.warc_file(_GOOD, gzipped=False)]
_INSERTS = [
    b"\r\n",
    b"\n",
    b"WARC/1.0\r\n",
    b" ",
    b":",
    b"\r\n\r\n",
    b"\x1f\x8b\x08",
    b"Content-Length: 5\r\n",
    b"\xff",
]


def _mutated(base: int, edits: list[tuple[int, int, int, int]]) -> bytes:
    """Base file `base` with `edits` (kind, place, size, choice) made to its bytes, or (kind 3) to the inflated
    bytes of the member at that place, written back as one member."""
    data = bytearray(_BASES[base])
    for kind, place, size, choice in edits:
        at = place % max(1, len(data))
        if kind == 0:
            data[at : at + 1] = bytes([choice % 256])
        elif kind == 1:
            del data[at : at + size]
        elif kind == 2:
            data[at:at] = _INSERTS[choice % len(_INSERTS)]
        elif base == 0:  # inside a member: its record changed, the member whole
            starts = [i for i in range(len(data)) if data[i : i + 3] == b"\x1f\x8b\x08"]
            start = max([s for s in starts if s <= at] or [0])
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                inner = bytearray(inflater.decompress(bytes(data[start:])))
            except zlib.error:
                continue
            where = (choice * 7919) % max(1, len(inner))
            inner[where:where] = _INSERTS[choice % len(_INSERTS)]
            data[start:] = gzip.compress(bytes(inner), mtime=0) + inflater.unused_data
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.integers(0, 1),
    edits=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(1, 64), st.integers(0, 255)),
        min_size=1,
        max_size=3,
    ),
)
def test_mutated_files_read_the_same_with_either_reader(tmp_path, base, edits):
    data = _mutated(base, edits)
    path = tmp_path / ("m.warc.gz" if data[:2] == b"\x1f\x8b" else "m.warc")
    path.write_bytes(data)
    for read in ("payload", "nothing"):
        assert _items(str(path), "fastwarc", read) == _items(str(path), "warcio", read), read


def test_a_bare_line_feed_inside_a_header_value(tmp_path, handed_over):
    """warcio ends a header line at a bare LF (then its header ends at the blank line after it); FastWARC reads
    on to CRLF. Found by mutating files and comparing the readers."""
    page = _GOOD[1].replace(b"WARC-Date: 2024", b"WARC-Date: 20\n\n24", 1)
    for gzipped in (True, False):
        path = tmp_path / ("b.warc.gz" if gzipped else "b.warc")
        path.write_bytes(hostile.warc_file([_GOOD[0], page, _GOOD[2]], gzipped))
        assert _items(str(path), "fastwarc", "payload") == _items(str(path), "warcio", "payload")
    assert handed_over


def test_the_reader_setting_is_checked():
    from corpus.config import ConfigError, load_config

    for reader in ("auto", "fastwarc", "warcio"):
        assert load_config(None, [f"reader.warc_reader={reader}"]).reader.warc_reader == reader
    with pytest.raises(ConfigError, match=r"reader\.warc_reader: 'fastwrc' is not a reader \(did you mean 'fastwarc'"):
        load_config(None, ["reader.warc_reader=fastwrc"])


@pytest.mark.parametrize("reader", ["fastwarc", "warcio"])
def test_the_recipes_read_with_the_configured_reader(monkeypatch, tmp_path, reader):
    """`reader.warc_reader` reaches the record loop, and either reader gives the recipe the same documents."""
    from corpus.config import load_config
    from corpus.recipes import loop, recipe_for

    asked: list[str] = []

    def recording(path: str, which: str = "auto"):
        asked.append(which)
        return iter_records(path, which)

    monkeypatch.setattr(loop, "iter_records", recording)
    path = tmp_path / "a.warc.gz"
    path.write_bytes(hostile.warc_file(_GOOD, True))
    docs = list(recipe_for(load_config(None, [f"reader.warc_reader={reader}"])).process_file(str(path)))
    assert asked == [reader]
    reference = list(recipe_for(load_config(None, [])).process_file(str(path)))
    assert [(d.id, d.status, d.text) for d in docs] == [(d.id, d.status, d.text) for d in reference]
    assert len(docs) == len(_GOOD)
