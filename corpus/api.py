"""The Python API, for notebooks and scripts: build a recipe, run it over a file or over documents in this process
(no Spark), or run the whole thing on Spark.

    from corpus import api

    config = api.config("conf/fineweb.yaml", "filters.c4.enabled=false", output="out/run1")
    recipe = api.recipe(config)
    for doc in recipe.process_file("crawl/CC-MAIN-2024-10-00000.warc.gz"):   # extraction + filters, no Spark
        print(doc.status, doc.removed_by, doc.reason, doc.url)
    docs = api.filter_documents(config, [{"id": "1", "text": "Some text extracted elsewhere ..."}])
    run = api.run(config, input="crawl/")          # every stage on Spark (local mode, or spark=your session)

A filter of your own is a `corpus.filters.Filter` subclass named in the config by import path:
`filters.short.class=my_filters:ShortDocuments` (its constructor arguments are `filters.short.<name>`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from corpus.audit.manifest import Run
from corpus.config import Config, config_from_dict, load_config
from corpus.document import Document
from corpus.recipes import RECIPES, Recipe

__all__ = ["Config", "Document", "Recipe", "config", "filter_documents", "recipe", "run"]


def config(path: str | None = None, *settings: str, **values: Any) -> Config:
    """A validated config: the YAML file (or the FineWeb defaults), then `settings` ("key=value", dotted keys)
    and `values` (top-level keys, e.g. input=..., output=...)."""
    pairs = [f"{key}={_setting(value)}" for key, value in values.items()]
    return load_config(path, [*settings, *pairs])


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def recipe(config: Config) -> Recipe:
    """The config's recipe, ready to process files (`process_file(path)`) or documents (`process_text(doc)`)."""
    return RECIPES[config.recipe](config)


def filter_documents(
    config_or_recipe: Config | Recipe, documents: Iterable[Document | dict[str, Any]]
) -> Iterator[Document]:
    """Documents whose text was extracted elsewhere (dicts with `id`, `text` and optionally `url`, or
    `Document`s) through the recipe's filters: each comes back kept (`status == "kept"`) or removed with
    `removed_by` and `reason`, its filters' quantities in `signals`."""
    chosen = config_or_recipe if isinstance(config_or_recipe, Recipe) else recipe(config_or_recipe)
    for item in documents:
        doc = (
            item
            if isinstance(item, Document)
            else Document(id=str(item["id"]), text=item.get("text"), url=item.get("url"))
        )
        yield chosen.process_text(doc)


def run(config: Config, spark: Any = None, **values: Any) -> Run:
    """Run the config's stages on Spark (a local session unless `spark` is given), with top-level `values` set
    first (e.g. input=[...], output=...); returns the run record (what manifest.json holds)."""
    from corpus.jobs.run import run_stages

    if values:
        values = {k: [v] if k == "input" and isinstance(v, str) else v for k, v in values.items()}
        config = config_from_dict({**config.to_dict(), **values})
    return run_stages(config, spark)
