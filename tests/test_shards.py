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
