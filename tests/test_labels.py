"""Labels in one schema from every source: the shared HPLT file as it is, our own formats round trip, Label Studio
exports in and tasks out."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from corpus.io.labels import LabelsError, label_studio_tasks, labels_table, read_labels, write_labels
from corpus.schema import LABEL_COLUMNS
from tests.conftest import shared_path


@pytest.mark.shared
def test_hplt_file_reads_as_it_is():
    path = shared_path("labels", "hplt-web-annotations", "dev.jsonl.gz")
    table = read_labels(str(path), label="unnatural", annotator="hplt")
    assert tuple(table.column_names[: len(LABEL_COLUMNS)]) == LABEL_COLUMNS
    assert table.num_rows == 2367
    assert table.schema.field("label").type == pa.bool_()
    assert sum(table.column("label").to_pylist()) == 259  # the README's count of unnatural texts
    assert {"language", "batch", "porn", "lang_correct"} <= set(table.column_names)  # provenance kept
    assert set(table.column("annotator").to_pylist()) == {"hplt"}


@pytest.mark.parametrize("name", ["labels.parquet", "labels.jsonl", "labels.jsonl.gz", "labels.csv"])
def test_own_formats_round_trip(tmp_path, name):
    table = labels_table(
        [
            {"id": "a", "text": "one", "label": 3, "annotator": "llm:m", "created": "2026-01-01", "guideline": "v1"},
            {"id": "b", "text": "two", "label": 1, "annotator": "ana", "created": None, "guideline": "v1", "url": "u"},
        ]
    )
    back = read_labels(write_labels(table, str(tmp_path / name)))
    assert back.column("id").to_pylist() == ["a", "b"]
    labels = back.column("label").to_pylist()
    assert [int(x) for x in labels] == [3, 1]  # CSV has no types: numbers come back as text
    assert back.column("annotator").to_pylist() == ["llm:m", "ana"]


def _export(tasks: list[dict]) -> list[dict]:
    """What Label Studio exports after two people annotated the imported tasks (its JSON export format)."""
    out = []
    for number, task in enumerate(tasks):
        choice = "good" if number % 2 == 0 else "bad"
        out.append(
            {
                "id": 100 + number,
                "data": task["data"],
                "annotations": [
                    {
                        "completed_by": {"email": who},
                        "created_at": "2026-11-30T10:00:00Z",
                        "was_cancelled": False,
                        "result": [
                            {
                                "from_name": "quality",
                                "to_name": "text",
                                "type": "choices",
                                "value": {"choices": [choice]},
                            },
                            {"from_name": "score", "type": "rating", "value": {"rating": 4}},
                        ],
                    }
                    for who in ("ana@x", "bo@x")
                ],
            }
        )
    return out


def test_label_studio_round_trip(tmp_path):
    sample = labels_table(
        [
            {
                "id": f"d{i}",
                "text": f"text {i}",
                "label": None,
                "annotator": None,
                "created": None,
                "guideline": None,
                "source_path": "a.warc.gz",
                "source_offset": i,
            }
            for i in range(3)
        ]
    )
    tasks = label_studio_tasks(sample)
    assert tasks[0]["data"]["source_path"] == "a.warc.gz" and "label" not in tasks[0]["data"]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_export(tasks)))
    quality = read_labels(str(export), label="quality")
    assert quality.num_rows == 6  # three tasks, two annotators each
    assert sorted(set(quality.column("annotator").to_pylist())) == ["labelstudio:ana@x", "labelstudio:bo@x"]
    assert quality.column("label").to_pylist()[:2] == ["good", "good"]
    assert quality.column("source_offset").to_pylist()[:2] == [0, 0]  # provenance came back with the labels
    assert read_labels(str(export), label="score").column("label").to_pylist() == [4] * 6
    with pytest.raises(LabelsError, match="no row has a 'nope' label"):
        read_labels(str(export), label="nope")
