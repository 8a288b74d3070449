"""Exact, faster XPath filtering for trafilatura 1.11.0 (a patch, applied once per process by `install()`).

trafilatura is the largest cost of the HTML recipe, and about half of it is evaluating long XPath
disjunctions in `prune_unwanted_nodes`. This module evaluates the same expressions in one pass over the
elements, with results memoized per attribute value, and leaves trafilatura's output byte for byte unchanged:
tests/test_trafilatura_speedups.py compares each compiled selector with its XPath, and `extract()` with and
without the patch, on the sample crawl and on the shared HTML benchmarks (1168 pages when it was written: 0
differences). `install()` refuses any other trafilatura version.

What is patched
    * ``prune_unwanted_nodes`` (htmlprocessing, imported by core, external, main_extractor, metadata).
    * ``main_extractor.BODY_XPATH``, used only by ``_extract()`` as ``next(s for s in expr(tree) if s is not
      None)``, i.e. only the first match in document order matters; those expressions return it directly.

Why it is faster
    The discard XPaths of ``trafilatura/xpaths.py`` are long disjunctions such as
    ``.//*[(self::div or self::p)][contains(@class, "x") or starts-with(@id, "y") or ...]`` which libxml2
    evaluates term by term for every element (node-set for ``@class``, string copies, ...): ~20 us per element
    for OVERALL_DISCARD_XPATH.  Here each one becomes: lxml ``iterdescendants(*tags)`` (tag test in C) plus,
    per attribute, one precompiled regex whose result is memoised per attribute value.
    ``with_backup=True`` no longer deep-copies the tree up front (the backup is returned in ~5% of calls).

Why it is exact
    * Predicates are not hand-copied: ``_compile`` parses the ``.path`` of the installed XPath objects and
      accepts only the grammar below; anything else keeps its XPath (``.//header``, ``.//cite|.//quote``,
      ``(.//article)[1]``, unions, positional or namespaced tests, ...).
        ( .//* [(self::T or self::T ...)]? [TERM or TERM ...] )  and, BODY_XPATH only, a trailing [1]
        TERM := contains(A, 'lit') | starts-with(A, 'lit') | @n='lit' | @n ;  A := @n | translate(@n, 'f', 't')
    * XPath 1.0 semantics: ``.//*`` = descendant elements of the context node (not itself, no comments/PIs)
      in document order = ``iterdescendants("*")``; ``self::T`` = element named T in no namespace =
      ``iterdescendants("T")`` (the tag matching trafilatura itself relies on).  A missing attribute is false
      for every accepted term (its string value "" never contains / starts with a non-empty literal; an empty
      node-set is never equal to anything; expressions with an empty literal are not accepted).
      contains -> ``re.escape(lit)``, starts-with -> ``\\A`` + lit, ``=`` -> ``\\A`` lit ``\\Z``.
      ``translate(@n, f, t)`` without deleted chars is a char->char map T, and "T(s) contains lit" holds
      iff s contains, at some position, chars whose images spell lit: each char c of lit becomes the class
      of its pre-images (c itself unless c is in f); a char without pre-image makes the term always false
      (``contains(translate(@class, "B", "b"), "articleBody")``), so the term is dropped.  Tests on code
      points are equivalent to libxml2's tests on well-formed UTF-8.
    * ``(E)[1]`` and ``.//*[P][1]`` (first matching child of each parent) both have as first element, in
      document order, the first descendant matching P, which is what ``_extract`` takes.
    * Prune: all matches of an expression are collected before removing anything, expressions of a list
      are applied in order, and the removal / tail-preserving loop is trafilatura's code, unchanged.
    * with_backup: removals and tail edits are logged; if the backup is needed they are undone in reverse
      order (``insert`` at the old index moves the tail back with the node, as ``remove`` took it) and a
      deepcopy of the restored tree is returned, like the original's up-front deepcopy (a detached copy:
      callers then work on it, e.g. ``//p//text()`` sees only the copy).
    Verified on 1168 corpus pages: identical ``extract()`` output (see compare.py, test_selectors.py,
    test_undo.py in the same directory).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import trafilatura
from trafilatura import core, external, htmlprocessing, main_extractor, metadata, xpaths

_LIT = r""""[^"]*"|'[^']*\'"""
_ATTR = rf"""@[\w-]+|translate\(\s*@[\w-]+\s*,\s*(?:{_LIT})\s*,\s*(?:{_LIT})\s*\)"""
_TERM = re.compile(
    rf"""\s*(?:(?P<fn>contains|starts-with)\(\s*(?P<a1>{_ATTR})\s*,\s*(?P<l1>{_LIT})\s*\)"""
    rf"""|(?P<a2>@[\w-]+)\s*=\s*(?P<l2>{_LIT})|(?P<a3>@[\w-]+))\s*(?:or\b|\Z)"""
)
_TRANSLATE = re.compile(rf"""translate\(\s*@(?P<n>[\w-]+)\s*,\s*(?P<f>{_LIT})\s*,\s*(?P<t>{_LIT})\s*\)""")
_EXPR = re.compile(
    r"\s*(?P<open>\()?\s*\.//\*(?:\[\((?P<tags>\s*self::[\w-]+(?:\s+or\s+self::[\w-]+)*\s*)\)\])?"
    r"\[(?P<pred>[^\[\]]*)\]\s*(?(open)\)\s*)(?P<first>\[1\])?\s*",
    re.S,
)


