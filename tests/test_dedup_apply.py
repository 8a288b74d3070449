"""The dedup stage's outcome, applied per input shard, against an independent in-process reference.

The reference below computes what dedup keeps with plain Python: the same survivor order, exact groups by
normalized-text hash, and near-duplicate components by union-find over every shared MinHash bucket (no Spark, no
ranks, no star edges, no connected-components rounds). The stage must keep the same documents, with the same
reasons and cluster sizes, whatever the shuffle partitioning and however the input is split into shards.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from corpus.config import load_config, minhash_params
from corpus.jobs.run import run_stages
from corpus.minhash import minhasher
from tests.conftest import shared_path

pytestmark = pytest.mark.spark


def reference(rows: list[dict], scope_column: str | None = None) -> dict[str, tuple[str | None, str | None, int]]:
    """id -> (removed_by or None, reason or None, cluster size), for `rows` in input order (shard, then row)."""
    config = load_config(None, [])
    hasher = minhasher(minhash_params(config), config.compat)
    keys = hasher.keys([r["text"] or "" for r in rows])

    def order(i: int) -> tuple:  # earliest fetch, shortest url, smallest url, smallest id, input place
        r = rows[i]
        fetch, url = r.get("fetch_time"), r.get("url")
        return (fetch is None, fetch or 0, url is None, len(url or ""), url or "", r["id"], i)

    ranked = sorted(range(len(rows)), key=order)
    rank = {doc: n for n, doc in enumerate(ranked)}
    scope = [rows[i].get(scope_column) if scope_column else "" for i in range(len(rows))]
    exact_root: dict[int, int] = {}
    first_of_text: dict[tuple, int] = {}
    for doc in ranked:
        exact_root[doc] = first_of_text.setdefault((scope[doc], keys[doc][0]), doc)
    parent = {doc: doc for doc in ranked}

    def find(doc: int) -> int:
        while parent[doc] != doc:
            parent[doc] = parent[parent[doc]]
            doc = parent[doc]
        return doc

    bucket_first: dict[tuple, int] = {}
    for doc in ranked:
        if exact_root[doc] != doc or keys[doc][1] is None:
            continue
        for band, key in enumerate(keys[doc][1]):
            other = bucket_first.setdefault((scope[doc], band, key), doc)
            a, b = find(doc), find(other)
            if a != b:  # the root of a component is its lowest-ranked document
                parent[max(a, b, key=rank.__getitem__)] = min(a, b, key=rank.__getitem__)
    root = {doc: find(exact_root[doc]) for doc in ranked}
    size: dict[int, int] = {}
    for doc in ranked:
        size[root[doc]] = size.get(root[doc], 0) + 1
    result = {}
    for doc in ranked:
        by = "exact" if exact_root[doc] != doc else "minhash" if root[doc] != doc else None
        reason = f"cluster={rows[root[doc]]['id']} size={size[root[doc]]}" if by else None
        result[rows[doc]["id"]] = (by, reason, size[root[doc]])
    return result


def stage_outcome(output) -> dict[str, tuple[str | None, str | None, int]]:
    got = {}
    for path in sorted((output / "deduped").glob("*.parquet")):
        for r in pq.read_table(path, columns=["id", "minhash_cluster_size"]).to_pylist():
            got[r["id"]] = (None, None, r["minhash_cluster_size"])
    for path in sorted((output / "removed").glob("dedup-*.parquet")):
        for r in pq.read_table(path, columns=["id", "removed_by", "reason"]).to_pylist():
            got[r["id"]] = (r["removed_by"], r["reason"], int(r["reason"].rsplit("size=", 1)[1]))
    return got


@pytest.fixture(scope="module")
def copycat() -> list[dict]:
    """CopyCat's 240 human-judged ClueWeb pairs (both documents of each), plus an exact copy of every 7th
    source, with urls and fetch times that make the survivor order matter (some missing)."""
    root = shared_path("neardup", "copycat-clueweb")
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    docs = []
    for i, pair in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for side in ("src", "target"):
            n = len(docs)
            docs.append(
                {
                    "id": f"cc{i:03d}-{side}",
                    "text": (pair / f"{side}-doc").read_text(errors="replace"),
                    "url": None if n % 11 == 0 else f"https://example.org/{'x' * (n % 5)}{n}",
                    "fetch_time": None if n % 3 == 0 else start + timedelta(minutes=n % 17),
                }
            )
        if i % 7 == 0:
            docs.append({**docs[-2], "id": f"cc{i:03d}-copy", "url": f"https://copy.example.org/{i}"})
    return docs


def write_shards(docs: list[dict], folder, shards: int) -> None:
    folder.mkdir(parents=True)
    per = -(-len(docs) // shards)
    for s in range(shards):
        pq.write_table(pa.Table.from_pylist(docs[s * per : (s + 1) * per]), folder / f"part-{s}.parquet")


def test_same_outcome_as_the_reference_whatever_the_partitioning(spark, copycat, tmp_path):
    expected = reference(copycat)
    assert {by for by, _, _ in expected.values()} == {None, "exact", "minhash"}  # the data exercises both steps
    deduped = []
    for shards, partitions in ((2, 3), (5, 7)):
        write_shards(copycat, tmp_path / f"in-{shards}", shards)
        spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
        try:
            output = tmp_path / f"out-{shards}-{partitions}"
            config = load_config(None, [f"input={tmp_path / f'in-{shards}'}", f"output={output}", "stages=[dedup]"])
            run_stages(config, spark)
        finally:
            spark.conf.set("spark.sql.shuffle.partitions", "4")
        assert stage_outcome(output) == expected
        kept = ds.dataset(sorted(str(p) for p in (output / "deduped").glob("*.parquet"))).to_table().to_pylist()
        assert [r["id"] for r in kept] == [d["id"] for d in copycat if expected[d["id"]][0] is None]  # input order
        deduped.append(kept)
    assert deduped[0] == deduped[1]  # the same rows, values included


def test_the_sample_keeps_what_the_reference_keeps(sample_output):
    files = sorted((sample_output / "filtered").glob("*.parquet"))
    rows = ds.dataset([str(f) for f in files]).to_table().to_pylist()
    assert stage_outcome(sample_output) == reference(rows, scope_column="crawl")
    # deduped/ and removed/ hold every filtered row once, each in its input shard's order
    for shard in files:
        ids = pq.read_table(shard, columns=["id"]).column("id").to_pylist()
        number = shard.name.removeprefix("part-")
        parts = [sample_output / "deduped" / f"part-{number}", sample_output / "removed" / f"dedup-{number}"]
        out = [pq.read_table(p, columns=["id"]).column("id").to_pylist() if p.exists() else [] for p in parts]
        assert sorted(out[0] + out[1]) == sorted(ids)
        assert out[0] == [i for i in ids if i in set(out[0])] and out[1] == [i for i in ids if i in set(out[1])]
