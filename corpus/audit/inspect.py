"""Looking documents up in an output folder without Spark (pyarrow, one file at a time, filtered on `id`):
`corpus inspect OUT --id X` (the document, all its signals beside the thresholds, why it was kept or removed,
and the raw WARC record read back by its offset) and `corpus inspect OUT --folder ...` (rows of a folder)."""

from __future__ import annotations

import difflib
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus.audit import manifest
from corpus.audit.manifest import Run
from corpus.filters import configured_thresholds
from corpus.io import storage
from corpus.io.warc import read_record_at
from corpus.schema import signals_dict

#: Document folders, in the order a document passes through them.
FOLDERS = ("filtered", "removed", "skipped", "deduped", "tokenized")
#: Names people use for the folders.
ALIASES = {"kept": "filtered", "dropped": "removed", "dedup": "deduped", "tokens": "tokenized"}
_CLUSTER = re.compile(r"cluster=(\S+) size=(\d+)")


class InspectError(ValueError):
    """Something the user can fix (a missing output, an unknown folder): one line."""


def open_output(output: str) -> tuple[str, Run | None]:
    output = storage.absolute(output)
    if not storage.exists(output):
        raise InspectError(f"{output}: no such output folder")
    run = manifest.load(output)
    if run is None and not any(storage.exists(storage.join(output, f)) for f in FOLDERS):
        raise InspectError(f"{output}: not an output folder (no manifest.json and none of {', '.join(FOLDERS)})")
    return output, run


