"""Hostile input (docs/RELIABILITY.md): records cut short, lying lengths, corrupt gzip members, bombs, charsets that
lie, YAML bombs. Each case is built here by corpus.hostile; no test keeps a large fixture. Outcomes, not timings,
are asserted (the CPU-limit test says which limit stopped the page, not how fast)."""

from __future__ import annotations

import ast
import gzip
import io
import resource
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.archiveiterator import ArchiveIterator

from corpus import hostile
from corpus.config import ConfigError, load_config
from corpus.io.http import decode_body
from corpus.io.warc import ReadError, WarcRecord, iter_records
from corpus.recipes import FineWebRecipe


@pytest.fixture(scope="module")
def recipe():
    r = FineWebRecipe(load_config())
    yield r
    r.close()


def outcomes(recipe, tmp_path, data: bytes, name: str = "x.warc.gz") -> list[tuple[str | None, str, str | None]]:
    path = tmp_path / name
    path.write_bytes(data)
    docs = list(recipe.process_file(str(path)))
    assert all(d.source_offset >= 0 for d in docs)
    return [(d.url, d.status, d.reason) for d in docs]


# --- 1. records cut short -------------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [True, False], ids=["warc.gz", "warc"])
def test_a_record_cut_short_is_removed_not_kept(recipe, tmp_path, gzipped):
    whole = hostile.cut_last_record(gzipped, fraction=1.0)
    assert outcomes(recipe, tmp_path, whole)[-1] == ("https://hostile.test/cut", "kept", None)  # whole, it is kept
    for fraction in (0.6, 0.2, 0.95):
        rows = outcomes(recipe, tmp_path, hostile.cut_last_record(gzipped, fraction))
        assert [status for _, status, _ in rows[:3]] == ["kept"] * 3
        assert rows[3][1:] == ("removed", "error:truncated_record"), fraction
        assert len(rows) == 4  # one row for the cut record, no separate error


def test_a_body_shorter_than_its_http_length_or_without_its_last_chunk(recipe, tmp_path):
    assert outcomes(recipe, tmp_path, hostile.short_http_body()) == [
        ("https://hostile.test/half", "removed", "error:truncated_payload"),
        ("https://hostile.test/page/0", "kept", None),
    ]
    assert outcomes(recipe, tmp_path, hostile.cut_chunked_body()) == [
        ("https://hostile.test/chunked", "removed", "error:truncated_chunked"),
        ("https://hostile.test/page/0", "kept", None),
    ]


def test_common_crawls_own_truncation_is_kept_as_fineweb_keeps_it(recipe, tmp_path):
    [(_, status, reason)] = outcomes(recipe, tmp_path, hostile.crawler_truncated())
    assert (status, reason) == ("kept", None)


# --- 2. lying lengths -----------------------------------------------------------------------------------------


def _seekable(path, items) -> None:
    """Every record's offset leads back to it (gzip: a member start; plain: its first line)."""
    with open(path, "rb") as fh:
        for item in items:
            if isinstance(item, WarcRecord):
                fh.seek(item.offset)
                assert next(iter(ArchiveIterator(fh))).rec_headers.get_header("WARC-Record-ID") == item.record_id


@pytest.mark.parametrize("gzipped", [True, False], ids=["warc.gz", "warc"])
@pytest.mark.parametrize("value", ["1000000000000", "-5", "abc", "", "0", "99999"])
def test_a_lying_content_length_costs_its_record_only(recipe, tmp_path, gzipped, value):
    data = hostile.lying_length(value, gzipped)
    rows = outcomes(recipe, tmp_path, data)
    urls = [f"https://hostile.test/lie/{i}" for i in range(4)]
    assert rows == [
        (urls[0], "kept", None),
        (urls[1], "removed", "error:bad_content_length"),
        (urls[2], "kept", None),
        (urls[3], "kept", None),
    ]
    path = tmp_path / "lie.warc"
    path.write_bytes(data)
    _seekable(path, [i for i in iter_records(str(path)) if not (isinstance(i, WarcRecord) and i.url == urls[1])])


