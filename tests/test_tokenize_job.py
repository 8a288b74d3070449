"""The tokenize stage on Spark: contract, round trip, shard sizes, shuffle, and the readers users use."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from corpus.audit import manifest
from corpus.config import load_config
from corpus.dataset import PackedSequences
from corpus.jobs.run import run_stages
from corpus.schema import TOKENIZED_SCHEMA
from corpus.synthetic import SyntheticCorpus
from corpus.tokenizer import load_tokenizer

pytestmark = pytest.mark.spark


def test_contract_and_round_trip(sample_output):
    tokenized = sample_output / "tokenized"
    shards = sorted(tokenized.glob("*.parquet"))
    assert [s.name for s in shards] == ["part-00000.parquet"]  # the sample is far below 100M tokens
    assert pq.read_schema(shards[0]).remove_metadata() == TOKENIZED_SCHEMA
    deduped = {r["id"]: r for r in ds.dataset(str(sample_output / "deduped")).to_table().to_pylist()}
    rows = ds.dataset(str(tokenized)).to_table().to_pylist()
    assert {r["id"] for r in rows} == set(deduped)
    tokenizer = load_tokenizer()
    for row in rows:
        assert row["token_count"] == len(row["tokens"]) and row["tokens"][-1] == tokenizer.eos_id
        assert tokenizer.decode(row["tokens"][:-1]) == deduped[row["id"]]["text"]
        assert row["url"] == deduped[row["id"]]["url"] and row["language"] == "en"
    run = json.loads((sample_output / "manifest.json").read_text())
    assert run["stages"]["tokenize"]["total_tokens"] == sum(r["token_count"] for r in rows)
    stats = json.loads((sample_output / "stats" / "tokenize.json").read_text())
    assert stats["tokens"] == run["stages"]["tokenize"]["total_tokens"] and stats["tokenizer"] == tokenizer.name
    assert manifest.verify(str(sample_output)) == []


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    corpus = SyntheticCorpus.create(seed=4, vocabulary_size=5000)
    folder = tmp_path_factory.mktemp("docs")
    texts = [corpus.document(20, 400) for _ in range(600)]
    for part in range(3):
        table = pa.table({"id": [f"d{part}-{i:03d}" for i in range(200)], "text": texts[part * 200 : part * 200 + 200]})
        pq.write_table(table, folder / f"part-{part}.parquet")
    return folder


def tokenize(spark, documents, output, *settings: str) -> list[dict]:
    run_stages(load_config(None, [f"input={documents}", f"output={output}", "stages=[tokenize]", *settings]), spark)
    return [
        pq.read_table(p).to_pylist() for p in sorted((output / "tokenized").glob("*.parquet"))
    ]  # one list of rows per shard


def test_shards_and_row_groups_by_tokens(spark, documents, tmp_path):
    shards = tokenize(
        spark, documents, tmp_path / "out", "tokenize.shard_tokens=20000", "tokenize.row_group_tokens=3000"
    )
    sizes = [sum(r["token_count"] for r in rows) for rows in shards]
    longest = max(r["token_count"] for rows in shards for r in rows)
    # a shard holds the documents that start within its 20000 tokens: never more than one document off
    assert len(shards) >= 5 and all(abs(s - 20000) < longest for s in sizes[:-1]) and sizes[-1] < 20000 + longest
    ids = [r["id"] for rows in shards for r in rows]
    assert ids == sorted(ids)  # without shuffle: the input's order, shard after shard
    first = pq.ParquetFile(tmp_path / "out" / "tokenized" / "part-00000.parquet")
    assert first.num_row_groups >= 5
    groups = [first.metadata.row_group(i).num_rows for i in range(first.num_row_groups)]
    assert sum(groups) == len(shards[0])


def test_shuffle_is_seeded_and_independent_of_partitioning(spark, documents, tmp_path):
    orders = []
    for partitions, seed in ((3, 7), (9, 7), (3, 8)):
        spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
        try:
            shards = tokenize(spark, documents, tmp_path / f"s{partitions}-{seed}", "tokenize.shuffle=true",
                              f"tokenize.seed={seed}", "tokenize.shard_tokens=50000")  # fmt: skip
        finally:
            spark.conf.set("spark.sql.shuffle.partitions", "4")
        orders.append([r["id"] for rows in shards for r in rows])
    assert orders[0] == orders[1] and orders[0] != orders[2]
    assert sorted(orders[0]) == sorted(orders[2]) and orders[0] != sorted(orders[0])


def test_users_tools_read_the_shards(spark, documents, tmp_path):
    import datasets
    import duckdb

    output = tmp_path / "out"
    shards = tokenize(spark, documents, output, "tokenize.shard_tokens=20000")
    total = sum(r["token_count"] for rows in shards for r in rows)
    pattern = str(output / "tokenized" / "*.parquet")
    loaded = datasets.load_dataset("parquet", data_files=pattern, split="train")
    assert loaded.num_rows == 600 and sum(len(t) for t in loaded["tokens"]) == total
    assert duckdb.sql(f"select sum(token_count) from '{pattern}'").fetchall()[0][0] == total
    assert ds.dataset(str(output / "tokenized")).to_table().column("tokens").type == pa.list_(pa.uint32())

    stream = np.concatenate([np.array(r["tokens"], dtype=np.uint32) for rows in shards for r in rows])
    sequences = list(PackedSequences(str(output / "tokenized"), seq_len=1000))
    assert len(sequences) == len(stream) // 1000
    assert all(np.array_equal(s, stream[i * 1000 : (i + 1) * 1000]) for i, s in enumerate(sequences))
    ranks = [list(PackedSequences(str(output / "tokenized"), seq_len=1000, rank=r, world_size=2)) for r in (0, 1)]
    assert sum(len(r) for r in ranks) >= len(sequences) - 2  # each rank reads whole shards
