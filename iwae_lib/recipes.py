"""Named training recipes: the paper's, the paper's scaled to a budget, and a faster one.

A recipe fixes how a model is optimised (schedule, learning rate, batch size, Adam, weight
averaging, epochs), never what is optimised: the model, the objective, k and the data stay
the caller's. ``python -m iwae_lib train --recipe NAME`` starts from a recipe's values;
flags given explicitly win over them.

``paper``   Burda et al. (2015), Section 5: Adam (beta1 0.9, beta2 0.999, epsilon 1e-4),
            batch 20, 3280 epochs in 8 stages of 3^i epochs at 1e-3 * 10^(-i/7).
``scaled``  The same 8 stages with lengths proportional to 3^i, summing to 328 epochs
            (a tenth of the paper's), the baseline for a tenth of the budget.
``fast``    328 epochs: a linear warm-up over the first epoch to the paper's 1e-3, a
            linear decay to zero (iwae_lib.schedules.rate_at; Defazio et al., 2023), and
            an exponential moving average of the weights (decay 0.999; Polyak and Juditsky,
            1992), which is what is evaluated and kept; everything else as the paper's.
            Chosen on the k=5000 log-likelihood of 10000 validation images carved from the
            training set, never the test set: the study and its numbers are in the book's
            appendix (notebooks/10_reaching_faster; iwae_lib.chapters.catalog.FASTER_STUDY).
"""

from __future__ import annotations

from iwae_lib.config import TrainConfig

RECIPES = {
    "paper": {"schedule": "paper", "epochs": None, "learning_rate": 1e-3, "batch_size": 20,
              "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-4, "warmup_epochs": 0.0, "ema_decay": 0.0},
    "scaled": {"schedule": "scaled", "epochs": 328, "learning_rate": 1e-3, "batch_size": 20,
               "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-4, "warmup_epochs": 0.0, "ema_decay": 0.0},
    "fast": {"schedule": "linear_decay", "epochs": 328, "learning_rate": 1e-3, "batch_size": 20,
             "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-4, "warmup_epochs": 1.0, "ema_decay": 0.999},
}


def recipe_options(name: str) -> dict:
    """The TrainConfig options a recipe sets (a copy). Raises ValueError for an unknown name."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return dict(RECIPES[name])


def recipe_config(name: str, **options) -> TrainConfig:
    """A TrainConfig from a recipe, with ``options`` (model, objective, k, data, ...) on top."""
    return TrainConfig(**{**recipe_options(name), **options})


def matching_recipe(config: TrainConfig) -> str | None:
    """The name of the recipe whose options a config has, or None (for labels and tables)."""
    for name, options in RECIPES.items():
        if all(getattr(config, key) == value for key, value in options.items()):
            return name
    return None
