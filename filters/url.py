"""URL filter: datatrove's shipped UT1 adult blocklists (4.56 M domains, 19.6 k URLs) and banned-word lists.

datatrove loads the domains into a Python set in every task (about 4 CPU-s and several hundred MB each time). We
hash them once per machine into a sorted uint64 array cached on disk, which every Python worker memory-maps
(milliseconds, shared through the page cache) and queries with a binary search. A false match needs a 64-bit
xxhash collision: about 2.5e-13 per lookup.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tarfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import numpy as np
import xxhash

from corpus.assets import atomic_write, cache_dir
from corpus.document import Document
from corpus.filters.base import KEEP, Filter, FilterResult

BLOCKLIST_TARBALL = "url_filterblacklistsv0_3_0.tar.gz"
_NON_ALNUM = re.compile(r"[^a-zA-Z0-9]+")


def normalize(text: str) -> str:
    return _NON_ALNUM.sub("", text).lower()


def datatrove_assets() -> str:
    spec = importlib.util.find_spec("datatrove")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the URL filter needs datatrove's blocklists: pip install datatrove==0.10.1")
    return os.path.join(next(iter(spec.submodule_search_locations)), "assets")


def read_list(lines: Iterable[str], do_normalize: bool = True) -> set[str]:
    """datatrove's parse_list: '#' lines are comments; words are normalized, domains only stripped."""
    return {normalize(x) if do_normalize else x.strip() for x in lines if x and x[0] != "#"}


def _hash(value: str) -> int:
    return xxhash.xxh64_intdigest(value.encode("utf-8", "surrogatepass"))


class DomainIndex:
    """A set of strings stored as sorted 64-bit hashes."""

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = hashes

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str) or not value:
            return False
        h = np.uint64(_hash(value))
        i = int(np.searchsorted(self.hashes, h))
        return i < len(self.hashes) and self.hashes[i] == h

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def from_strings(cls, values: Iterable[str]) -> DomainIndex:
        return cls(np.unique(np.fromiter((_hash(v) for v in values if v), dtype=np.uint64)))


def _build_indexes(tarball: str, domains_path: str, urls_path: str) -> None:
    """Hash both lists of the tarball in one streaming pass and save them as sorted uint64 arrays."""
    built: dict[str, np.ndarray] = {}
    with tarfile.open(tarball, "r|gz") as tar:
        for member in tar:
            if member.name in ("domains", "urls"):
                fh = tar.extractfile(member)
                assert fh is not None
                # Streamed line by line: the domain list is 120 MB of text.
                lines = (line.strip().decode("utf-8") for line in fh if line[:1] != b"#")
                built[member.name] = DomainIndex.from_strings(lines).hashes
    for name, path in (("domains", domains_path), ("urls", urls_path)):
        hashes = built[name]

        def save(tmp: str, hashes: np.ndarray = hashes) -> None:
            with open(tmp, "wb") as fh:
                np.save(fh, hashes)

        atomic_write(Path(path), save)


@cache
def blocklists() -> tuple[DomainIndex, DomainIndex]:
    """(domains, urls) from datatrove's tarball, hashed once per machine and memory-mapped by every worker."""
    tarball = os.path.join(datatrove_assets(), BLOCKLIST_TARBALL)
    stem = f"url_blocklist-{BLOCKLIST_TARBALL.split('.')[0]}-{os.path.getsize(tarball)}.v1"
    domains_path, urls_path = (str(cache_dir() / f"{stem}.{name}.npy") for name in ("domains", "urls"))
    if not (os.path.exists(domains_path) and os.path.exists(urls_path)):
        _build_indexes(tarball, domains_path, urls_path)
    return DomainIndex(np.load(domains_path, mmap_mode="r")), DomainIndex(np.load(urls_path, mmap_mode="r"))


@cache
def word_lists() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(banned words, banned subwords, soft-banned words) as datatrove ships them."""
    assets = datatrove_assets()

    def load(name: str) -> frozenset[str]:
        with open(os.path.join(assets, name), encoding="utf-8") as fh:
            return frozenset(read_list(fh))

    return load("banned_words.txt"), load("banned_subwords.txt"), load("soft_banned_words.txt")


@cache
def _tld_extractor():
    import tldextract

    # The public-suffix snapshot bundled with tldextract: no network fetch, the same on every worker.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class URLFilter(Filter):
    """Reasons, in the order they are checked: ``domain``, ``subdomain``, ``url``, ``hard_blacklisted``
    (a banned word among the URL's words), ``soft_blacklisted`` (at least `soft_word_threshold` soft-banned
    words), ``blacklisted_subword`` (a banned subword inside the normalized URL)."""

    name = "url"

    def __init__(
        self,
        soft_word_threshold: int = 2,
        extra_domains: list[str] | None = None,
        extra_urls: list[str] | None = None,
        banned_words: list[str] | None = None,
        banned_subwords: list[str] | None = None,
        soft_banned_words: list[str] | None = None,
        use_integrated_lists: bool = True,
    ) -> None:
        import ahocorasick

        self.soft_word_threshold = soft_word_threshold
        self.extra_domains = read_list(extra_domains or [], do_normalize=False)
        self.extra_urls = read_list(extra_urls or [], do_normalize=False)
        words, subwords, soft = word_lists() if use_integrated_lists else (frozenset(),) * 3
        self.banned_words = words | read_list(banned_words or [])
        self.soft_banned_words = soft | read_list(soft_banned_words or [])
        banned_subwords_set = subwords | read_list(banned_subwords or [])
        empty = DomainIndex.from_strings([])
        self.domains, self.urls = blocklists() if use_integrated_lists else (empty, empty)
        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for i, word in enumerate(sorted(banned_subwords_set)):
            self.automaton.add_word(word, i)
        self.has_subwords = bool(banned_subwords_set)
        if self.has_subwords:
            self.automaton.make_automaton()
        self.tld = _tld_extractor()

    def _blocked_domain(self, domain: str) -> bool:
        return domain in self.domains or domain in self.extra_domains

    def filter(self, doc: Document) -> FilterResult:
        url = doc.url or ""
        if not url:
            return False, "no_url"
        info = self.tld(url)
        # datatrove reads `registered_domain`; tldextract 5.3 renamed it (same value).
        domain = getattr(info, "top_domain_under_public_suffix", None)
        if domain is None:
            domain = info.registered_domain
        if self._blocked_domain(domain):
            return False, "domain"
        if self._blocked_domain(info.fqdn):
            return False, "subdomain"
        if url in self.urls or url in self.extra_urls:
            return False, "url"
        url_words = set(_NON_ALNUM.split(url))
        if not self.banned_words.isdisjoint(url_words):
            return False, "hard_blacklisted"
        if len(self.soft_banned_words.intersection(url_words)) >= self.soft_word_threshold:
            return False, "soft_blacklisted"
        if self.has_subwords and next(self.automaton.iter(normalize(url)), False):
            return False, "blacklisted_subword"
        return KEEP