@pytest.mark.parametrize("gzipped", [True, False], ids=["warc.gz", "warc"])
@pytest.mark.parametrize("delta", [300, -300, -3, -1])
def test_a_length_a_little_off_costs_its_record_only(recipe, tmp_path, gzipped, delta):
    rows = outcomes(recipe, tmp_path, hostile.shifted_length(delta, gzipped))
    assert [status for _, status, _ in rows] == ["kept", "removed", "kept", "kept"]
    assert rows[1][2] == "error:bad_content_length"
    # A length that takes in (part of) the blank lines after the block is tolerated, as warcio tolerates it: the
    # payload then ends in a few bytes of whitespace.
    assert [status for _, status, _ in outcomes(recipe, tmp_path, hostile.shifted_length(3, gzipped))] == ["kept"] * 4


def test_a_corrupt_gzip_member_costs_its_record_only(recipe, tmp_path):
    rows = outcomes(recipe, tmp_path, hostile.corrupt_member())
    assert [status for _, status, _ in rows] == ["kept", "removed", "kept", "kept"]
    assert rows[1][2] == "error:corrupt_gzip"


# --- the property: whatever is broken, every good record comes out once ---------------------------------------

_BROKEN = st.one_of(
    st.tuples(st.just("cut"), st.floats(0.02, 0.98)),
    st.tuples(st.just("corrupt"), st.floats(0.0, 1.0)),
    st.tuples(st.just("length"), st.sampled_from(["-1", "abc", "", "10000000000", "+7", "-7", "+500", "-500"])),
)
_RECORDS = st.lists(st.one_of(st.just(("good", 0.0)), _BROKEN), min_size=1, max_size=6)


def _build(plan: list[tuple], gzipped: bool) -> tuple[bytes, set[str], set[str]]:
    parts, good, bad = [], set(), set()
    for i, (kind, arg) in enumerate(plan):
        url = f"https://hostile.test/p/{i}"
        page = hostile.english_page(f"Page {i}", 1200, start=5 * i)
        if kind == "length":
            block = len(hostile.html_record(url, page).split(b"\r\n\r\n", 1)[1]) - 4
            shift = int(arg) if arg[:1] in "+-" and arg[1:].isdigit() else None
            record = hostile.html_record(url, page, length=str(block + shift) if shift is not None else arg)
        else:
            record = hostile.html_record(url, page)
        data = hostile.gzip_member(record) if gzipped else record
        if kind == "cut":
            data = data[: max(1, int(len(data) * arg))]
        elif kind == "corrupt":
            at = int((len(data) - 8) * arg)
            data = data[:at] + b"\xff\x00\xfe\x01\xfd\x02\xfc\x03" + data[at + 8 :]
        (good if kind == "good" else bad).add(hostile.record_id(url))
        parts.append(data)
    return b"".join(parts), good, bad


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=_RECORDS, gzipped=st.booleans())
def test_every_good_record_is_accounted_for_exactly_once(recipe, tmp_path, plan, gzipped):
    data, good, bad = _build(plan, gzipped)
    path = tmp_path / ("p.warc.gz" if gzipped else "p.warc")
    path.write_bytes(data)
    docs = list(recipe.process_file(str(path)))
    ids = [d.id for d in docs]
    assert len(ids) == len(set(ids)), "a row twice"
    assert all(0 <= d.source_offset < len(data) for d in docs), "an offset outside the file"
    for record in good:
        rows = [d for d in docs if d.id == record]
        assert len(rows) == 1, f"good record {record}: {len(rows)} rows"
        assert not (rows[0].reason or "").startswith("error:"), rows[0].reason
    cut_or_lying = {hostile.record_id(f"https://hostile.test/p/{i}") for i, (k, _) in enumerate(plan) if k != "corrupt"}
    assert not [d for d in docs if d.id in (cut_or_lying & bad) and d.status == "kept"], "a broken record kept"


# --- 3. a page lxml cannot parse in time ----------------------------------------------------------------------


