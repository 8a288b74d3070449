"""Configuration: defaults, files, overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from corpus.config import Config, ConfigError, config_from_dict, load_config
from tests.conftest import ROOT


def test_defaults_are_the_fineweb_recipe():
    config = load_config()
    assert config.compat == "datatrove" and config.recipe == "fineweb"
    assert config.filters == {}
    assert config.reader.allowed_http_status == ["2xx"]


def test_shipped_configs_load():
    fineweb = load_config(str(ROOT / "conf" / "fineweb.yaml"))
    assert fineweb.filters["language"]["languages"] == ["en"]
    assert fineweb.filters["c4"]["filter_no_terminal_punct"] is False
    sample = load_config(str(ROOT / "conf" / "sample.yaml"))
    assert sample.input == ["data/sample"] and sample.spark.master == "local[2]"
    assert sample.filters == fineweb.filters  # `base:` brings the recipe in


def test_overrides():
    config = load_config(
        None,
        [
            "input=a.warc.gz,b.warc.gz",
            "output=out/x",
            "spark.master=local[4]",
            "spark.executor.memory=4g",
            "filters.language.languages=[en, de]",
            "filters.c4.min_num_sentences=3",
            "filters.url.enabled=false",
            "crawl=2024",
        ],
    )
    assert config.input == ["a.warc.gz", "b.warc.gz"]
    assert config.spark.master == "local[4]" and config.spark.conf == {"spark.executor.memory": "4g"}
    assert config.filters["language"]["languages"] == ["en", "de"]
    assert config.filters["c4"]["min_num_sentences"] == 3 and config.filters["url"]["enabled"] is False
    assert config.crawl == "2024"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["reader.max_payload=3"], "unknown key 'reader.max_payload' (did you mean 'reader.max_payload_bytes'?)"),
        (["filters.gopher_quality.min_doc_word=3"], "'filters.gopher_quality.min_doc_words'"),
        (["filters.gopher=1"], "unknown filter 'filters.gopher'"),
        (["filters.c4.min_num_sentences=many"], "filters.c4.min_num_sentences: expected an integer"),
        (["compat=fineweb2024"], "compat: expected one of datatrove, fineweb-2024"),
        (["filters.language.threshold=1.5"], "filters.language.threshold: must be between 0 and 1"),
        (["reader.allowed_http_status=[2x]"], "reader.allowed_http_status"),
        (["extract.deduplicate=maybe"], "extract.deduplicate: expected true or false"),
        (["stages=[extract, dedupe]"], "stages: unknown stage 'dedupe'"),
        (["nonsense"], "expected key=value"),
    ],
)
def test_errors_name_the_key(settings, message):
    with pytest.raises(ConfigError) as exc:
        load_config(None, settings)
    assert message in str(exc.value)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("filters: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(str(loop))


def test_round_trip_and_hash():
    config = load_config(None, ["filters.c4.min_num_sentences=3"])
    again = config_from_dict(config.to_dict())
    assert again == config and again.sha256() == config.sha256() != Config().sha256()


def test_files_per_job_zero_means_per_core_and_negative_is_refused():
    from corpus.jobs.stages.extract import MIN_FILES_PER_JOB, files_per_job

    class Context:
        defaultParallelism = 100

    class Session:
        sparkContext = Context()

    assert load_config(None, []).extract.files_per_job == 0
    assert files_per_job(Session(), load_config(None, [])) == 400  # type: ignore[arg-type]
    Context.defaultParallelism = 2
    assert files_per_job(Session(), load_config(None, [])) == MIN_FILES_PER_JOB  # type: ignore[arg-type]
    assert files_per_job(Session(), load_config(None, ["extract.files_per_job=3"])) == 3  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"extract\.files_per_job: must be >= 0"):
        load_config(None, ["extract.files_per_job=-1"])
