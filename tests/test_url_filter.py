"""The URL filter against datatrove's URLFilter, on URLs built from the shipped lists themselves."""

from __future__ import annotations

import itertools
import tarfile

import pytest

from corpus.document import Document
from corpus.filters.url import BLOCKLIST_TARBALL, DomainIndex, URLFilter, datatrove_assets, word_lists


@pytest.fixture(scope="module")
def urls() -> list[str]:
    with tarfile.open(f"{datatrove_assets()}/{BLOCKLIST_TARBALL}", "r|gz") as tar:
        lists = {}
        for member in tar:
            fh = tar.extractfile(member)
            lists[member.name] = [line.decode().strip() for line in itertools.islice(fh, 0, 400000, 9973)]
    banned, subwords, soft = (sorted(w) for w in word_lists())
    out = []
    for domain in lists["domains"]:
        out += [f"https://{domain}/", f"http://www.{domain}/page?id=1", f"https://cdn.{domain}"]
    out += [f"https://{u}" for u in lists["urls"]] + lists["urls"]
    out += [f"https://example.com/{w}/index.html" for w in banned[:20]]
    out += [f"https://example.com/{w.upper()}/index.html" for w in banned[:5]]  # not lowercased: kept
    out += [f"https://example.com/{a}-{b}" for a, b in zip(soft[:10], soft[10:20])]
    out += [f"https://example.com/{w}" for w in soft[:5]]  # one soft word is not enough
    out += [f"https://example.com/x{w}x.html" for w in subwords[:10]]
    out += ["https://example.com/", "https://news.example.co.uk/a/b", "hard::weird.example", "http://10.0.0.1/x"]
    return out


def test_same_decisions_as_datatrove(urls):
    from datatrove.data import Document as DatatroveDocument
    from datatrove.pipeline.filters import URLFilter as DatatroveURLFilter
    from datatrove.pipeline.filters.base_filter import get_filter_result

    reference, ours = DatatroveURLFilter(), URLFilter()
    outcomes = []
    for url in urls:
        expected = get_filter_result(reference.filter(DatatroveDocument(text="", id="x", metadata={"url": url})))
        got = ours.filter(Document(id="x", text=None, url=url))
        assert (got[0], got[1]) == (expected[0], expected[1] if not expected[0] else None), url
        outcomes.append(got[1])
    # The URLs exercise every rule.
    assert {"domain", "subdomain", "url", "hard_blacklisted", "soft_blacklisted", "blacklisted_subword", None} <= set(
        outcomes
    )


def test_extra_lists_and_index():
    flt = URLFilter(
        extra_domains=["blocked-site.com"], extra_urls=["https://ok.example/bad"], use_integrated_lists=False
    )
    assert flt.filter(Document("a", None, "https://www.blocked-site.com/x")) == (False, "domain")
    assert flt.filter(Document("a", None, "https://ok.example/bad")) == (False, "url")
    assert flt.filter(Document("a", None, "https://ok.example/good")) == (True, None)
    index = DomainIndex.from_strings(["a.com", "b.org", "a.com", ""])
    assert len(index) == 2 and "a.com" in index and "c.net" not in index and "" not in index