def test_an_attribute_bomb_is_refused_before_parsing(recipe, tmp_path):
    assert outcomes(recipe, tmp_path, hostile.attribute_bomb()) == [
        ("https://hostile.test/attributes", "removed", "error:too_many_attributes")
    ]


def test_the_cpu_limit_holds_inside_lxml(tmp_path, monkeypatch):
    """40,000 attributes pass a disabled guard and take libxml2 about 13 s in one C call, which no signal handler
    interrupts: the kernel's CPU limit on the sandboxed worker stops it after 1 s."""
    import corpus.recipes.fineweb as fineweb

    monkeypatch.setattr(fineweb, "too_many_attributes", lambda html: False)
    strict = FineWebRecipe(load_config(None, ["extract.cpu_time_limit=1"]))
    try:
        assert outcomes(strict, tmp_path, hostile.attribute_bomb(40_000)) == [
            ("https://hostile.test/attributes", "removed", "error:cpu_time_limit")
        ]
        assert strict.sandbox.counters.cpu_limits == 1
        # the next file gets a fresh worker, and ordinary pages go on as before
        assert outcomes(strict, tmp_path, hostile.lying_length("0", True))[0][1] == "kept"
    finally:
        strict.close()


# --- 4. a chunked gzip bomb -----------------------------------------------------------------------------------