def _translate_map(frm: str, to: str) -> dict[str, str] | None:
    """XPath translate(): first occurrence of a char in `frm` wins; None if it deletes chars."""
    if len(to) < len(frm):
        return None
    table = {}
    for i, char in enumerate(frm):
        table.setdefault(char, to[i])
    return table


def _literal(lit: str, table: dict[str, str] | None) -> str | None:
    """Regex matching the strings s such that translate(s, table) == lit (table maps char -> char)."""
    if table is None:
        return re.escape(lit)
    parts = []
    for char in lit:
        sources = {x for x, y in table.items() if y == char}
        if char not in table:
            sources.add(char)
        if not sources:  # no char translates to `char`: cannot match
            return None
        parts.append(
            "[" + "".join(re.escape(x) for x in sorted(sources)) + "]" if len(sources) > 1 else re.escape(sources.pop())
        )
    return "".join(parts)


def _compile(path: str, first: bool = False) -> Callable[[Any], list] | None:
    """Return a function tree -> list of matching elements, or None if `path` is not understood.
    first=True is for the BODY_XPATH expressions ending in [1]: return only the first match."""
    match = _EXPR.fullmatch(path)
    if not match or bool(match["first"]) != first:
        return None
    tags = []
    if match["tags"]:
        tags = [t.split("::")[1] for t in match["tags"].split() if t != "or"]
    pred, pos, regexes = match["pred"], 0, {}
    while pos < len(pred):
        term = _TERM.match(pred, pos)
        if not term or term.end() == pos:
            return None
        pos = term.end()
        if term["a3"]:  # @n : the attribute exists, whatever its value
            regexes.setdefault(term["a3"][1:], []).append(r"(?s:.)*")
            continue
        attr, lit = (term["a1"], term["l1"][1:-1]) if term["fn"] else (term["a2"], term["l2"][1:-1])
        if term["fn"] and lit == "":  # true even without the attribute: not handled, keep XPath
            return None
        table = None
        if attr.startswith("translate"):
            tr = _TRANSLATE.fullmatch(attr)
            attr, table = "@" + tr["n"], _translate_map(tr["f"][1:-1], tr["t"][1:-1])
            if table is None:
                return None
        regex = _literal(lit, table)
        if regex is None:  # e.g. contains(translate(@class, "B", "b"), "articleBody")
            continue  # can never be true: drop the term
        if term["fn"] != "contains":
            regex = r"\A" + regex + ("" if term["fn"] == "starts-with" else r"\Z")  # starts-with / @n="lit"
        regexes.setdefault(attr[1:], []).append(regex)
    # per attribute: (name, regex search, memo of results per value -- class/id values repeat a lot)
    checks = tuple((attr, re.compile("|".join(r)).search, {}) for attr, r in regexes.items())
    tags = tuple(tags) or ("*",)  # "*": every element (no comments, PIs, entities)

    def select(tree: Any) -> list:
        found = []
        for elem in tree.iterdescendants(*tags):
            get = elem.get
            for attr, search, memo in checks:
                value = get(attr)
                if value is not None:
                    hit = memo.get(value)
                    if hit is None:
                        if len(memo) > 20000:  # bound the memory
                            memo.clear()
                        hit = memo[value] = search(value) is not None
                    if hit:
                        if first:
                            return [elem]
                        found.append(elem)
                        break
        return found

    return select


