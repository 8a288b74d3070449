"""Writing one Parquet output shard from a Python worker, with pyarrow, as Spark would write it.

The stages that hold a shard's rows in one Python task (extract; classify and dedup's apply) write them here
instead of handing them to Spark's writer: the text then never enters the JVM (no Arrow -> row conversion, no
sort or shuffle before a partitioned write), and what the task writes is exactly its rows, in their order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.io import storage

#: Arrow bytes gathered into one row group.
ROW_GROUP_BYTES = 64 << 20
#: Spark's zstd level (parquet-mr's default; pyarrow's is 1, whose shards are about 10 % larger).
ZSTD_LEVEL = 3
#: Spark's codec names (`output_options.compression`) that pyarrow spells differently.
PYARROW_CODECS = {"uncompressed": "none", "lz4_raw": "lz4"}


def pyarrow_codec(codec: str) -> str:
    """pyarrow's name of a Parquet codec named as Spark names it."""
    return PYARROW_CODECS.get(codec, codec)


def nullable(schema: pa.Schema) -> pa.Schema:
    """`schema` with every field nullable, as Spark reads Parquet back (dedup's outputs were written from such
    frames)."""
    return pa.schema([field.with_nullable(True) for field in schema])


class ShardOutput:
    """One output shard: the file is created at the first row group (a shard with no rows writes no file), row
    groups of about ROW_GROUP_BYTES. `compression` is a Spark codec name (`output_options.compression`)."""

    def __init__(self, path: str, schema: pa.Schema, compression: str) -> None:
        self.path, self.schema, self.compression = path, schema, pyarrow_codec(compression)
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.rows = 0
        self.sink: Any = None  # the open file (fsspec)
        self.writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        self.pending.append(batch)
        self.pending_bytes += batch.nbytes
        self.rows += batch.num_rows
        if self.pending_bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with _naming(self.path):
            if self.writer is None:
                fs, local = storage.filesystem(self.path)
                fs.makedirs(local.rsplit("/", 1)[0], exist_ok=True)
                self.sink = fs.open(local, "wb")
                level = ZSTD_LEVEL if self.compression == "zstd" else None
                self.writer = pq.ParquetWriter(
                    self.sink, self.schema, compression=self.compression, compression_level=level
                )
            table = pa.Table.from_batches(self.pending, schema=self.schema)
            self.writer.write_table(table, row_group_size=table.num_rows)
        self.pending, self.pending_bytes = [], 0

    def close(self) -> str | None:
        """The written file, or None when the shard got no rows."""
        self.flush()
        if self.writer is None:
            return None
        with _naming(self.path):
            try:
                self.writer.close()
            finally:  # a reused Python worker must not keep the file open
                self.sink.close()
        return self.path

    def abort(self) -> None:
        """Close the file unfinished, after an error (a reused Python worker keeps no handle open)."""
        if self.writer is not None:
            self.writer.is_open = False  # no footer: pyarrow's ParquetWriter would write one when collected
        if self.sink is not None:
            with contextlib.suppress(Exception):
                self.sink.close()


@contextlib.contextmanager
def aborting(outputs: list[ShardOutput]) -> Iterator[None]:
    """On an error inside, close every output's file unfinished (a reused Python worker keeps no handle; the task
    fails and its attempt's files are never published), then let the error go on."""
    try:
        yield
    except BaseException:
        for output in outputs:
            output.abort()
        raise


def discard(staging: str) -> str | None:
    """Remove a folder of attempts' files once the driver has published the files of the attempts Spark kept. An
    attempt that outlived its task (a speculative copy, an executor declared lost that still runs) may still write
    into it, so a failure to remove it is not the run's: the reason is returned for the caller to log."""
    try:
        storage.remove(staging)
    except OSError as exc:
        return f"could not remove {staging} ({exc}); it holds only unpublished attempts' files"
    return None


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError without a file name (a full disk: the write call has none) gets `path`, for the driver's one
    line ("cannot write <path>: No space left on device")."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, path) from exc