def test_a_chunked_gzip_bomb_costs_the_cap_in_memory(tmp_path):
    """1 GiB of gzip zeros in one HTTP chunk (warcio decoded it in one call: 2.3 GB). In a fresh process, reading the
    file with the recipe's default cap (10 MiB) stays far below that."""
    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(hostile.chunked_gzip_bomb(1 << 30))
    script = textwrap.dedent(f"""
        import resource
        from corpus.io.warc import WarcRecord, iter_records
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = []
        for r in iter_records({str(path)!r}):
            if isinstance(r, WarcRecord):
                data, too_large = r.payload(10 << 20)
                out.append((r.url.rsplit("/", 1)[-1], len(data), too_large))
        print(out, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    records, grown_mib = result.stdout.rsplit(" ", 1)
    assert [(name, too_large) for name, _, too_large in ast.literal_eval(records)] == [
        ("0", False), ("bomb", True), ("1", False)
    ]  # fmt: skip
    assert int(grown_mib) < 200, f"reading the bomb grew the process by {grown_mib} MiB"


def test_bodies_decode_as_warcio_decodes_them():
    page = b"<html>" + b"words " * 5000 + b"</html>"
    gz = gzip.compress(page)
    chunked = b"".join(b"%x\r\n" % len(gz[i : i + 1000]) + gz[i : i + 1000] + b"\r\n" for i in range(0, len(gz), 1000))
    assert decode_body(io.BytesIO(page), 1 << 20).data == page
    assert decode_body(io.BytesIO(gz), 1 << 20, encoding="gzip").data == page
    body = decode_body(io.BytesIO(chunked + b"0\r\n\r\n"), 1 << 20, chunked=True, encoding="gzip")
    assert (body.data, body.last_chunk, body.stored_bytes) == (page, True, len(chunked) + 5)
    assert decode_body(io.BytesIO(chunked), 1 << 20, chunked=True, encoding="gzip").last_chunk is False
    assert decode_body(io.BytesIO(page), 1 << 20, chunked=True).data == page  # "chunked" but not: read as it is
    assert decode_body(io.BytesIO(page), 1 << 20, encoding="gzip").data == page  # "gzip" but not: as it is
    raw = gzip.compress(page)[10:-8]  # a raw deflate stream labelled "deflate"
    assert decode_body(io.BytesIO(raw), 1 << 20, encoding="deflate").data == page
    capped = decode_body(io.BytesIO(gz), 1000, encoding="gzip")
    assert (len(capped.data), capped.too_large) == (1000, True)


# --- 5. a charset header that lies ----------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_utf16_behind_a_utf8_label_is_read_as_utf16(recipe, tmp_path, bom):
    path = tmp_path / "u.warc.gz"
    path.write_bytes(hostile.utf16_lie(bom))
    [doc] = recipe.process_file(str(path))
    assert doc.status == "kept" and doc.charset == ("utf-16-le/bom" if bom else "utf-16-le/nul")
    assert "\x00" not in doc.text


# --- 8. YAML bombs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (hostile.billion_laughs(9, 9), "aliases expand to more than 100000 values"),
        (hostile.billion_laughs(9, 9, where="filters.c4"), "aliases expand to more than 100000 values"),
        (hostile.list_bomb(), "aliases expand to more than 100000 values"),
        (hostile.self_alias(), "an alias refers to a value that contains it"),
        (hostile.deep_nesting(), "nesting deeper than 64 levels"),
        ("a: &a [" + ", ".join(["*a0"] * 2) + "]\n", "is not valid YAML"),  # an undefined alias
        ("input: " + "x" * (2 << 20) + "\n", "larger than 1048576 bytes"),
    ],
)
def test_yaml_bombs_are_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConfigError) as exc:
        load_config(str(path))
    assert message in str(exc.value) and "\n" not in str(exc.value) and len(str(exc.value)) < 300
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100_000  # KiB: nothing was expanded


def test_yaml_bombs_on_the_command_line_and_values_in_messages(tmp_path):
    with pytest.raises(ConfigError, match="an alias refers to a value that contains it"):
        load_config(None, ["input=&x [*x]"])
    with pytest.raises(ConfigError) as exc:
        load_config(None, ["filters.c4.min_num_sentences=[" + ", ".join(["1"] * 100_000) + "]"])
    assert len(str(exc.value)) < 200  # the value is shown cut short
    ok = tmp_path / "ok.yaml"
    ok.write_text("storage:\n  options:\n    s3: &o {anon: true}\n    gcs: *o\n")  # ordinary aliases still work
    assert load_config(str(ok)).storage.options["gcs"] == {"anon": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("filters:\n  24: {}\n", "filters: 24 is not a name"),
        ("storage:\n  options:\n    s3: {1: x}\n", "storage.options.s3: 1 is not a name"),
        ("storage:\n  options:\n    s3: {a: 2024-01-01}\n", "cannot be recorded in the manifest"),
        ("storage:\n  options:\n    s3: {a: {1: x, b: y}}\n", "cannot be recorded in the manifest"),
    ],
)
def test_keys_and_values_yaml_allows_but_a_config_cannot_hold(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(path))


def test_base_chains_are_bounded(tmp_path):
    for i in range(20):
        (tmp_path / f"c{i}.yaml").write_text(f"base: c{i + 1}.yaml\n" if i < 19 else "crawl: x\n")
    with pytest.raises(ConfigError, match="more than 16 files chained by `base`"):
        load_config(str(tmp_path / "c0.yaml"))
    assert load_config(str(tmp_path / "c10.yaml")).crawl == "x"


def test_reader_errors_never_have_negative_offsets(tmp_path):
    """The probe's case: an error row in a .warc.gz had a negative source_offset."""
    for value in ("-5", "abc", ""):
        path = tmp_path / "n.warc.gz"
        path.write_bytes(hostile.lying_length(value, True))
        items = list(iter_records(str(path)))
        assert all(i.offset >= 0 for i in items)
        assert [i.kind for i in items if isinstance(i, ReadError)] == ["bad_content_length"]


# --- 6. outputs inside inputs ---------------------------------------------------------------------------------


def test_outputs_that_are_or_hold_the_input_are_refused(tmp_path, monkeypatch):
    from corpus.io.inputs import InputError
    from corpus.jobs.run import run_stages

    data = tmp_path / "crawl"
    data.mkdir()
    (data / "a.warc.gz").write_bytes(hostile.lying_length("0", True))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for output, message in [
        (data, "is the input"),
        (tmp_path, "contains the input"),
        ("/", "is the filesystem root"),
        (tmp_path / "home", "is your home folder"),
    ]:
        with pytest.raises(InputError, match=message):  # before Spark starts
            run_stages(load_config(None, [f"input={data}", f"output={output}"]))
    with pytest.raises(InputError, match="is the input"):
        run_stages(load_config(None, [f"input={data}/*.warc.gz", f"output={data}", "recipe=finepdfs"]))


def test_the_outputs_own_files_are_never_inputs(tmp_path):
    from corpus.io.inputs import expand_inputs

    data = tmp_path / "crawl"
    (data / "out" / "refetched").mkdir(parents=True)
    (data / "a.warc.gz").write_bytes(b"x")
    (data / "out" / "refetched" / "r.warc.gz").write_bytes(b"x")  # what the PDF recipe writes
    assert expand_inputs([str(data)]) == [str(data / "a.warc.gz"), str(data / "out" / "refetched" / "r.warc.gz")]
    assert expand_inputs([str(data)], exclude=str(data / "out")) == [str(data / "a.warc.gz")]


# --- 9. failures that were loud in the wrong way ---------------------------------------------------------------


def test_a_full_disk_leaves_no_temporary_file(tmp_path, monkeypatch):
    import errno

    from corpus.io import storage

    target = tmp_path / "stats" / "stats.json"
    storage.write_text(str(target), "old")

    class Full:
        def __init__(self, path, *args, **kwargs):
            self.fh = open(path, *args, **kwargs)  # noqa: SIM115

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "open", Full, raising=False)
    with pytest.raises(OSError):
        storage.write_text(str(target), "new")
    assert sorted(p.name for p in target.parent.iterdir()) == ["stats.json"] and target.read_text() == "old"
    assert storage.write_text(str(target), "old", if_changed=True) is False  # nothing to write: not even opened


