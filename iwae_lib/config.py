"""Training configuration: one flat, JSON-friendly dataclass, validated before any work,
and the command-line words that rebuild it (:func:`config_flags`; parsed by ``iwae_lib.cli.flags``)."""

from __future__ import annotations

import dataclasses

from iwae_lib import estimators, models, schedules
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
    likelihood: str = "bernoulli"  # "discretized_logistic": 8-bit gray levels of mnist (iwae_lib.quantized)
    objective: str = "iwae"
    k: int = 5
    estimator: str = "standard"
    miwae_groups: int = 1
    ciwae_beta: float = 0.5
    piwae_encoder: str = "miwae"  # objective "piwae": the inference network's bound (miwae, ciwae or vae)
    batch_size: int = 20
    schedule: str = "scaled"
    epochs: int | None = 328
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-4
    adam_v_init: float = 0.0  # Adam's second moments start here (0: Kingma & Ba)
    warmup_epochs: float = 0.0  # linear_decay schedule: epochs of linear warm-up to the peak rate
    ema_decay: float = 0.0  # > 0: evaluate and keep an exponential moving average of the parameters
    seed: int = 0
    train_size: int | None = None  # None: the whole training set (a smaller number: smoke runs)
    validation_size: int = 0
    patience: int | None = None  # early stopping, in evaluations without improvement
    eval_every: int = 10  # epochs between bound evaluations on held-out data (0: never)
    eval_size: int = 2000  # held-out images used for those evaluations (test: spread over the file)
    eval_k: int | None = None  # samples per image in those evaluations (None: the training k)
    final_k: int = 5000  # samples for the final log-likelihood estimate
    final_test_size: int | None = None  # None: the whole test set
    final_train_size: int = 2000  # training images for the train log-likelihood (overfitting gap)
    steps_per_call: int = 100
    precision: str = "float32"  # "bfloat16": bf16 matrix products, fp32 parameters, Adam state and bounds
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
        need(self.objective in estimators.TRAINING_OBJECTIVES,
             f"unknown objective {self.objective!r}; choose one of {', '.join(estimators.TRAINING_OBJECTIVES)}")
        if self.objective == estimators.PIWAE:
            estimators.check_piwae(self.piwae_encoder, self.estimator)
            need(self.piwae_encoder != "miwae" or self.miwae_groups > 1,
                 "PIWAE with piwae_encoder 'miwae' needs miwae_groups > 1 (with one group the encoder's "
                 "MIWAE bound is the IWAE bound itself: use objective 'iwae')")
        else:
            estimators.check_estimator(self.estimator, self.objective)
            need(self.piwae_encoder == "miwae",
                 f"piwae_encoder applies to objective 'piwae' only, not {self.objective!r}")
        need(self.likelihood in models.LIKELIHOODS,
             f"unknown likelihood {self.likelihood!r}; choose one of {', '.join(models.LIKELIHOODS)}")
        need(self.likelihood != "discretized_logistic" or self.dataset == "mnist",
             f"the discretized_logistic (8-bit) likelihood models the gray levels of the 'mnist' data set "
             f"(its raw intensities); {self.dataset!r} has none: use likelihood 'bernoulli' there")
        need(isinstance(self.k, int) and self.k >= 1, f"k (samples per image) must be an integer >= 1, got {self.k}")
        need(self.miwae_groups >= 1 and self.k % self.miwae_groups == 0,
             f"miwae_groups must divide k: k={self.k}, miwae_groups={self.miwae_groups}")
        need(0.0 <= self.ciwae_beta <= 1.0, f"ciwae_beta must lie in [0, 1], got {self.ciwae_beta}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}")
        need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.epsilon > 0,
             "Adam needs 0 <= beta1, beta2 < 1 and epsilon > 0")
        need(self.adam_v_init >= 0, f"adam_v_init (Adam's initial second moment) must be >= 0, got {self.adam_v_init}")
        schedules.stages(self.schedule, self.epochs, self.learning_rate)  # raises on a bad schedule
        need(self.warmup_epochs == 0 or (self.schedule == "linear_decay" and 0 < self.warmup_epochs < self.epochs),
             f"warmup_epochs ({self.warmup_epochs}) needs --schedule linear_decay and must be below epochs")
        need(0.0 <= self.ema_decay < 1.0,
             f"ema_decay must lie in [0, 1) (0 turns the moving average off), got {self.ema_decay}")
        need(self.train_size is None or self.train_size >= self.batch_size,
             f"train_size ({self.train_size}) must hold at least one batch of {self.batch_size}")
        need(self.validation_size >= 0, f"validation_size must be >= 0, got {self.validation_size}")
        need(self.patience is None or (self.patience >= 1 and self.validation_size > 0 and self.eval_every > 0),
             "early stopping (patience) needs a validation set (validation_size > 0) and eval_every > 0")
        need(self.eval_every >= 0 and self.eval_size >= 1, "eval_every must be >= 0 and eval_size >= 1")
        need(self.final_k >= 1, f"final_k must be >= 1, got {self.final_k}")
        need(self.eval_k is None or self.eval_k >= 1, f"eval_k must be >= 1 (or none: the training k), got {self.eval_k}")
        need(self.steps_per_call >= 1, "steps_per_call must be >= 1")
        models.check_precision(self.precision)
        need(self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}")
        self.model_config()  # raises on bad layer sizes

    def model_config(self) -> ModelConfig:
        if self.latent_sizes is None and self.hidden_sizes is None:
            return dataclasses.replace(paper_model(self.n_stochastic), likelihood=self.likelihood)
        base = paper_model(self.n_stochastic) if self.n_stochastic in (1, 2) else ModelConfig()
        latent = self.latent_sizes or base.latent_sizes
        hidden = self.hidden_sizes or base.hidden_sizes
        return ModelConfig(tuple(latent), tuple(hidden), likelihood=self.likelihood)

    def bound_options(self) -> dict:
        """Options of the objective, passed on to :func:`iwae_lib.estimators.loss_and_gradients`."""
        return {"miwae_groups": self.miwae_groups, "ciwae_beta": self.ciwae_beta, "piwae_encoder": self.piwae_encoder}

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


def flag_name(field_name: str) -> str:
    """``learning_rate`` -> ``--learning-rate``."""
    return "--" + field_name.replace("_", "-")


def nested_sizes(field_name: str) -> bool:
    """Whether a size-list field holds one list per stochastic layer (as ModelConfig's does)."""
    value = {f.name: f.default for f in dataclasses.fields(ModelConfig)}.get(field_name)
    return isinstance(value, tuple) and bool(value) and isinstance(value[0], tuple)


def _flag_values(value, nested: bool) -> list:
    """The command-line words for one option value (the inverse of ``iwae_lib.cli.flags``' parsers)."""
    if value is None:
        return ["none"]
    if isinstance(value, (tuple, list)):
        return [",".join(str(v) for v in item) if nested else str(item) for item in value]
    return [repr(value) if isinstance(value, float) else str(value)]


def config_flags(config: TrainConfig) -> list:
    """The ``train`` flags that rebuild ``config``: one per option that differs from the default.

    Returns a list of words, e.g. ``["--k", "50", "--schedule", "scaled", "--epochs", "288"]``,
    in the dataclass's field order; ``build_train_config`` of these flags equals ``config``.
    """
    words = []
    for field in dataclasses.fields(TrainConfig):
        value = getattr(config, field.name)
        if value == field.default:
            continue
        if isinstance(value, bool):
            words.append(flag_name(field.name) if value else "--no-" + field.name.replace("_", "-"))
        else:
            words += [flag_name(field.name), *_flag_values(value, nested_sizes(field.name))]
    return words
