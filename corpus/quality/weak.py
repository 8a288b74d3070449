"""Weak labels from a finished run: the documents one filter (or one of its reasons) removed, against the
documents the run kept. Filters run in order, so documents an earlier step removed never met this filter and
are left out. annotator `rule:<filter>[:<reason>]`, guideline `run:<run id>`; provenance columns follow."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.dataset as ds

from corpus.config import ConfigError
from corpus.io import storage
from corpus.io.labels import labels_table

PROVENANCE = ("id", "text", "url", "language", "crawl", "source_path", "source_offset")


def _read(output: str, folder: str, filter_expression: ds.Expression | None) -> list[dict]:
    path = storage.join(storage.absolute(output), folder)
    if not storage.list_files(path, ".parquet"):
        return []
    fs, local = storage.filesystem(path)
    dataset = ds.dataset(local, format="parquet", filesystem=fs)
    columns = [c for c in PROVENANCE if c in dataset.schema.names]
    return dataset.to_table(columns=columns, filter=filter_expression).to_pylist()


def weak_labels(output: str, removed_by: str, reason: str | None = None, per_label: int = 0, seed: int = 0) -> pa.Table:
    """Label True: removed by `removed_by` (with `reason`, if given); False: kept (classified/ when the run
    classified, else filtered/). `per_label` > 0 keeps a seeded random sample of that many of each."""
    manifest = storage.join(storage.absolute(output), "manifest.json")  # read as JSON: corpus.audit is a layer up
    if not storage.exists(manifest):
        raise ConfigError(f"input: {output} has no manifest.json (weak labels come from a finished run)")
    run = json.loads(storage.read_text(manifest))
    condition = ds.field("removed_by") == removed_by
    if reason:
        condition = condition & (ds.field("reason") == reason)
    positives = _read(output, "removed", condition)
    if not positives:
        raise ConfigError(
            f"by: no document of {output} was removed by {removed_by!r}{f' ({reason})' if reason else ''}"
        )
    kept = _read(output, "classified" if "classify" in run["stages"] else "filtered", None)
    rng = random.Random(seed)
    if per_label:
        positives = rng.sample(positives, min(per_label, len(positives)))
        kept = rng.sample(kept, min(per_label, len(kept)))
    rule = f"rule:{removed_by}" + (f":{reason}" if reason else "")
    provenance = {"annotator": rule, "created": run.get("updated"), "guideline": f"run:{run['run_id']}"}
    rows = [
        {**row, "label": label, **provenance} for label, group in ((True, positives), (False, kept)) for row in group
    ]
    return labels_table(rows)