def test_storage_failures_are_one_line():
    import errno

    from corpus.jobs.session import local_master, storage_failure

    assert storage_failure(OSError(errno.EROFS, "Read-only file system", "/data/out")) == (
        "cannot write /data/out: Read-only file system"
    )
    java = RuntimeError(
        "An error occurred while calling o73.parquet.\n: org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task "
        "failed while writing rows to file:/data/out/_tmp/extract-1. SQLSTATE: 58030\n\tat org.apache...\nCaused by: "
        "java.io.IOException: No space left on device\n" + "\tat x.y(z.java:1)\n" * 500
    )
    line = storage_failure(java)
    assert line.startswith("cannot write /data/out/_tmp/extract-1: No space left on device") and "\n" not in line
    python = RuntimeError(  # a shard written by pyarrow in a Python worker (corpus.io.shards names the file)
        "An error occurred while calling z:org.apache.spark.api.python.PythonRDD.collectAndServe.\n: "
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 1.0 failed 4 times, most "
        "recent failure: Lost task 3.3 (TID 12) (10.0.0.5 executor driver): org.apache.spark.api.python."
        'PythonException: Traceback (most recent call last):\n  File "/opt/corpus/io/shards.py", line 61, in flush\n'
        "OSError: [Errno 28] No space left on device: 's3://bucket/out/_tmp/extract-1/kept-00003-attempt-12.parquet'"
        "\n\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(...)\n"
    )
    assert storage_failure(python).startswith(
        "cannot write s3://bucket/out/_tmp/extract-1/kept-00003-attempt-12.parquet: No space left on device"
    )
    assert storage_failure(ValueError("a bug")) is None
    assert local_master("local[*]", {}) == "local[*,4]" and local_master("local", {}) == "local[1,4]"
    assert local_master("local[3]", {"spark.task.maxFailures": "2"}) == "local[3,2]"
    assert local_master("local[3,1]", {}) == "local[3,1]" and local_master("spark://h:7077", {}) == "spark://h:7077"


def test_verify_names_stages_that_did_not_finish(tmp_path):
    import json

    from corpus.audit import manifest

    run = manifest.Run.new(load_config(None, ["stages=[extract, stats, report]"]), [])
    run.stages["extract"] = {"outputs": {}}
    (tmp_path / "manifest.json").write_text(json.dumps(run.to_json()))
    assert manifest.verify(str(tmp_path)) == [
        "stats: did not finish (the run stopped before it; rerun to complete the output)"
    ]
