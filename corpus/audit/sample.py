"""Spot-check samples (`corpus sample`) in the labels schema, ready for annotators: one row per sampled document
with an empty `label`, its text, provenance (url, source_path, source_offset, status, removed_by, reason,
language), its stratum and its signals; written as JSONL, CSV or Parquet (by the file name) and as Label Studio
tasks next to it. The Spark side (the stratified choice itself) is corpus.jobs.audit.stratified_sample."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from corpus.io.labels import labels_table, write_label_studio_tasks, write_labels
from corpus.schema import signals_dict

#: Columns carried from a document into its sample row (when the output has them).
PROVENANCE = (
    "url", "source_path", "source_offset", "status", "removed_by", "reason", "language", "language_score",
    "quality_score", "crawl",
)  # fmt: skip


def sample_rows(rows: list[dict[str, Any]], by: list[str], seed: int, guideline: str | None = None) -> pa.Table:
    """Sampled documents as a labels table (label, annotator and created empty, to be filled by annotators)."""
    out = []
    for row in rows:
        stratum = {c: row.get(c) for c in by}
        out.append(
            {
                "id": row["id"],
                "text": row.get("text"),
                "label": None,
                "annotator": None,
                "created": None,
                "guideline": guideline,
                **{c: row[c] for c in PROVENANCE if c in row},
                "stratum": "|".join(f"{c}={v}" for c, v in stratum.items()),
                "stratum_size": row.get("_stratum_size"),
                "sample_rank": row.get("_stratum_rank"),
                "sample_seed": seed,
                "signals": signals_dict(row.get("signals")) or None,
            }
        )
    table = labels_table(out)
    if "signals" in table.column_names:  # {key: value} objects in JSON and CSV, a struct in Parquet
        index = table.column_names.index("signals")
        table = table.set_column(index, "signals", _object_column(table.column("signals").to_pylist()))
    return table


def tasks_path(path: str) -> str:
    """Where the Label Studio tasks of a sample written to `path` go: `<stem>.label-studio.json`."""
    stem = path
    for suffix in (".gz", ".jsonl", ".ndjson", ".csv", ".parquet", ".json"):
        stem = stem.removesuffix(suffix)
    return f"{stem}.label-studio.json"


def write_sample(table: pa.Table, path: str) -> list[str]:
    """The sample as labels (JSONL, CSV or Parquet, by the name) plus Label Studio tasks; or only the tasks when
    `path` ends in .json. Returns the files written."""
    if path.lower().endswith(".json"):
        return [write_label_studio_tasks(table, path)]
    return [write_labels(table, path), write_label_studio_tasks(table, tasks_path(path))]


def _object_column(values: list[dict | None]) -> pa.Array:
    """Dicts (or None) as a struct column over the union of their keys."""
    keys = sorted({k for v in values if v for k in v})
    struct = pa.struct([pa.field(k, pa.float64()) for k in keys]) if keys else pa.null()
    return pa.array([{k: v.get(k) for k in keys} if v else None for v in values], struct)


__all__ = ["PROVENANCE", "sample_rows", "tasks_path", "write_sample"]