def folder_name(folder: str) -> str:
    name = ALIASES.get(folder, folder)
    if name not in FOLDERS:
        close = difflib.get_close_matches(folder, [*FOLDERS, *ALIASES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InspectError(f"--folder: unknown folder {folder!r}{hint}; one of {', '.join(FOLDERS)} (or kept)")
    return name


def folder_files(output: str, run: Run | None, folder: str) -> list[str]:
    """The Parquet files of `folder`: those the manifest lists (any stage), else whatever the folder holds."""
    if run is not None:
        listed = [url for stage in run.stages for url in (run.shard_urls(output, stage, folder) or [])]
        if listed:
            return sorted(set(listed))
    return storage.list_files(storage.join(output, folder), ".parquet")


def read_folder(files: list[str], filter_expr: Any = None, columns: list[str] | None = None) -> pa.Table | None:
    """Rows of the files (one at a time: their schemas may differ a little, e.g. dedup's removed rows)."""
    tables = []
    for url in files:
        fs, path = storage.filesystem(url)
        with fs.open(path, "rb") as fh:
            parquet = pq.ParquetFile(fh)
            wanted = [c for c in columns if c in parquet.schema_arrow.names] if columns else None
            table = parquet.read(columns=wanted)
        if filter_expr is not None:
            table = table.filter(filter_expr)
        if table.num_rows:
            tables.append(table)
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def find_documents(
    output: str, run: Run | None, ids: list[str], folders: tuple[str, ...] = FOLDERS
) -> dict[str, list[dict[str, Any]]]:
    """folder -> the rows of `ids` in it."""
    wanted = pa.array(sorted(set(ids)), pa.string())
    found: dict[str, list[dict[str, Any]]] = {}
    for folder in folders:
        table = read_folder(folder_files(output, run, folder), pc.is_in(pc.field("id"), value_set=wanted))
        if table is not None:
            found[folder] = table.to_pylist()
    return found


def outcome(found: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Where a document ended: `kept` (with whether it reached deduped/ and tokenized/), `removed` (by which step,
    why, and for a duplicate the id it duplicates) or `skipped`."""
    removed = [r for r in found.get("removed", [])]
    if removed:
        row = removed[-1]  # a dedup removal comes after the filters that kept it
        out = {"status": "removed", "removed_by": row.get("removed_by"), "reason": row.get("reason")}
        if m := _CLUSTER.fullmatch(row.get("reason") or ""):
            out["duplicate_of"], out["cluster_size"] = m.group(1), int(m.group(2))
        return out
    if found.get("skipped"):
        return {"status": "skipped", "reason": found["skipped"][0].get("reason")}
    if found.get("filtered") or found.get("deduped"):
        return {"status": "kept", "deduped": bool(found.get("deduped")), "tokenized": bool(found.get("tokenized"))}
    return {"status": "not found"}


def inspect_document(output: str, doc_id: str, payload_bytes: int = 1500) -> dict[str, Any]:
    """Everything about one document (see the module docstring); raises InspectError when it is not there."""
    output, run = open_output(output)
    found = find_documents(output, run, [doc_id])
    if not found:
        raise InspectError(f"{output}: no document with id {doc_id!r} in {', '.join(FOLDERS)}")
    rows = [row for folder in FOLDERS for row in found.get(folder, []) if "text" in row]
    row = rows[0] if rows else next(iter(found.values()))[0]
    thresholds = configured_thresholds((run.config.get("filters") if run else None) or {})
    signals = {
        k: {"value": v, "thresholds": thresholds.get(k, [])} for k, v in signals_dict(row.get("signals")).items()
    }
    result: dict[str, Any] = {
        "id": doc_id,
        "folders": {folder: len(found[folder]) for folder in found},
        "outcome": outcome(found),
        "document": {k: v for k, v in row.items() if k not in ("signals", "tokens", "text")},
        "text": row.get("text"),
        "signals": signals,
    }
    if found.get("tokenized"):
        result["token_count"] = found["tokenized"][0].get("token_count")
    path, offset = row.get("source_path"), row.get("source_offset")
    if path and offset is not None:
        try:
            record = read_record_at(path, int(offset), payload_bytes)
            result["record"] = {
                "path": path,
                "offset": offset,
                "warc_headers": record.warc_headers,
                "http_status_line": record.http_status_line,
                "http_headers": record.http_headers,
                "payload": record.payload.decode("utf-8", errors="replace"),
                "payload_truncated": record.payload_truncated,
            }
        except (OSError, ValueError) as exc:
            result["record"] = {"path": path, "offset": offset, "error": f"{type(exc).__name__}: {exc}"}
    return result


def format_document(info: dict[str, Any], output: str, chars: int = 1000) -> str:
    o = info["outcome"]
    lines = [f"id        {info['id']}"]
    for key in ("url", "crawl", "fetch_time", "content_type", "language", "language_score", "charset", "http_status"):
        if info["document"].get(key) is not None:
            lines.append(f"{key:<9} {info['document'][key]}")
    if info["document"].get("source_path"):
        lines.append(f"source    {info['document']['source_path']}@{info['document'].get('source_offset')}")
    lines.append(f"folders   {', '.join(f'{k} ({v})' for k, v in info['folders'].items())}")
    if o["status"] == "removed":
        why = f"removed by {o['removed_by']}: {o['reason']}"
        if "duplicate_of" in o:
            twin = o["duplicate_of"]
            why += f"\n          a duplicate of {twin} (kept): corpus inspect {output} --id {twin}"
    elif o["status"] == "kept":
        why = "kept: passed every filter" + (", and dedup (deduped/)" if o["deduped"] else "")
        why += f", tokenized ({info.get('token_count')} tokens)" if o["tokenized"] else ""
    else:
        why = f"{o['status']}" + (f": {o.get('reason')}" if o.get("reason") else "")
    lines.append(f"outcome   {why}")
    if info["signals"]:
        lines.append("signals   (value, and the run's threshold(s) for it)")
        for key, s in info["signals"].items():
            t = ", ".join(f"{x:g}" for x in s["thresholds"])
            lines.append(f"  {key:<44} {s['value']:>12.4f}" + (f"   threshold {t}" if t else ""))
    text = info.get("text")
    if text is not None:
        more = f" ... ({len(text):,} characters)" if len(text) > chars else ""
        lines += ["text", "  " + text[:chars].replace("\n", "\n  ") + more]
    record = info.get("record")
    if record:
        lines.append(f"raw record at {record['path']}@{record['offset']}")
        if "error" in record:
            lines.append(f"  could not read it: {record['error']}")
        else:
            lines += [f"  {k}: {v}" for k, v in record["warc_headers"]]
            if record["http_status_line"]:
                lines.append(f"  {record['http_status_line']}")
                lines += [f"  {k}: {v}" for k, v in record["http_headers"]]
            more = " ..." if record["payload_truncated"] else ""
            lines += ["  payload (start):", "  " + record["payload"].replace("\n", "\n  ") + more]
    return "\n".join(lines)


__all__ = ["ALIASES", "FOLDERS", "InspectError", "find_documents", "folder_files", "folder_name", "format_document",
           "inspect_document", "open_output", "outcome", "read_folder"]  # fmt: skip
