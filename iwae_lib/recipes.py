"""Named training recipes: the paper's, the paper's scaled to a budget, and a faster one.

A recipe fixes how a model is optimised (schedule, learning rate, batch size, Adam, weight
averaging, epochs), never what is optimised: the model, the objective, k and the data stay
the caller's. ``python -m iwae_lib train --recipe NAME`` starts from a recipe's values;
flags given explicitly win over them.

``paper``   Burda et al. (2015), Section 5: Adam (beta1 0.9, beta2 0.999, epsilon 1e-4),
            batch 20, 3280 epochs in 8 stages of 3^i epochs at 1e-3 * 10^(-i/7).
``scaled``  The same 8 stages with lengths proportional to 3^i, summing to 328 epochs
            (a tenth of the paper's), the baseline for a tenth of the budget.
``fast``    328 epochs, chosen among the candidates of the study in the book's appendix
            (notebooks/10_reaching_faster; runs results/study_k5_e30_*, listed in
            iwae_lib.chapters.catalog.FASTER_STUDY) by the k=5000 log-likelihood of 10000
            validation images carved from the training set, never the test set:
            - a linear warm-up over the first epoch, then a linear decay to zero
              (iwae_lib.schedules.rate_at): the paper's stages spend two thirds of any
              budget at their smallest rate, a tenth of the first; this spends the budget
              near the peak and anneals once (Defazio et al., 2023, on linear decay);
            - peak learning rate 1e-3, the paper's first rate: a peak of 3e-3 trained
              worse in the study and switched off more latent units;
            - an exponential moving average of the weights (decay 0.999, about the last
              thousand steps; Polyak and Juditsky, 1992), which is what is evaluated and
              kept. In the study it raised the held-out bound while the rate was high
              (by 3.2 nats at epoch 10, 1.4 at epoch 20) and changed nothing at the end of
              the decay to zero (the same final validation log-likelihood within 0.001
              nats, run study_k5_e30_linear_1e-3); it is kept because it costs nothing and
              makes every intermediate evaluation of a run better;
            - everything else as the paper (batch 20, Adam's betas and epsilon).
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
