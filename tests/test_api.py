"""The Python API and what it opens: a recipe over documents extracted elsewhere (in this process, and as JSONL or
Parquet inputs on Spark), and filters of the user's own named by import path."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import api
from corpus.config import ConfigError

PROSE = (
    "The river rose steadily through the night, and by morning the lower streets of the town were under water. "
    "Volunteers carried sandbags to the school, where the families from the riverside houses had gathered. "
    "The mayor said that the new flood wall had held along most of its length, but a gap near the old mill had "
    "let the water through. Engineers will inspect the wall when the level falls, and the council has promised "
    "to publish their report. Residents were told to boil their drinking water until the end of the week, and "
    "the main road to the north will stay closed while the bridge is checked for damage."
)
GERMAN = (
    "Der Fluss stieg in der Nacht stetig an, und am Morgen standen die unteren Straßen der Stadt unter Wasser. "
    "Freiwillige trugen Sandsäcke zur Schule, in der sich die Familien aus den Häusern am Fluss versammelt hatten."
)


def test_filter_documents_in_this_process():
    config = api.config(None, "filters.url.enabled=false")
    docs = list(
        api.filter_documents(
            config, [{"id": "en", "text": PROSE}, {"id": "de", "text": GERMAN}, {"id": "e", "text": ""}]
        )
    )
    assert [(d.id, d.status, d.removed_by, d.reason) for d in docs] == [
        ("en", "kept", None, None),
        ("de", "removed", "language", "other_language"),
        ("e", "removed", "extract", "empty"),
    ]
    assert docs[0].language == "en" and "gopher_quality.alpha_words_ratio" in docs[0].signals


def test_a_filter_of_ones_own_by_import_path():
    config = api.config(
        None,
        "filters.url.enabled=false",
        "filters.short.class=tests.custom_filters:ShortDocuments",
        "filters.short.min_words=150",
    )
    [doc] = api.filter_documents(config, [{"id": "en", "text": PROSE}])
    assert (doc.removed_by, doc.reason) == ("short", "too_short")  # named as configured
    assert doc.signals["short.words"] == len(PROSE.split())
    with pytest.raises(ConfigError, match=r"filters\.short\.class: cannot import 'nowhere'"):
        api.config(None, "filters.short.class=nowhere:Thing")
    with pytest.raises(ConfigError, match=r"did you mean 'filters\.short\.min_words'"):
        api.config(None, "filters.short.class=tests.custom_filters:ShortDocuments", "filters.short.min_word=3")
    with pytest.raises(ConfigError, match=r"filters\.my_filter\.class=my_package"):
        api.config(None, "filters.my_filter.min_words=3")  # unknown, and says how to name one's own


@pytest.mark.spark
def test_jsonl_and_parquet_documents_through_the_recipe_on_spark(spark, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    rows = [{"id": "en", "text": PROSE, "url": "https://news.example.org/flood"}, {"id": "de", "text": GERMAN}]
    (folder / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    pq.write_table(pa.table({"doc_id": ["p1"], "body": [PROSE]}), folder / "b.parquet")
    common = ["stages=[extract, stats]", "filters.url.enabled=false", "crawl=mine"]
    run = api.run(api.config(None, *common), spark, input=[str(folder / "a.jsonl")], output=str(tmp_path / "o1"))
    kept = pq.read_table(tmp_path / "o1" / "filtered").to_pylist()
    removed = pq.read_table(tmp_path / "o1" / "removed").to_pylist()
    assert [(d["id"], d["url"], d["source_offset"]) for d in kept] == [("en", "https://news.example.org/flood", 0)]
    assert sorted((d["removed_by"], d["reason"], d["source_offset"]) for d in removed) == [
        ("language", "other_language", 1),
        ("reader", "error:bad_json_line", 2),  # a broken line is a row with a reason, the file goes on
    ]
    assert run.stages["stats"]
    api.run(
        api.config(None, *common, "text_column=body", "id_column=doc_id", "input_format=parquet"),
        spark,
        input=[str(folder / "b.parquet")],
        output=str(tmp_path / "o2"),
    )
    assert [d["id"] for d in pq.read_table(tmp_path / "o2" / "filtered").to_pylist()] == ["p1"]


def test_values_a_column_cannot_hold_cost_their_document_not_the_task(tmp_path):
    """A JSON escape of a lone surrogate makes a str Arrow cannot write as UTF-8: that document becomes a removed
    row naming the field (emptied), the others in its batch are written as they are."""
    from corpus.document import batched, to_record_batch
    from corpus.recipes import recipe_for

    path = tmp_path / "a.jsonl"
    lines = [json.dumps({"id": "en", "text": PROSE}), '{"id": "bad", "text": "broken \\ud800 text"}',
             '{"id": "bad-id-\\udc80", "text": "words"}']  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    recipe = recipe_for(api.config(None, "filters.url.enabled=false", "crawl=mine"))
    rows = [row for batch in batched(recipe.process_file(str(path))) for row in batch.to_pylist()]
    assert [(r["id"], r["_status"], r["reason"]) for r in rows] == [
        ("en", "kept", None),
        ("bad", "removed", "error:unwritable:text"),
        ("bad-id-\\udc80", "removed", "error:unwritable:id"),
    ]
    assert rows[1]["text"] is None and rows[2]["text"] == "words" and rows[0]["text"]
    fine = to_record_batch([recipe.process_text(api.Document(id="x", text=PROSE, url=None))])
    assert fine.to_pylist()[0]["_status"] == "kept"
