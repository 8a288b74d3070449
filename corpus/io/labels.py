"""Labels, one schema wherever they come from (DESIGN §7): people, LLMs (`llm:<model>`) or weak rules
(`rule:<name>`), read from Parquet, JSONL(.gz), CSV or Label Studio exports, written to Parquet, JSONL(.gz), CSV or
Label Studio tasks.

A labels table is a pyarrow Table whose first columns are `corpus.schema.LABEL_COLUMNS`:

    id, text, label, annotator, created, guideline

`label` keeps its type (string, bool or number: the HPLT files' booleans, FineWeb-Edu's 0-5 scores, Label
Studio's choices); any other columns of the source (url, language, source_path, source_offset, signals, ...)
follow, so provenance travels with the labels.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from corpus.io import storage
from corpus.schema import LABEL_COLUMNS


class LabelsError(ValueError):
    """A labels file that cannot be read as labels (it names the file and what is missing)."""


def _open_text(path: str) -> io.TextIOBase:
    fs, local = storage.filesystem(path)
    raw = fs.open(local, "rb")
    return io.TextIOWrapper(gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw, encoding="utf-8")


def _records(path: str) -> list[dict[str, Any]]:
    """The rows of a labels file as dicts (Label Studio's full JSON export is flattened by `_label_studio`)."""
    name = path.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        fs, local = storage.filesystem(path)
        return pq.read_table(local, filesystem=fs).to_pylist()
    with _open_text(path) as fh:
        if name.endswith(".csv"):
            return list(csv.DictReader(fh))
        if name.endswith(".jsonl") or name.endswith(".ndjson"):
            rows = []
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise LabelsError(f"{path}: line {number} is not JSON ({exc})") from None
            return rows
        if name.endswith(".json"):
            try:
                data = json.load(fh)
            except ValueError as exc:
                raise LabelsError(f"{path} is not JSON ({exc})") from None
            if isinstance(data, list) and data and isinstance(data[0], dict) and "data" in data[0]:
                return _label_studio(data, path)
            if isinstance(data, list):
                return data  # Label Studio's JSON_MIN export, or any list of rows
            raise LabelsError(f"{path}: expected a list of rows or a Label Studio export")
    raise LabelsError(f"{path}: unknown labels format (use .parquet, .jsonl, .jsonl.gz, .csv or a Label Studio .json)")


def read_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a Parquet, JSONL(.gz), CSV or JSON file as dicts, as they are (no label needed)."""
    return _records(path)


def _result_value(result: dict[str, Any]) -> Any:
    value = result.get("value", {})
    for key in ("choices", "rating", "number", "text", "taxonomy"):
        if key in value:
            found = value[key]
            if isinstance(found, list):
                flat = [", ".join(x) if isinstance(x, list) else str(x) for x in found]
                return flat[0] if len(flat) == 1 else ", ".join(flat)
            return found
    return None


def _label_studio(tasks: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Label Studio's JSON export: one row per (task, annotation, result field): the task's data, the field's
    name (`from_name`) and value, who and when."""
    rows = []
    for task in tasks:
        data = dict(task.get("data") or {})
        for annotation in task.get("annotations") or task.get("completions") or []:
            if annotation.get("was_cancelled"):
                continue
            who = annotation.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("id")
            for result in annotation.get("result") or []:
                rows.append(
                    {
                        **data,
                        "_field": result.get("from_name"),
                        "_value": _result_value(result),
                        "_annotator": f"labelstudio:{who}" if who is not None else None,
                        "_created": annotation.get("created_at"),
                        "_task": task.get("id"),
                    }
                )
    if not rows:
        raise LabelsError(f"{path}: a Label Studio export with no annotations")
    return rows


def read_labels(
    path: str,
    label: str = "label",
    *,
    annotator: str | None = None,
    guideline: str | None = None,
    id_column: str = "id",
    text_column: str = "text",
) -> pa.Table:
    """One labels file as a labels table. `label` names the column (or Label Studio field, `from_name`) that
    holds the label; rows without it are dropped. `annotator`/`guideline` fill those columns where the file has
    none (e.g. `annotator=hplt:batch` for a file labelled by one person per batch)."""
    rows = _records(path)
    out: list[dict[str, Any]] = []
    for row in rows:
        if "_field" in row:  # Label Studio
            if row["_field"] != label and not (label == "label" and len({r.get("_field") for r in rows}) == 1):
                continue
            value, who, when = row.pop("_value"), row.pop("_annotator"), row.pop("_created")
            row.pop("_field"), row.pop("_task")
        else:
            if label not in row:
                continue
            value, who, when = row.pop(label), row.pop("annotator", None), row.pop("created", None)
        if value is None or value == "":
            continue
        if id_column not in row:
            raise LabelsError(f"{path}: no {id_column!r} column (id_column= names the documents' id)")
        doc_id = row.pop(id_column)
        text = row.pop(text_column, None)
        label_row = {
            "id": str(doc_id),
            "text": text,
            "label": value,
            "annotator": who or annotator or "unknown",
            "created": str(when) if when is not None else None,
            "guideline": row.pop("guideline", None) or guideline,
        }
        label_row.update({k: v for k, v in row.items() if k not in LABEL_COLUMNS})
        out.append(label_row)
    if not out:
        known = sorted({k for r in rows for k in r if not k.startswith("_")})
        raise LabelsError(f"{path}: no row has a {label!r} label; columns: {', '.join(known)}")
    return labels_table(out)


def labels_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Rows (dicts with at least the label columns) as a labels table, label columns first."""
    rows = list(rows)
    extra = sorted({k for r in rows for k in r} - set(LABEL_COLUMNS))
    columns = [*LABEL_COLUMNS, *extra]
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])


def write_labels(table: pa.Table, path: str) -> str:
    """Write a labels table as .parquet, .jsonl, .jsonl.gz or .csv (by the name); return the path."""
    name = path.lower()
    fs, local = storage.filesystem(path)
    parent = local.rsplit("/", 1)[0] if "/" in local else "."
    fs.makedirs(parent, exist_ok=True)
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(table, local, filesystem=fs, compression="zstd")
        return path
    rows = table.to_pylist()
    with fs.open(local, "wb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if name.endswith(".gz") else raw
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        if name.removesuffix(".gz").endswith(".csv"):
            writer = csv.DictWriter(text, fieldnames=table.column_names)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
        elif name.removesuffix(".gz").endswith((".jsonl", ".ndjson")):
            for row in rows:
                text.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        else:
            raise LabelsError(f"{path}: write labels as .parquet, .jsonl, .jsonl.gz or .csv")
        text.flush()
        text.detach()
        if stream is not raw:
            stream.close()
    return path


def label_studio_tasks(table: pa.Table, label: str | None = None) -> list[dict[str, Any]]:
    """Label Studio tasks to import (one per row): `data` holds the text, the id and every other column, so the
    annotator sees the provenance; a row that already has a label becomes a prediction to review."""
    tasks = []
    for row in table.to_pylist():
        data = {k: v for k, v in row.items() if k not in ("label", "annotator", "created", "guideline")}
        task: dict[str, Any] = {"data": data}
        if row.get("label") is not None and label:
            task["predictions"] = [
                {
                    "model_version": row.get("annotator") or "corpus",
                    "result": [
                        {
                            "from_name": label,
                            "to_name": "text",
                            "type": "choices",
                            "value": {"choices": [str(row["label"])]},
                        }
                    ],
                }
            ]
        tasks.append(task)
    return tasks


def write_label_studio_tasks(table: pa.Table, path: str, label: str | None = None) -> str:
    storage.write_text(path, json.dumps(label_studio_tasks(table, label), ensure_ascii=False, default=str, indent=1))
    return path
