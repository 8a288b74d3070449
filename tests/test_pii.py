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
