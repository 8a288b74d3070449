"""Fidelity: our filters make datatrove 0.10.1's keep/drop decisions on the same extracted text.

datatrove's own filters (URLFilter, LanguageFilter(languages=["en"]) with the same lid.176.ftz, Gopher
repetition and quality, C4 with the terminal-punctuation rule off, FineWeb quality) run side by side with ours on
the text our extractor produces from every HTML record of ccdev.
"""

from __future__ import annotations

import pytest

from corpus.config import load_config
from corpus.document import Document
from corpus.filters import FILTERS
from corpus.recipes import FineWebRecipe
from tests.conftest import shared_path

EXTRACT_ONLY = [f"filters.{name}.enabled=false" for name in FILTERS]


@pytest.fixture(scope="module")
def ccdev_texts() -> list[Document]:
    folder = shared_path("ccdev")
    pipeline = FineWebRecipe(load_config(None, EXTRACT_ONLY))
    docs = [d for path in sorted(folder.glob("*.warc.gz")) for d in pipeline.process_file(str(path))]
    return [d for d in docs if d.status == "kept"]


def datatrove_decisions(docs: list[Document]) -> list[tuple[str, str | None]]:
    from datatrove.data import Document as DatatroveDocument
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        URLFilter,
    )
    from datatrove.pipeline.filters.base_filter import get_filter_result
    from datatrove.utils.lid import FT176LID

    from corpus.lid import default_model_path

    FT176LID.MODEL_URL = default_model_path()
    chain = [
        ("url", URLFilter()),
        ("language", LanguageFilter(languages=["en"])),
        ("gopher_repetition", GopherRepetitionFilter()),
        ("gopher_quality", GopherQualityFilter()),
        ("c4", C4QualityFilter(filter_no_terminal_punct=False)),
        ("fineweb_quality", FineWebQualityFilter()),
    ]
    decisions = []
    for doc in docs:
        ref = DatatroveDocument(text=doc.text, id=doc.id, metadata={"url": doc.url})
        outcome: tuple[str, str | None] = ("kept", None)
        for name, flt in chain:
            keep, reason = get_filter_result(flt.filter(ref))
            if not keep:
                outcome = (name, reason)
                break
        decisions.append(outcome)
    return decisions


def our_decisions(docs: list[Document], settings: list[str]) -> list[tuple[str, str | None]]:
    pipeline = FineWebRecipe(load_config(None, settings))
    filters = [pipeline.url_filter, *pipeline.text_filters]
    decisions = []
    for doc in docs:
        ours = Document(id=doc.id, text=doc.text, url=doc.url)
        outcome: tuple[str, str | None] = ("kept", None)
        for flt in filters:
            keep, reason = flt.filter(ours)
            if not keep:
                outcome = (flt.name, reason)
                break
        decisions.append(outcome)
    return decisions


def test_same_decisions_as_datatrove(ccdev_texts):
    assert len(ccdev_texts) > 550
    ref = datatrove_decisions(ccdev_texts)
    ours = our_decisions(ccdev_texts, [])
    same_keep = sum((r[0] == "kept") == (o[0] == "kept") for r, o in zip(ref, ours))
    same_step = sum(r[0] == o[0] for r, o in zip(ref, ours))
    disagreements = [(d.url, r, o) for d, r, o in zip(ccdev_texts, ref, ours) if r[0] != o[0]]
    print(f"\nkeep/drop agreement {same_keep}/{len(ref)}; same removing step {same_step}/{len(ref)}")
    for disagreement in disagreements:
        print("  disagreement:", disagreement)
    assert same_keep / len(ref) >= 0.99
    assert same_step / len(ref) >= 0.99
    # datatrove's LanguageFilter gives no reason; every other step must also agree on the rule.
    same_reason = [r == o for r, o in zip(ref, ours) if r[0] == o[0] and r[0] not in ("kept", "language")]
    assert sum(same_reason) / max(len(same_reason), 1) >= 0.99
    assert 250 < sum(o[0] == "kept" for o in ours) < 450  # a meaningful mix was tested, not a trivial one
