"""Parquet shards written from a Python task (corpus.io.shards), as the extract stage and dedup's apply write them."""

from __future__ import annotations

import errno
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.io import shards, storage
from corpus.io.shards import ShardOutput

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("text", pa.string())])


def batch(first: int, rows: int) -> pa.RecordBatch:
    ids = [f"d{i}" for i in range(first, first + rows)]
    return pa.RecordBatch.from_pydict({"id": ids, "text": [f"text of {i} " * 50 for i in ids]}, schema=SCHEMA)


def test_no_rows_no_file(tmp_path):
    out = ShardOutput(str(tmp_path / "a" / "part.parquet"), SCHEMA, "zstd")
    out.write(batch(0, 0))
    assert out.close() is None and not (tmp_path / "a").exists()


def test_rows_in_order_in_row_groups_of_about_the_bound(tmp_path, monkeypatch):
    one = batch(0, 10).nbytes
    monkeypatch.setattr(shards, "ROW_GROUP_BYTES", 3 * one)
    path = str(tmp_path / "sub" / "part.parquet")
    out = ShardOutput(path, SCHEMA, "uncompressed")  # Spark's name of pyarrow's "none"
    for i in range(7):
        out.write(batch(10 * i, 10))
    assert out.close() == path and out.rows == 70
    shard = pq.ParquetFile(path)
    assert [shard.metadata.row_group(i).num_rows for i in range(shard.num_row_groups)] == [30, 30, 10]
    assert shard.read().column("id").to_pylist() == [f"d{i}" for i in range(70)]
    assert shard.schema_arrow.field("id").nullable is False  # the schema as given
    assert shard.metadata.row_group(0).column(1).compression == "UNCOMPRESSED"


def test_a_full_disk_names_the_shard(tmp_path, monkeypatch):
    class FullDisk(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")  # as a write call raises it: no file name

    class FileSystem:
        def makedirs(self, path, exist_ok=False) -> None:
            pass

        def open(self, path, mode):
            return FullDisk()

    monkeypatch.setattr(storage, "filesystem", lambda url: (FileSystem(), url))
    path = str(tmp_path / "part.parquet")
    out = ShardOutput(path, SCHEMA, "zstd")
    out.write(batch(0, 5))
    with pytest.raises(OSError) as raised:
        out.close()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == path


WRITE_MANY = """
import resource, sys
import pyarrow as pa
from corpus.io.shards import ShardOutput
schema = pa.schema([pa.field("id", pa.string()), pa.field("text", pa.string())])
block = bytes(range(97, 123)).decode() * 40_000  # 1 MB of letters
outs = [ShardOutput(f"{sys.argv[1]}/{name}.parquet", schema, "zstd") for name in ("kept", "removed")]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
written = 0
for i in range(int(sys.argv[2])):  # batches of 256 documents of 4-20 KB
    texts = [block[(i * 7 + j) % 1000 : (i * 7 + j) % 1000 + 4_000 + 64 * j] for j in range(256)]
    written += sum(map(len, texts))
    outs[i % 2].write(pa.RecordBatch.from_pydict({"id": [f"{i}-{j}" for j in range(256)], "text": texts}, schema))
for out in outs:
    out.close()
print(written >> 20, before >> 10, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)
"""


def test_writing_a_large_shard_holds_about_a_row_group_per_output(tmp_path):
    """A task writes its file's kept and removed rows as they come: its memory holds about one row group per
    output (ROW_GROUP_BYTES of Arrow rows, then their encoding), whatever the file's size."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", WRITE_MANY, str(tmp_path), "200"], capture_output=True, text=True, check=True
    )
    written_mib, before_mib, peak_mib = map(int, done.stdout.split())
    assert written_mib >= 500  # about four row groups per output
    assert peak_mib - before_mib < 2 * (shards.ROW_GROUP_BYTES >> 20) * 2 + 64, done.stdout
    rows = sum(pq.ParquetFile(tmp_path / f"{name}.parquet").metadata.num_rows for name in ("kept", "removed"))
    assert rows == 200 * 256


def test_discarding_staging_that_a_late_attempt_still_writes_into_is_not_an_error(tmp_path, monkeypatch):
    staging = tmp_path / "_tmp" / "extract-1"
    staging.mkdir(parents=True)
    (staging / "kept-00000-attempt-3.parquet").write_bytes(b"partial")
    assert shards.discard(str(staging)) is None and not staging.exists()

    def busy(url: str) -> None:
        raise OSError(39, "Directory not empty", url)  # an attempt wrote a file while the folder was removed

    monkeypatch.setattr(storage, "remove", busy)
    problem = shards.discard(str(staging))
    assert problem is not None and str(staging) in problem and "Directory not empty" in problem


def test_an_error_while_writing_leaves_no_file_open(tmp_path):
    outputs = [ShardOutput(str(tmp_path / f"{name}.parquet"), SCHEMA, "zstd") for name in ("kept", "removed")]
    outputs[0].write(batch(0, 5))
    outputs[0].flush()  # the kept file is open, the removed one never was
    with pytest.raises(ValueError), shards.aborting(outputs):
        raise ValueError("a step failed")
    assert outputs[0].sink.closed and outputs[1].sink is None
