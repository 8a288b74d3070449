"""The one Arrow schema for documents, used by every stage (DESIGN §4)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Quality signals computed by filters, keyed ``<filter>.<signal>`` (e.g. ``gopher_quality.alpha_words_ratio``):
#: a list of (key, value) entries. Not an Arrow map: Hugging Face `datasets` cannot load map columns, and every
#: reader (datasets, DuckDB, Polars, Spark, pandas) loads a list of structs; `map_from_entries(signals)` gives a
#: map in Spark and DuckDB. `signals_dict` reads either form back (outputs written before this was a list hold
#: a map<string, double>).
SIGNALS_TYPE = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.float64())]))

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # WARC-Record-ID of the source record
        pa.field("text", pa.string()),  # extracted text, UTF-8 NFC (null when removed before extraction)
        pa.field("url", pa.string()),  # WARC-Target-URI
        pa.field("crawl", pa.string()),  # crawl or batch name, e.g. CC-MAIN-2024-10
        pa.field("fetch_time", pa.timestamp("us", tz="UTC")),  # WARC-Date
        pa.field("content_type", pa.string()),  # payload MIME type
        pa.field("source_path", pa.string()),  # the WARC file the record came from
        pa.field("source_offset", pa.int64()),  # byte offset of the record in that file
        pa.field("language", pa.string()),  # fastText label, e.g. "en"
        pa.field("language_score", pa.float32()),
        pa.field("removed_by", pa.string()),  # removed/ only: the step that dropped the document
        pa.field("reason", pa.string()),  # removed/ only: the rule inside that step
        pa.field("signals", SIGNALS_TYPE),
        pa.field("charset", pa.string()),  # how the payload was decoded, e.g. "utf-8/http" or "cp1251/detected"
        pa.field("http_status", pa.int32()),
        pa.field("page_count", pa.int32()),  # PDFs: pages in the file
        pa.field("page_ends", pa.list_(pa.int64())),  # PDFs: offset in `text` where each extracted page ends
    ]
)

DOCUMENT_COLUMNS: tuple[str, ...] = tuple(DOCUMENT_SCHEMA.names)


def signals_dict(value: list | dict | None) -> dict[str, float]:
    """A `signals` cell as pyarrow's `to_pylist` gives it (a list of {"key", "value"} dicts, or of (key, value)
    tuples from a map column) -> {key: value}."""
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return {e["key"]: e["value"] for e in value} if isinstance(value[0], dict) else dict(value)


def concat_signals(first: pa.Array | None, second: pa.Array, list_type: pa.DataType = SIGNALS_TYPE) -> pa.Array:
    """Per row, `first`'s entries (SIGNALS_TYPE, or a map<string, double> as older outputs hold them; a null row
    has none) then `second`'s, built in Arrow; a row is null where `second`'s is (Spark's
    `concat(coalesce(first, []), second)`). Duplicate keys stay."""
    parts = [second] if first is None else [first.cast(list_type), second.cast(list_type)]
    n = len(second)
    flats = [part.flatten() for part in parts]  # each row's entries, nulls and slicing taken care of
    lengths = [pc.list_value_length(p).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) for p in parts]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sum(lengths), out=offsets[1:])
    row = np.repeat(np.arange(n), offsets[1:] - offsets[:-1])
    position = np.arange(offsets[-1]) - offsets[row]  # of an entry within its row
    take = np.empty(offsets[-1], dtype=np.int64)
    before, base = np.zeros(n, dtype=np.int64), 0  # entries of the row in earlier parts; entries of earlier parts
    for flat, length in zip(flats, lengths):
        mine = (position >= before[row]) & (position < before[row] + length[row])
        starts = np.cumsum(length) - length  # where each row's entries begin in `flat`
        take[mine] = base + starts[row[mine]] + position[mine] - before[row[mine]]
        before, base = before + length, base + len(flat)
    entries = pa.concat_arrays(flats).take(pa.array(take))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), entries, type=list_type, mask=second.is_null())


#: A document's status in the extract schema: extraction writes each status's rows to its folder (STATUS_DIRS).
STATUS_COLUMN = "_status"
STATUS_KEPT, STATUS_REMOVED, STATUS_SKIPPED = "kept", "removed", "skipped"

#: Where each status lands in the output folder (DESIGN §5).
STATUS_DIRS = {STATUS_KEPT: "filtered", STATUS_REMOVED: "removed", STATUS_SKIPPED: "skipped"}

EXTRACT_SCHEMA = DOCUMENT_SCHEMA.append(pa.field(STATUS_COLUMN, pa.string(), nullable=False))

# -- secondary schemas ------------------------------------------------------------------------------------------

#: tokenized/: token ids per document, training-ready (DESIGN §5).
TOKENIZED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.uint32()), nullable=False),  # the document's ids, then the EOS id
        pa.field("token_count", pa.int64(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("language", pa.string()),
    ]
)

_REFETCH_ITEM_FIELDS = [
    pa.field("url", pa.string()),
    pa.field("record_id", pa.string()),  # the WARC-Record-ID of the truncated record
    pa.field("reason", pa.string()),  # truncated:<why>
]
#: The refetch list: a truncated PDF to fetch again, and the host whose task fetches it.
REFETCH_ITEM_SCHEMA = pa.schema([*_REFETCH_ITEM_FIELDS, pa.field("host", pa.string())])

#: refetch/: one row per URL the refetch stage tried, with its outcome (corpus.refetch.OUTCOMES).
REFETCH_RESULT_SCHEMA = pa.schema(
    [
        *_REFETCH_ITEM_FIELDS,
        pa.field("outcome", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("final_url", pa.string()),  # after redirects
        pa.field("http_status", pa.int32()),
        pa.field("requests", pa.int32()),
        pa.field("bytes", pa.int64()),
        pa.field("sha256", pa.string()),  # of the fetched body
    ]
)

#: What the stats stage counts: extract output grouped by these columns (corpus.audit.stats builds stats/ from it).
STATS_ROW_SCHEMA = pa.schema(
    [
        pa.field("source_path", pa.string()),
        pa.field("status", pa.string()),
        pa.field("removed_by", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("language", pa.string()),
        pa.field("charset", pa.string()),  # how the payload was decoded: http, meta, bom, detected, ...
        pa.field("docs", pa.int64()),
        pa.field("chars", pa.int64()),
    ]
)

#: Labels (corpus.io.labels), wherever they come from: the document's `id` and `text`, its `label` (string, bool
#: or number: the column keeps its type), who gave it (`annotator`: a person, `llm:<model>` or `rule:<name>`),
#: when (`created`, ISO 8601) and under which guideline version (`guideline`). Provenance columns may follow.
LABEL_COLUMNS: tuple[str, ...] = ("id", "text", "label", "annotator", "created", "guideline")
