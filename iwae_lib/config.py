"""Training configuration: one flat, JSON-friendly dataclass, validated before any work."""

from __future__ import annotations

import dataclasses

from iwae_lib import estimators, objectives, schedules
from iwae_lib.models import ModelConfig, paper_model

DATASETS = ("mnist", "binarized_mnist", "omniglot")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (its results depend on nothing else).

    The defaults are the paper's: 1 stochastic layer, IWAE with k=5, batch 20, Adam
    (0.9, 0.999, 1e-4), the 8-stage schedule, here scaled to ``epochs``.
    """

    dataset: str = "mnist"
    n_stochastic: int = 1
    latent_sizes: tuple | None = None  # None: the paper's architecture for n_stochastic
    hidden_sizes: tuple | None = None
    objective: str = "iwae"
    k: int = 5
    estimator: str = "standard"
    miwae_groups: int = 1
    ciwae_beta: float = 0.5
    batch_size: int = 20
    schedule: str = "scaled"
    epochs: int | None = 328
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-4
    seed: int = 0
    train_size: int | None = None  # None: the whole training set (a smaller number: smoke runs)
    validation_size: int = 0
    patience: int | None = None  # early stopping, in evaluations without improvement
    eval_every: int = 10  # epochs between bound evaluations on held-out data (0: never)
    eval_size: int = 2000  # held-out images used for those evaluations
    final_k: int = 5000  # samples for the final log-likelihood estimate
    final_test_size: int | None = None  # None: the whole test set
    final_train_size: int = 2000  # training images for the train log-likelihood (overfitting gap)
    steps_per_call: int = 100
    checkpoint_seconds: float = 300.0

    def __post_init__(self):
        for name in ("latent_sizes", "hidden_sizes"):
            value = getattr(self, name)
            if value is not None:
                fixed = tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in value)
                object.__setattr__(self, name, fixed)
        self.validate()

    def validate(self):
        """Raise ValueError with an actionable message for an impossible configuration."""
        def need(condition, message):
            if not condition:
                raise ValueError(message)

        need(self.dataset in DATASETS, f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        need(self.objective in objectives.OBJECTIVES,
             f"unknown objective {self.objective!r}; choose one of {', '.join(objectives.OBJECTIVES)}")
        estimators.check_estimator(self.estimator, self.objective)
        need(isinstance(self.k, int) and self.k >= 1, f"k (samples per image) must be an integer >= 1, got {self.k}")
        need(self.miwae_groups >= 1 and self.k % self.miwae_groups == 0,
             f"miwae_groups must divide k: k={self.k}, miwae_groups={self.miwae_groups}")
        need(0.0 <= self.ciwae_beta <= 1.0, f"ciwae_beta must lie in [0, 1], got {self.ciwae_beta}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.epsilon > 0,
             "Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0")
        schedules.stages(self.schedule, self.epochs, self.learning_rate)  # raises on a bad schedule
        need(self.train_size is None or self.train_size >= self.batch_size,
             f"train_size ({self.train_size}) must hold at least one batch of {self.batch_size}")
        need(self.validation_size >= 0, f"validation_size must be >= 0, got {self.validation_size}")
        need(self.patience is None or (self.patience >= 1 and self.validation_size > 0 and self.eval_every > 0),
             "early stopping (patience) needs a validation set (validation_size > 0) and eval_every > 0")
        need(self.eval_every >= 0 and self.eval_size >= 1, "eval_every must be >= 0 and eval_size >= 1")
        need(self.final_k >= 1, f"final_k must be >= 1, got {self.final_k}")
        need(self.steps_per_call >= 1, "steps_per_call must be >= 1")
        need(self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}")
        self.model_config()  # raises on bad layer sizes

    def model_config(self) -> ModelConfig:
        if self.latent_sizes is None and self.hidden_sizes is None:
            return paper_model(self.n_stochastic)
        base = paper_model(self.n_stochastic) if self.n_stochastic in (1, 2) else ModelConfig()
        latent = self.latent_sizes or base.latent_sizes
        hidden = self.hidden_sizes or base.hidden_sizes
        return ModelConfig(tuple(latent), tuple(hidden))

    def bound_options(self) -> dict:
        return {"miwae_groups": self.miwae_groups, "ciwae_beta": self.ciwae_beta}

    def total_epochs(self) -> int:
        return sum(n for n, _ in schedules.stages(self.schedule, self.epochs, self.learning_rate))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for name in ("latent_sizes", "hidden_sizes"):
            if d[name] is not None:
                d[name] = [list(v) if isinstance(v, tuple) else v for v in d[name]]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
        return cls(**d)


# Options that cannot change a run's results, so a run may be resumed with other values.
RESULT_NEUTRAL_OPTIONS = frozenset({"checkpoint_seconds"})


def config_differences(old: dict, new: dict) -> list:
    """Sorted names of the TrainConfig options on which two config dicts disagree.

    An option missing from ``old`` (added to TrainConfig after that run started) counts as
    its default; options in RESULT_NEUTRAL_OPTIONS are ignored.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    old, new = {**defaults, **old}, {**defaults, **new}
    return sorted(k for k in (set(old) | set(new)) - RESULT_NEUTRAL_OPTIONS if old.get(k) != new.get(k))
