"""Every output folder loads in the readers researchers use first: Hugging Face `datasets`, DuckDB and Polars
(the `signals` column is a list of key/value structs, which all of them read; a map column breaks `datasets`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest

FOLDERS = ("filtered", "removed", "skipped", "deduped", "tokenized")


def _files(output: Path, folder: str) -> list[str]:
    files = sorted(str(p) for p in (output / folder).glob("*.parquet"))
    assert files, f"{folder}/ has no shards"
    return files


@pytest.mark.spark
@pytest.mark.parametrize("folder", FOLDERS)
def test_output_folder_loads_in_datasets_duckdb_and_polars(sample_output, folder, tmp_path, monkeypatch):
    import datasets
    import duckdb
    import polars as pl

    files = _files(sample_output, folder)
    rows = ds.dataset(files).count_rows()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == rows
    assert pl.read_parquet(files).height == rows
    con = duckdb.connect()
    assert con.execute("select count(*) from read_parquet(?)", [files]).fetchone()[0] == rows
    if "signals" in loaded.column_names:
        with_signals = [r for r in loaded.select_columns(["signals"]) if r["signals"]]
        if folder in ("filtered", "deduped"):
            assert with_signals, "kept documents carry their filters' signals"
        for row in with_signals[:5]:
            assert all(set(entry) == {"key", "value"} for entry in row["signals"])
        # signals by name, as auditors query them in SQL
        names = con.execute(
            "select distinct unnest(map_keys(map_from_entries(signals))) from read_parquet(?) "
            "where signals is not null",
            [files],
        ).fetchall()
        assert len(names) == len({e["key"] for r in with_signals for e in r["signals"]})


@pytest.mark.spark
def test_export_writes_jsonl_with_every_row(sample_output, tmp_path):
    import gzip
    import json
    import subprocess
    import sys

    corpus = Path(sys.executable).parent / "corpus"
    result = subprocess.run(
        [str(corpus), "export", str(sample_output), "--folder", "deduped", "--to", str(tmp_path / "jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = []
    for path in sorted((tmp_path / "jsonl").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as fh:
            rows += [json.loads(line) for line in fh]
    table = ds.dataset(_files(sample_output, "deduped")).to_table()
    assert [r["id"] for r in rows] == table.column("id").to_pylist()
    assert all(isinstance(r["signals"], dict) for r in rows) and rows[0]["signals"]["pii.emails"] >= 0
