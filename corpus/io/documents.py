"""Documents extracted elsewhere, as inputs: JSONL(.gz) and Parquet files of documents (one per line or row, with
an id and a text), read in a stream, as datatrove's JsonlReader and ParquetReader do. The recipes then apply their
filters to the text (no extraction).

`sniff_format` tells WARC/ARC files from document files and from anything else by their first bytes, so an input
that is neither is refused with one line instead of being misread.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from corpus.assets import is_url
from corpus.document import Document
from corpus.io import storage
from corpus.io.inputs import InputError, open_input
from corpus.io.warc import ReadError, parse_date

WARC, ARC, JSONL, PARQUET = "warc", "arc", "jsonl", "parquet"
INPUT_FORMATS = ("auto", WARC, JSONL, PARQUET)
_SNIFF_BYTES = 4096
_BY_NAME = {".parquet": PARQUET, ".jsonl": JSONL, ".ndjson": JSONL, ".warc": WARC, ".arc": WARC}


def _head(path: str) -> bytes:
    """The first bytes of a file, gunzipped if it is gzip (one member is enough)."""
    with open_input(path) as fh:
        raw = fh.read(_SNIFF_BYTES)
    if raw[:2] == b"\x1f\x8b":
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, _SNIFF_BYTES)
        except zlib.error:
            return b""
    return raw


def sniff_format(path: str) -> str | None:
    """ "warc", "arc", "jsonl" or "parquet" by the file's first bytes; None when it is none of these."""
    head = _head(path)
    if head.startswith(b"PAR1"):
        return PARQUET
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"WARC/"):
        return WARC
    if text.startswith(b"filedesc://"):
        return ARC
    if text.startswith(b"{"):
        return JSONL
    return None


def input_format(path: str) -> str:
    """The format of one input file: by its name (.parquet, .jsonl, .ndjson, .warc, .arc, gzipped or not), else
    by its first bytes; WARC when neither tells (a remote file named otherwise is read as WARC)."""
    name = path.lower().removesuffix(".gz")
    for suffix, fmt in _BY_NAME.items():
        if name.endswith(suffix):
            return fmt
    if is_url(path):
        return WARC
    sniffed = sniff_format(path)
    return WARC if sniffed in (WARC, ARC, None) else sniffed


def check_inputs(files: list[str], configured: str) -> None:
    """Refuse, with one line, a local input that is not what the run reads: not WARC/ARC/WET, JSONL or Parquet
    (with input_format=auto), or not the configured format. Remote files are read as named (sniffing 90,000
    files of a crawl would cost a request each); what they hold is found out by their task."""
    for path in files:
        if is_url(path) or storage.size(path) == 0:  # an empty file becomes an `empty_file` error row
            continue
        sniffed = sniff_format(path)
        fine = (
            sniffed is not None
            if configured == "auto"
            else sniffed in ((WARC, ARC) if configured == WARC else (configured,))
        )
        if not fine:
            what = {WARC: "a WARC file", ARC: "an ARC file", JSONL: "JSONL", PARQUET: "Parquet"}.get(sniffed or "", "")
            raise InputError(
                f"input {path} is {what or 'not a WARC/ARC/WET, JSONL or Parquet file'} (it starts "
                f"{_head(path)[:40].decode('utf-8', 'replace')!r})"
                + (f", not {configured}" if what else "")
                + "; input_format= says what the inputs are (warc, jsonl, parquet, or auto)"
            )


def _value(row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    return value if value != "" else None


def _document(row: dict[str, Any], path: str, index: int, crawl: str, id_column: str, text_column: str) -> Document:
    doc_id = _value(row, id_column)
    fetched = _value(row, "fetch_time") or _value(row, "date")
    if isinstance(fetched, str):
        fetched = parse_date(fetched)
    return Document(
        id=str(doc_id) if doc_id is not None else f"<urn:corpus:row:{path}@{index}>",
        text=_value(row, text_column),
        url=_value(row, "url"),
        crawl=_value(row, "crawl") or crawl,
        fetch_time=fetched if isinstance(fetched, datetime) else None,
        content_type="text/plain",
        source_path=path,
        source_offset=index,  # the row (JSONL: line) number: `corpus inspect` reads it back
        language=_value(row, "language"),
    )


def iter_documents(
    path: str, fmt: str, crawl: str, id_column: str = "id", text_column: str = "text"
) -> Iterator[Document | ReadError]:
    """The documents of one JSONL or Parquet file, in order; a line that is not JSON becomes a ReadError (the
    file goes on), a file that cannot be read one ReadError at the row where reading stopped."""
    index = 0
    try:
        if fmt == PARQUET:
            import pyarrow.parquet as pq

            fs, local = storage.filesystem(path)
            with fs.open(local, "rb") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=1024):
                    for row in batch.to_pylist():
                        yield _document(row, path, index, crawl, id_column, text_column)
                        index += 1
            return
        with open_input(path) as raw:
            stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            for line in io.TextIOWrapper(stream, encoding="utf-8", errors="replace"):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except ValueError as exc:
                        yield ReadError(path, index, "bad_json_line", str(exc)[:300])
                    else:
                        if isinstance(row, dict):
                            yield _document(row, path, index, crawl, id_column, text_column)
                        else:
                            yield ReadError(path, index, "bad_json_line", "not a JSON object")
                index += 1
    except Exception as exc:  # a file cut short, a corrupt Parquet footer: the rest of the file is lost, said so
        yield ReadError(path, index, f"unreadable_file:{type(exc).__name__}", str(exc)[:300])


def export_jsonl(shards: list[str], target: str, compress: bool = True) -> list[str]:
    """Write Parquet shards of documents as JSONL (one file per shard, `<target>/<shard name>.jsonl[.gz]`),
    streaming a row group at a time; `signals` become a JSON object. Returns the files written."""
    import pyarrow.parquet as pq

    from corpus.schema import signals_dict

    written = []
    storage.makedirs(target)
    for shard in shards:
        name = shard.rsplit("/", 1)[-1].removesuffix(".parquet") + (".jsonl.gz" if compress else ".jsonl")
        out_url = storage.join(target, name)
        fs, local = storage.filesystem(shard)
        out_fs, out_local = storage.filesystem(out_url)
        with fs.open(local, "rb") as fh, out_fs.open(out_local, "wb") as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=1024):
                lines = []
                for row in batch.to_pylist():
                    if "signals" in row:
                        row["signals"] = signals_dict(row["signals"])
                    lines.append(json.dumps(row, ensure_ascii=False, default=str))
                stream.write(("\n".join(lines) + "\n").encode("utf-8"))
            if stream is not raw:
                stream.close()
        written.append(out_url)
    return written
