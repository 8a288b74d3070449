"""Object storage on a real S3 server (moto's, on 127.0.0.1): WARCs read from s3:// inside the Spark tasks,
the whole recipe written to s3://, `corpus verify` on the bucket, and reruns that change nothing.

The pip pyspark has no S3A connector, so the stages write to a local staging folder that is mirrored to the
bucket after each stage (manifest.json last); these tests check what lands in the bucket, through boto3."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.spark]

BUCKET = "corpus-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server.start()
    try:
        yield f"http://127.0.0.1:{server._server.server_address[1]}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_settings(s3_endpoint: str) -> list[str]:
    """What a user passes on the command line to reach their S3-compatible store."""
    return [
        f"storage.options.s3.endpoint_url={s3_endpoint}",
        "storage.options.s3.key=testing-key",
        "storage.options.s3.secret=testing-secret",
        "storage.options.s3.client_kwargs={region_name: us-east-1}",
        "storage.block_size=65536",  # several range requests per sample WARC
    ]


@pytest.fixture(scope="module")
def s3(s3_endpoint: str):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing-key",
        aws_secret_access_key="testing-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def objects(s3, prefix: str) -> dict[str, tuple[str, object]]:
    """key -> (ETag, LastModified) under a prefix."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = (obj["ETag"], obj["LastModified"])
    return found


def documents(folder: Path, columns: list[str]) -> list[tuple]:
    if not folder.exists():
        return []
    table = pq.read_table(folder, columns=columns)
    return sorted(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


@pytest.fixture(scope="module")
def s3_run(spark, s3, s3_settings: list[str], sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The default recipe from s3:// WARCs to an s3:// output, run once for the module."""
    from corpus.config import load_config
    from corpus.jobs.run import run_stages

    for warc in sorted(sample_dir.glob("*.warc*")):
        s3.upload_file(str(warc), BUCKET, f"crawl/{warc.name}")
    staging = tmp_path_factory.mktemp("staging")
    settings = [
        f"input=s3://{BUCKET}/crawl/",
        f"output=s3://{BUCKET}/out/run1",
        "crawl=test",
        f"storage.staging={staging}",
        *s3_settings,
    ]
    run_stages(load_config(None, settings), spark)
    download = tmp_path_factory.mktemp("downloaded")
    for key in objects(s3, "out/run1/"):
        target = download / key.removeprefix("out/run1/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(target))
    return {"settings": settings, "download": download, "staging": staging}


def test_recipe_from_and_to_s3_equals_the_local_run(s3_run: dict, sample_output: Path, sample_dir: Path):
    local, remote = sample_output, s3_run["download"]
    assert (remote / "manifest.json").exists()
    for folder in ("filtered", "removed", "deduped"):
        expected = documents(local / folder, ["id", "text"])
        got = [  # ids of unreadable records name their file
            (i.replace(f"s3://{BUCKET}/crawl/", f"{sample_dir}/"), text)
            for i, text in documents(remote / folder, ["id", "text"])
        ]
        assert sorted(got) == expected, folder
    assert documents(remote / "filtered", ["id"]), "the sample keeps documents"
    # the documents say where they came from: the bucket, not a local copy
    sources = set(pq.read_table(remote / "filtered", columns=["source_path"]).column("source_path").to_pylist())
    assert sources and all(s.startswith(f"s3://{BUCKET}/crawl/") for s in sources), sources
    assert not any(p.startswith("_tmp") for p in (str(x.relative_to(remote)) for x in remote.rglob("*")))


def test_verify_reads_the_bucket_and_catches_a_changed_shard(s3_run: dict, s3, s3_settings: list[str]):
    from corpus.cli import main

    url = f"s3://{BUCKET}/out/run1"
    assert main(["verify", url, *s3_settings]) == 0
    shard = next(k for k in objects(s3, "out/run1/filtered/") if k.endswith(".parquet"))
    original = s3.get_object(Bucket=BUCKET, Key=shard)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=shard, Body=original[:-100])
    try:
        assert main(["verify", url, *s3_settings]) == 1
    finally:
        s3.put_object(Bucket=BUCKET, Key=shard, Body=original)
    assert main(["verify", url, *s3_settings]) == 0


def test_rerun_changes_nothing_in_the_bucket(s3_run: dict, s3, spark, tmp_path: Path, capsys):
    """A second run, even from another machine (an empty staging folder), finds every stage done: no data
    object in the bucket is rewritten."""
    from corpus.config import load_config
    from corpus.jobs.run import run_stages

    before = objects(s3, "out/run1/")
    settings = [s for s in s3_run["settings"] if not s.startswith("storage.staging=")]
    run_stages(load_config(None, [*settings, f"storage.staging={tmp_path / 'elsewhere'}"]), spark)
    after = objects(s3, "out/run1/")
    assert sorted(after) == sorted(before)
    rendered = ("out/run1/manifest.json", "out/run1/report.html")  # rewritten by every run
    assert {k: v for k, v in after.items() if k not in rendered} == {
        k: v for k, v in before.items() if k not in rendered
    }
    assert after["out/run1/report.html"][0] == before["out/run1/report.html"][0]  # same content
    log = capsys.readouterr().err
    for stage in ("extract", "stats", "dedup"):
        assert f"{stage}: up to date" in log
    assert "resuming from s3://" in log


def test_missing_bucket_is_a_clear_error(s3_settings: list[str], spark, tmp_path: Path):
    from corpus.config import load_config
    from corpus.io.inputs import InputError
    from corpus.jobs.run import run_stages

    with pytest.raises(InputError, match="no-such-bucket"):
        run_stages(load_config(None, ["input=s3://no-such-bucket/crawl/", f"output={tmp_path}", *s3_settings]), spark)
