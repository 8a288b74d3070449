"""The trafilatura XPath speedups change nothing but the CPU time: same selected nodes, same extracted text."""

from __future__ import annotations

import gzip
import types
from copy import deepcopy

import pytest
import trafilatura
from lxml.etree import tostring
from trafilatura import htmlprocessing, utils, xpaths
from trafilatura.deduplication import LRU_TEST
from trafilatura.settings import Extractor

from corpus.html import speedups as speedups
from corpus.html.charset import decode_html
from corpus.io.warc import WarcRecord, iter_records
from tests.conftest import SHARED

DISCARD_LISTS = (
    "OVERALL_DISCARD_XPATH",
    "PAYWALL_DISCARD_XPATH",
    "TEASER_DISCARD_XPATH",
    "PRECISION_DISCARD_XPATH",
    "DISCARD_IMAGE_ELEMENTS",
    "REMOVE_COMMENTS_XPATH",
    "COMMENTS_DISCARD_XPATH",
    "AUTHOR_DISCARD_XPATHS",
)
OPTIONS = {"favor_precision": True, "include_comments": False, "include_tables": True, "deduplicate": True}

SYNTHETIC = [
    """<html><body><div class="Footer">a</div><DIV ID="SHARE-x">b</DIV><div class="">c</div><div hidden>d</div>
<span data-lp-replacement-content>e</span><span data-lp-replacement-content="">f</span><p class="xFOOTERx">g</p>
<section id="Nav">h</section><div class="comments-title">i</div><foo class="comments-title">j</foo><!-- c --><?pi x?>
<div class="ü-footer ñ">k</div><div class="post&#10;navigation">l</div><div style="display:none">m</div>
<div aria-hidden="true">n</div><div aria-hidden="True">o</div><list class="infoline">p</list>
<item class="Infoline">q</item><div class="a" class="footer">r</div><svg:div class="footer">s</svg:div>
<div class=" ad ">t</div><div class="ad">u</div><span id="Comments">v</span><div id="Comments">w</div>
<div class="Comment">x</div><div id="respond-1">y</div></body></html>""",
    '<html><body><div class="articleBody">z2</div><div id="xarticleBody">z1</div></body></html>',
    '<html><body><p class="FullTexts">no</p><section class="xFULLTEXT">z3</section></body></html>',
    '<html><body><div class="Main-content">z4</div><main id="content">z5</main></body></html>',
]


def _pages(sample_dir) -> list[str]:
    pages = list(SYNTHETIC)
    for path in sorted(sample_dir.glob("*.warc.gz")):
        for record in iter_records(str(path)):
            if isinstance(record, WarcRecord) and record.payload_type == "text/html":
                pages.append(decode_html(record.payload(1 << 24)[0], record.http_content_type).text)
    benchmarks = SHARED / "html"
    for pattern in ("scrapinghub-aeb/html/*.html.gz", "readability/*/source.html", "cleanportaleval/input/*"):
        for path in sorted(benchmarks.glob(pattern))[::4]:  # every fourth page keeps the test short
            data = path.read_bytes()
            pages.append((gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace"))
    return pages


@pytest.fixture
def unpatched():
    was = speedups.installed()
    speedups.uninstall()
    yield
    if was:
        speedups.install()


def _extract(html: str):
    try:
        return trafilatura.extract(html, **OPTIONS)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


def test_extract_output_is_unchanged(sample_dir, unpatched):
    pages = _pages(sample_dir)
    mismatches = []
    for html in pages:
        speedups.uninstall()
        LRU_TEST.clear()
        expected = _extract(html)
        speedups.install()
        LRU_TEST.clear()
        if _extract(html) != expected:
            mismatches.append(html[:200])
    assert not mismatches and len(pages) > 20


def _trees(html: str) -> list:
    tree = utils.load_html(html)
    if tree is None:
        return []
    options = Extractor(precision=True, tables=True, comments=False)
    cleaned = htmlprocessing.tree_cleaning(deepcopy(tree), options)
    return [tree, htmlprocessing.convert_tags(cleaned, options)]


def test_each_selector_selects_what_its_xpath_selects(sample_dir):
    selectors = []
    for name in DISCARD_LISTS:
        for expression in getattr(xpaths, name):
            fast = speedups._compile(expression.path)
            if fast is not None:
                selectors.append((expression, fast))
    for expression in xpaths.BODY_XPATH:  # first-match mode: compare with the XPath's first result
        fast = speedups._compile(expression.path, first=True)
        if fast is not None:
            selectors.append((lambda tree, x=expression: x(tree)[:1], fast))
    assert len(selectors) > 10
    selected = 0
    for html in _pages(sample_dir):
        for tree in _trees(html):
            for expression, fast in selectors:
                expected = expression(tree)
                got = fast(tree)
                selected += len(expected)
                assert len(got) == len(expected) and all(a is b for a, b in zip(got, expected))
    assert selected > (100 if (SHARED / "html").exists() else 30)  # the benchmark pages select more (48 without)


def test_backup_restore_path(sample_dir):
    """Force the rarely taken branch (pruning removed too much, the backup is returned) on every call."""
    forced = types.FunctionType(
        speedups.prune_unwanted_nodes.__code__,
        {**speedups.prune_unwanted_nodes.__globals__, "len": lambda x, _len=len: 0 if isinstance(x, str) else _len(x)},
    )
    checked = 0
    for html in _pages(sample_dir)[:40]:
        for tree in _trees(html)[1:]:
            before = tostring(tree, encoding=str, with_tail=True)
            restored = forced(tree, xpaths.OVERALL_DISCARD_XPATH, with_backup=True)
            assert tostring(tree, encoding=str, with_tail=True) == before  # the undo log put everything back
            assert tostring(restored, encoding=str, with_tail=True) == before and restored is not tree
            checked += 1
    assert checked > 10
