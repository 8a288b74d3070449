"""Recipes: what happens to the records of one input file. `loop` is the record loop they share; `fineweb` is
the HTML recipe, `finepdfs` the PDF one. `recipe_for(config)` gives the configured recipe, built once per config
in each Python worker (models, blocklists and tokenizer rules load once)."""

from __future__ import annotations

import json
from functools import cache

from corpus.config import Config, config_from_dict
from corpus.recipes.finepdfs import FinePdfsRecipe
from corpus.recipes.fineweb import FineWebRecipe
from corpus.recipes.loop import STEPS, Recipe

#: `recipe:` in the config -> the class that runs it (corpus.config.RECIPES lists the same names).
RECIPES: dict[str, type[Recipe]] = {"fineweb": FineWebRecipe, "finepdfs": FinePdfsRecipe}


@cache
def _recipe_for(config_json: str) -> Recipe:
    config = config_from_dict(json.loads(config_json))
    return RECIPES[config.recipe](config)


def recipe_for(config: Config) -> Recipe:
    """The config's recipe, one per config per Python worker."""
    return _recipe_for(json.dumps(config.to_dict(), sort_keys=True))


__all__ = ["RECIPES", "STEPS", "FinePdfsRecipe", "FineWebRecipe", "Recipe", "recipe_for"]
