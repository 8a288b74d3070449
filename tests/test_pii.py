"""PII masking: datatrove's expressions and placeholders, restarted per document."""

from __future__ import annotations

from corpus.filters.pii import EMAIL_REPLACEMENTS, IP_REPLACEMENTS, PIIMasker


def test_emails_and_public_ips_are_replaced():
    text = "Write to John.Doe@Example.COM or jane@mail.example.org; server 8.8.8.8, router 192.168.1.1, 127.0.0.1."
    masked, emails, ips = PIIMasker().mask(text)
    assert emails == 2 and ips == 1
    assert f"Write to {EMAIL_REPLACEMENTS[0]} or {EMAIL_REPLACEMENTS[1]};" in masked
    assert f"server {IP_REPLACEMENTS[0]}," in masked and "192.168.1.1" in masked and "127.0.0.1" in masked


def test_same_document_same_output():
    masker = PIIMasker()
    text = "a@b.org and 1.2.3.4"
    assert masker.mask(text) == masker.mask(text)  # the placeholder cycle restarts with each document


def test_options_and_2024_behaviour():
    text = "OLD@SITE.COM and new@site.com, 10.0.0.1"
    assert PIIMasker(only_remove_public_ips=False).mask(text)[2] == 1
    assert PIIMasker(remove_emails=False).mask(text)[1] == 0
    masked, emails, _ = PIIMasker(lowercase_emails_only=True).mask(text)
    assert emails == 1 and "OLD@SITE.COM" in masked  # FineWeb's 2024 expression missed upper-case addresses


def _reference(masker: PIIMasker, rows: list[dict]) -> list[dict]:
    """`mask_pii`'s contract, row by row in plain Python: `mask_pages` on the text, counts merged into signals."""
    from corpus.schema import signals_dict

    out = []
    for row in rows:
        text, emails, ips, ends = masker.mask_pages(row["text"], row["page_ends"])
        signals = signals_dict(row["signals"])
        signals.update({"pii.emails": float(emails), "pii.ip_addresses": float(ips)})
        out.append({**row, "text": text, "page_ends": ends, "signals": signals})
    return out


def test_the_batch_masker_equals_masking_row_by_row():
    """Only the rows Arrow's scan picks go through Python's regexes; the batch comes out as if every row had."""
    import pyarrow as pa

    from corpus.jobs.stages.dedup import mask_pii
    from corpus.schema import DOCUMENT_SCHEMA, signals_dict

    texts = [
        "Write to a@b.org, server 8.8.8.8.",  # both
        "no addresses here.",  # neither
        None,
        "an @ sign but no address, and 192.168.1.1 (private)",  # candidates that keep their text
        "version 1.2.3.4.5 and x@y",
        "page one mail@example.net|page two 9.9.9.9",  # pages: boundaries move
        "plain text " * 50,
        "mail@site.com",
    ]
    signals = [[("gopher.x", 1.0)], [], None, [("a", 2.0), ("b", 3.0)], [("c", 1.0)], [], [("d", 0.5)], [("e", 1.0)]]
    page_ends = [None, None, None, None, None, [len("page one mail@example.net|")], None, None]
    fields = [DOCUMENT_SCHEMA.field(n) for n in ("id", "text", "signals", "page_ends")]
    schema = pa.schema(fields)
    rows = [
        {"id": str(i), "text": t, "signals": s, "page_ends": e}
        for i, (t, s, e) in enumerate(zip(texts, signals, page_ends))
    ]
    for masker in (PIIMasker(), PIIMasker(remove_ips=False), PIIMasker(only_remove_public_ips=False)):
        for batch_rows in (rows, rows[1:2] + rows[6:7], rows[:0]):
            batch = pa.RecordBatch.from_pylist(batch_rows, schema=schema)
            got = mask_pii(masker, batch).to_pylist()
            expected = _reference(masker, [{**r, "signals": r["signals"]} for r in batch.to_pylist()])
            assert [{**g, "signals": signals_dict(g["signals"])} for g in got] == expected
            # entries keep their order, the counts come last
            assert all(list(signals_dict(g["signals"]))[-2:] == ["pii.emails", "pii.ip_addresses"] for g in got)
    # a row that already has the counts (masking twice): the Python merge, same result as row by row
    again = pa.RecordBatch.from_pylist(
        [{"id": "x", "text": "a@b.org", "signals": [("pii.emails", 5.0), ("z", 1.0)], "page_ends": None}], schema
    )
    got = mask_pii(PIIMasker(), again).to_pylist()
    assert signals_dict(got[0]["signals"]) == {"pii.emails": 1.0, "z": 1.0, "pii.ip_addresses": 0.0}