VERIFIED_VERSION = "1.11.0"
_INSTALLED = False
_FAST: dict[
    int, Callable[[Any], list]
] = {}  # id(XPath object) -> selector; the XPath objects are kept alive by xpaths.py
_ORIGINAL = htmlprocessing.prune_unwanted_nodes


def _select(expression: Any, tree: Any) -> list:
    fast = _FAST.get(id(expression))
    return fast(tree) if fast is not None else expression(tree)


def prune_unwanted_nodes(tree: Any, nodelist: list, with_backup: bool = False) -> Any:
    """Prune the HTML tree by removing unwanted sections."""
    if with_backup:
        old_len = len(tree.text_content())
        undo = []
    for expression in nodelist:
        for subtree in _select(expression, tree):
            # preserve tail text from deletion
            if subtree.tail is not None:
                prev = subtree.getprevious()
                if prev is None:
                    prev = subtree.getparent()
                if prev is not None:
                    if with_backup:
                        undo.append((prev, prev.tail))
                    # There is a previous node, append text to its tail
                    prev.tail = (prev.tail or "") + " " + subtree.tail
            # remove the node
            parent = subtree.getparent()
            if with_backup:
                undo.append((parent, parent.index(subtree), subtree))
            parent.remove(subtree)
    if with_backup:
        new_len = len(tree.text_content())
        if new_len > old_len / 7:
            return tree
        for step in reversed(undo):
            if len(step) == 3:  # re-insert a removed node (its tail moves with it)
                step[0].insert(step[1], step[2])
            else:  # restore a tail that received removed text
                step[0].tail = step[1]
        return deepcopy(tree)
    return tree


def install() -> None:
    """Compile the discard expressions and patch every module that imported the function."""
    global _INSTALLED
    if _INSTALLED:
        return
    if trafilatura.__version__ != VERIFIED_VERSION:
        raise RuntimeError(f"the XPath speedups are verified for trafilatura {VERIFIED_VERSION} only")
    lists = (
        "OVERALL_DISCARD_XPATH",
        "PAYWALL_DISCARD_XPATH",
        "TEASER_DISCARD_XPATH",
        "PRECISION_DISCARD_XPATH",
        "DISCARD_IMAGE_ELEMENTS",
        "REMOVE_COMMENTS_XPATH",
        "COMMENTS_DISCARD_XPATH",
        "AUTHOR_DISCARD_XPATHS",
    )
    for name in lists:
        for expression in getattr(xpaths, name):
            fast = _compile(expression.path)
            if fast is not None:
                _FAST[id(expression)] = fast
    for module in (htmlprocessing, main_extractor, external, core, metadata):
        module.prune_unwanted_nodes = prune_unwanted_nodes
    # _extract() only uses next(s for s in expr(tree) if s is not None): the first match in document order
    main_extractor.BODY_XPATH = [_compile(x.path, first=True) or x for x in xpaths.BODY_XPATH]
    _INSTALLED = True


def uninstall() -> None:
    global _INSTALLED
    main_extractor.BODY_XPATH = xpaths.BODY_XPATH
    for module in (htmlprocessing, main_extractor, external, core, metadata):
        module.prune_unwanted_nodes = _ORIGINAL
    _INSTALLED = False


def installed() -> bool:
    return _INSTALLED
