"""Every run the book shows in the full profile, declared once: name -> configuration.

The chapters take their full-profile configurations from here (:func:`config`), the
command ``python -m iwae_lib runs`` lists them with their status and the command that
records each, and the book build refuses to start while one is missing. A run is

    kind "train"       one TrainConfig, recorded with ``python -m iwae_lib train``;
    kind "snapshots"   a chain of constant-rate segments of one TrainConfig, recorded in
                       ``results/<name>/epoch_NNNN/`` (see :mod:`iwae_lib.chapters.snapshots`).

The smoke profile shrinks these configurations in one place, :func:`smoke_version` (tiny
data, few epochs); it never changes what a name means in the full profile.

Where to add runs: a chapter's new run goes into the block of its chapter in
:func:`book_runs`; another set of Table 1 runs with another training recipe is one line,
``table1_runs(recipe_options, "_suffix")``, added to :func:`book_runs`.

The recipes: Table 1's twelve runs (chapters 1 and 6) use the ``fast`` recipe that the
appendix chose on validation data (names ending in ``_fast``). The paper's stages scaled to 288
epochs ("scaled-paper") train the baselines that the appendix (notebook 10) compares with (IWAE k=1, 5,
50 and VAE k=5, one layer: names without a suffix) and the runs of chapters 2, 3 and 5,
whose points (early stopping, binarization, estimators) are made within one recipe. The
long runs (:func:`long_runs`) add the paper's own recipe, a second study for IWAE k=50 and,
once that study's choice is made (:data:`MOONSHOT_CHOICE`), the one-layer Table 1 runs
again with the chosen recipe.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from iwae_lib import recipes
from iwae_lib.config import TrainConfig

# The recorded runs' budget: the paper's 8 stages scaled from 3280 to 288 epochs, about two
# hours for the one-layer k=5 IWAE on a 2-core CPU ("scaled-paper" below).
FULL_EPOCHS = 288
SCALED_PAPER = {"schedule": "scaled", "epochs": FULL_EPOCHS}
# How every long run is evaluated: k=5000 on all test images, the train log-likelihood on
# 2000 training images, held-out bounds on 2000 images every 10 epochs.
PAPER_EVALUATION = {"final_k": 5000, "final_test_size": None, "final_train_size": 2000, "eval_every": 10,
                    "eval_size": 2000}
# Chapter 4's snapshots (chapter 8 shares them): Adam at a constant rate, budgets doubling.
SNAPSHOT_EPOCHS = (1, 2, 4, 8, 16, 32, 64)
TABLE1_OBJECTIVES = ("vae", "iwae")
TABLE1_KS = (1, 5, 50)
TABLE1_RECIPE = "fast"          # the recipe of the Table 1 runs the chapters show (iwae_lib/recipes.py)
FASTER_SUFFIX = "_fast"         # ... and the suffix of their names


@dataclasses.dataclass(frozen=True)
class BookRun:
    """One run of the book.

    name: folder name under ``results/``.
    config: its TrainConfig (for snapshots: the chain's, whose epochs is the last budget).
    chapters: the chapters (numbers) that show it.
    kind: ``"train"`` or ``"snapshots"``.
    snapshot_epochs: for snapshots, the budgets after which a snapshot is kept.
    """

    name: str
    config: TrainConfig
    chapters: tuple
    kind: str = "train"
    snapshot_epochs: tuple = ()

    def __post_init__(self):
        if self.kind not in ("train", "snapshots"):
            raise ValueError(f"unknown kind of run {self.kind!r}: use 'train' or 'snapshots'")
        if self.kind == "snapshots" and (not self.snapshot_epochs or self.config.epochs != self.snapshot_epochs[-1]):
            raise ValueError(f"{self.name}: a snapshot chain needs snapshot_epochs ending at config.epochs")

    @property
    def total_epochs(self) -> int:
        return self.config.total_epochs()


def segment_name(epoch: int) -> str:
    """Folder name of a snapshot chain's segment after ``epoch`` epochs, e.g. ``epoch_0016``."""
    return f"epoch_{int(epoch):04d}"


def run_name(dataset: str, n_stochastic: int, objective: str, k: int) -> str:
    """The book's name of a Table 1 style run, e.g. ``mnist_2l_iwae_k50``."""
    return f"{dataset}_{n_stochastic}l_{objective}_k{k}"


def table1_runs(recipe_overrides: dict | None = None, suffix: str = "") -> dict:
    """Table 1 on MNIST (dynamic binarization): VAE and IWAE, 1 and 2 stochastic layers, k=1, 5, 50.

    Args:
        recipe_overrides: TrainConfig options of another training recipe (e.g.
            ``iwae_lib.recipes.recipe_options("fast")``); None: the scaled-paper schedule
            of 288 epochs, as recorded.
        suffix: appended to every name (``"_fast"``), so that both sets can be recorded.

    Returns:
        name -> TrainConfig, 12 entries, ordered 1 layer then 2, VAE then IWAE, k ascending.
    """
    options = {**SCALED_PAPER, **PAPER_EVALUATION, **(recipe_overrides or {})}
    return {run_name("mnist", layers, objective, k) + suffix:
            TrainConfig(dataset="mnist", n_stochastic=layers, objective=objective, k=k, **options)
            for layers in (1, 2) for objective in TABLE1_OBJECTIVES for k in TABLE1_KS}


def table1_name(n_stochastic: int, objective: str, k: int) -> str:
    """The name of the run that the book shows for a cell of Table 1 (MNIST, dynamic
    binarization), trained with :data:`TABLE1_RECIPE`; e.g. ``mnist_2l_iwae_k50_fast``."""
    return run_name("mnist", n_stochastic, objective, k) + FASTER_SUFFIX


def table1_paper_rows(n_stochastic: int) -> dict:
    """The paper's Table 1 rows (MNIST, ``n_stochastic`` layers) keyed by :func:`table1_name`:
    name -> {"test NLL", "active units"}, ready for ``plotting.results_table``."""
    import iwae_lib.chapters.paper as paper

    return {name + FASTER_SUFFIX: row for name, row in paper.table1_rows("mnist", n_stochastic).items()}


def table1_recipe_runs() -> dict:
    """name -> TrainConfig of the twelve Table 1 runs the book shows (:data:`TABLE1_RECIPE`)."""
    return table1_runs(recipes.recipe_options(TABLE1_RECIPE), FASTER_SUFFIX)


def snapshot_config(objective: str = "iwae", k: int = 5) -> TrainConfig:
    """The snapshot chain's configuration: the one-layer model on MNIST, Adam at 1e-3, 64 epochs,
    each snapshot evaluated with k=1000 on 1000 test and 1000 training images."""
    return TrainConfig(dataset="mnist", n_stochastic=1, objective=objective, k=k, schedule="constant",
                       epochs=SNAPSHOT_EPOCHS[-1], learning_rate=1e-3, eval_every=0, final_k=1000,
                       final_test_size=1000, final_train_size=1000)


def snapshot_run_name(objective: str = "iwae", k: int = 5) -> str:
    return f"mnist_1l_{objective}_k{k}_snapshots"


def beyond_the_paper_configs(k_total: int = 64, groups: int = 8, ciwae_beta: float = 0.5, epochs: int = 50) -> dict:
    """Chapter 8's bounds trained with k_total samples at a constant rate of 1e-3: label -> (name, TrainConfig).

    PIWAE trains the generative network on the IWAE bound and the inference network on
    MIWAE(groups, k_total / groups) (``objective="piwae"``, ``piwae_encoder="miwae"``).
    """
    common = dict(dataset="mnist", n_stochastic=1, k=k_total, schedule="constant", epochs=epochs, learning_rate=1e-3,
                  eval_every=0, final_k=5000, final_test_size=None, final_train_size=2000)
    return {
        "IWAE": (f"mnist_1l_iwae_k{k_total}_constant", TrainConfig(**common, objective="iwae")),
        f"MIWAE({groups}, {k_total // groups})": (f"mnist_1l_miwae_m{groups}_k{k_total}_constant",
                                                 TrainConfig(**common, objective="miwae", miwae_groups=groups)),
        f"CIWAE({ciwae_beta})": (f"mnist_1l_ciwae_b{ciwae_beta}_k{k_total}_constant",
                                 TrainConfig(**common, objective="ciwae", ciwae_beta=ciwae_beta)),
        f"PIWAE({groups}, {k_total // groups})": (f"mnist_1l_piwae_m{groups}_k{k_total}_constant",
                                                 TrainConfig(**common, objective="piwae", piwae_encoder="miwae",
                                                             miwae_groups=groups)),
    }


EIGHT_BIT_RUN = "mnist8bit_1l_iwae_k5"


def eight_bit_config() -> TrainConfig:
    """Chapter 8's 8-bit model: MNIST's gray levels under a discretised logistic
    (``likelihood="discretized_logistic"``), the one-layer architecture, IWAE with k=5,
    50 epochs at a constant rate of 1e-3, evaluated in nats and bits per pixel."""
    return TrainConfig(dataset="mnist", likelihood="discretized_logistic", latent_sizes=(50,),
                       hidden_sizes=((200, 200),), objective="iwae", k=5, schedule="constant", epochs=50,
                       learning_rate=1e-3, eval_every=0, final_k=5000, final_test_size=None, final_train_size=2000)


# The appendix (notebooks/10_reaching_faster, "a recipe for a tenth of the budget"). The study that chose the "fast" recipe: the
# one-layer IWAE with k=5 for 30 epochs on 50000 training images, scored on the other
# 10000 (validation) with k=5000; label -> (name, options on top of the study's base).
FASTER_STUDY_EPOCHS = 30
FASTER_STUDY = {
    "scaled paper stages, 1e-3": ("study_k5_e30_scaled", {"schedule": "scaled"}),
    "linear decay, peak 3e-3, average": ("study_k5_e30_linear_3e-3_ema",
                                         {"schedule": "linear_decay", "learning_rate": 3e-3, "warmup_epochs": 1.0,
                                          "ema_decay": 0.999}),
    "linear decay, peak 1e-3, average": ("study_k5_e30_linear_1e-3_ema",
                                         {"schedule": "linear_decay", "learning_rate": 1e-3, "warmup_epochs": 1.0,
                                          "ema_decay": 0.999}),
    "linear decay, peak 1e-3": ("study_k5_e30_linear_1e-3",
                                {"schedule": "linear_decay", "learning_rate": 1e-3, "warmup_epochs": 1.0}),
}
FASTER_STUDY_RUNS = {label: name for label, (name, _) in FASTER_STUDY.items()}
# The chosen recipe on the paper's full setting (60000 training images, k=5000 on the test
# set), for the three models the targets name and IWAE k=1, beside their scaled-paper baselines.
FASTER_MODELS = (("iwae", 50), ("iwae", 5), ("vae", 5), ("iwae", 1))


def faster_study_config(options: dict) -> TrainConfig:
    """A study run's configuration: IWAE k=5, one layer, 30 epochs, 10000 validation images."""
    base = dict(dataset="mnist", n_stochastic=1, objective="iwae", k=5, epochs=FASTER_STUDY_EPOCHS,
                validation_size=10000, **{**PAPER_EVALUATION, "final_train_size": 2000})
    return TrainConfig(**{**base, **options})


def faster_runs() -> dict:
    """The appendix's runs of the chosen recipe and their baselines: label -> (fast name, scaled name)."""
    return {f"{objective.upper()} k={k}": (run_name("mnist", 1, objective, k) + FASTER_SUFFIX,
                                            run_name("mnist", 1, objective, k))
            for objective, k in FASTER_MODELS}


def book_runs() -> dict:
    """name -> BookRun for every run a chapter shows in the full profile, in recording order:
    Table 1 first (then the scaled-paper runs of chapters 3 and 5), then Appendix D (static
    binarization), the estimators, the rest; the appendix's baselines last."""
    runs = {}

    def add(name, config, chapters, **extra):
        if name in runs:
            if runs[name].config != config:
                raise ValueError(f"run {name} is declared twice with different configurations")
            runs[name] = dataclasses.replace(runs[name], chapters=tuple(sorted(set(runs[name].chapters) | set(chapters))))
        else:
            runs[name] = BookRun(name, config, tuple(chapters), **extra)

    fast = table1_recipe_runs()
    for name, config in fast.items():  # chapters 1 and 6 (and the appendix: see below)
        add(name, config, (1,) if config.n_stochastic == 1 else (6,))
    scaled = table1_runs()  # the scaled-paper runs of chapters 3 (k=5) and 5 (IWAE k=5)
    add("mnist_1l_iwae_k5", scaled["mnist_1l_iwae_k5"], (3, 5))
    add("mnist_1l_vae_k5", scaled["mnist_1l_vae_k5"], (3,))

    static = dict(dataset="binarized_mnist", n_stochastic=1, k=5, **SCALED_PAPER, **PAPER_EVALUATION)
    for objective in TABLE1_OBJECTIVES:  # chapter 3 (Appendix D); the IWAE run also in chapter 2
        add(run_name("binarized_mnist", 1, objective, 5), TrainConfig(objective=objective, **static),
            (2, 3) if objective == "iwae" else (3,))
    add("binarized_mnist_1l_iwae_k5_valid", TrainConfig(objective="iwae", validation_size=10000, patience=10, **static),
        (2,))  # chapter 2 (early stopping; it absorbed the former chapter 4)
    dynamic = dict(dataset="mnist", n_stochastic=1, k=5, objective="iwae", **SCALED_PAPER, **PAPER_EVALUATION)
    add("mnist_1l_iwae_k5_valid", TrainConfig(validation_size=10000, patience=10, **dynamic), (2,))

    for estimator in ("stl", "dreg"):  # chapter 5 (the standard estimator's run is Table 1's)
        add(f"mnist_1l_iwae_k5_{estimator}", TrainConfig(estimator=estimator, **dynamic), (5,))

    for objective in ("iwae", "vae"):  # chapter 4 (IWAE) and chapter 8 (both)
        add(snapshot_run_name(objective), snapshot_config(objective), (4, 8) if objective == "iwae" else (8,),
            kind="snapshots", snapshot_epochs=SNAPSHOT_EPOCHS)
    add(f"mnist_1l_iwae_k5_constant_e{SNAPSHOT_EPOCHS[1]}",  # chapter 4: one snapshot trained directly
        dataclasses.replace(snapshot_config("iwae"), epochs=SNAPSHOT_EPOCHS[1]), (4,))

    add("mnist_2d_iwae_k50", TrainConfig(dataset="mnist", n_stochastic=1, latent_sizes=(2,), hidden_sizes=((200, 200),),
                                         objective="iwae", k=50, schedule="scaled", epochs=100, **PAPER_EVALUATION),
        (7,))

    for name, config in beyond_the_paper_configs().values():
        add(name, config, (8,))
    add(EIGHT_BIT_RUN, eight_bit_config(), (8,))

    for fast_name, scaled_name in faster_runs().values():  # the appendix: the fast recipe against the baselines
        add(fast_name, fast[fast_name], (10,))
        add(scaled_name, scaled[scaled_name], (10,))
    for name, options in FASTER_STUDY.values():
        add(name, faster_study_config(options), (10,))
    return runs


# Long runs recorded over many sessions, which the chapters show once they are recorded
# (the build does not wait for them): Table 1 with the paper's own recipe (3280 epochs),
# Appendix D across k, the study for the paper's number in a tenth of the epochs, and
# Table 1's one-layer runs again with the study's choice.
def paper_recipe_runs() -> dict:
    """name -> TrainConfig: one stochastic layer on dynamic MNIST with ``--recipe paper``, for the
    three cells whose targets the paper-numbers work names (IWAE k=5 and k=50, VAE k=5)."""
    return {f"mnist_1l_{objective}_k{k}_paper": recipes.recipe_config("paper", objective=objective, k=k,
                                                                      **PAPER_EVALUATION)
            for objective, k in (("iwae", 50), ("iwae", 5), ("vae", 5))}


def appendix_d_runs() -> dict:
    """name -> TrainConfig: the fixed binarization at k=1 and k=50 (VAE and IWAE), the scaled
    paper stages like the k=5 runs, so that the three k can be read together."""
    static = dict(dataset="binarized_mnist", n_stochastic=1, **SCALED_PAPER, **PAPER_EVALUATION)
    return {run_name("binarized_mnist", 1, objective, k): TrainConfig(objective=objective, k=k, **static)
            for k in (1, 50) for objective in TABLE1_OBJECTIVES}


# The candidates for IWAE k=50 at <= 328 epochs, each against the fast recipe on the same
# 50000 training images, chosen by the k=5000 log-likelihood of 10000 validation images:
# DReG for the encoder, and Adam as the paper's own code runs it. yburda/iwae's optimizers.py
# uses beta1 0.99, starts the second moments at 1 and adds epsilon 1e-4 to their root, all for
# a gradient *summed* over the batch of 20 (iwae.py, gradIminibatch_srng), where this library
# averages it; on the mean gradient the same steps start the second moments at 1 / 20**2 and
# add 1e-4 / 20. Not reproduced: that code adds epsilon before the bias correction (here
# after it: the same once 1 - 0.999**t is near 1, after a few thousand steps) and updates the
# weights with the moments of the step before.
REFERENCE_ADAM = {"beta1": 0.99, "adam_v_init": 0.0025, "epsilon": 5e-6}
MOONSHOT_STUDY = {
    "fast": ("study_k50_fast", {}),
    "fast, DReG": ("study_k50_fast_dreg", {"estimator": "dreg"}),
    "fast, reference Adam": ("study_k50_fast_refadam", REFERENCE_ADAM),
    "fast, DReG, reference Adam": ("study_k50_fast_dreg_refadam", {"estimator": "dreg", **REFERENCE_ADAM}),
}


def moonshot_study_runs() -> dict:
    """name -> TrainConfig of :data:`MOONSHOT_STUDY` (IWAE k=50, 328 epochs, validation 10000)."""
    return {name: recipes.recipe_config("fast", objective="iwae", k=50, validation_size=10000, **PAPER_EVALUATION,
                                        **options)
            for name, options in MOONSHOT_STUDY.values()}


# The study's choice: the label of MOONSHOT_STUDY whose run has the highest k=5000
# log-likelihood on its validation images (:func:`moonshot_best`), set by hand once all four
# are recorded (None before; tests/runs/test_recorded_results.py checks it against the
# records). The chosen recipe then trains the six one-layer Table 1 runs on all 60000
# training images (:func:`chosen_table1_runs`); lanes already running see them at their next run.
MOONSHOT_CHOICE = "fast, DReG"


def moonshot_best(results) -> str | None:
    """The label of :data:`MOONSHOT_STUDY` whose run in ``results`` has the highest validation
    log-likelihood, or None while one of the four has no ``metrics.json``."""
    from iwae_lib.checkpoints import load_json

    paths = {label: Path(results) / name / "metrics.json" for label, (name, _) in MOONSHOT_STUDY.items()}
    if not all(path.is_file() for path in paths.values()):
        return None
    valid = {label: load_json(path)["valid_log_likelihood"] for label, path in paths.items()}
    return max(valid, key=valid.get)


def chosen_recipe(objective: str, choice: str) -> tuple:
    """(label, name suffix, TrainConfig options) of the study's ``choice`` (a label of
    :data:`MOONSHOT_STUDY`) for a Table 1 run of ``objective``: the fast recipe's options with
    the candidate's on top, named like the candidate's study run (``study_k50_fast_dreg`` ->
    ``_fast_dreg``). DReG is defined for the IWAE bound; the VAE bound is a mean of one-sample
    bounds, and with one sample DReG's encoder gradient (all normalised weights are 1) is
    STL's, its decoder gradient the standard one: the VAE runs take ``stl`` where the choice
    says ``dreg``, and say so in their label and name."""
    study_name, candidate = MOONSHOT_STUDY[choice]
    options = {**recipes.recipe_options(TABLE1_RECIPE), **candidate}
    label, suffix = choice, study_name.removeprefix("study_k50")
    if objective == "vae" and options.get("estimator") == "dreg":
        options["estimator"] = "stl"
        label, suffix = label.replace("DReG", "STL"), suffix.replace("_dreg", "_stl")
    return label, suffix, options


def chosen_table1_runs(choice: str | None = None) -> dict:
    """name -> TrainConfig: the six one-layer Table 1 runs (VAE then IWAE, k = 1, 5, 50) with
    the study's choice (default :data:`MOONSHOT_CHOICE`) on all 60000 training images, the
    evaluation of the fast runs they are set beside. Empty while there is no choice, or when the
    fast recipe itself is chosen (its runs are recorded already)."""
    choice = choice or MOONSHOT_CHOICE
    if choice is None or not MOONSHOT_STUDY[choice][1]:
        return {}
    runs = {}
    for objective in TABLE1_OBJECTIVES:
        _, suffix, options = chosen_recipe(objective, choice)
        for k in TABLE1_KS:
            runs[run_name("mnist", 1, objective, k) + suffix] = TrainConfig(
                dataset="mnist", n_stochastic=1, objective=objective, k=k, **{**PAPER_EVALUATION, **options})
    return runs


def long_runs() -> dict:
    """name -> BookRun of the long runs, in the order two lanes take them (``runs --long
    --missing-commands``, each lane the first that the other is not training): the paper's
    recipe for IWAE k=50 and k=5 (chapter 1), the study for IWAE k=50 at 328 epochs (the
    appendix), the chosen recipe's IWAE k=50 (the appendix and chapter 1), the paper's recipe
    for the VAE, Appendix D across k (chapter 3: four runs of a few hours in all, and its
    section needs all four), then the chosen recipe's other five Table 1 runs (chapter 1)."""
    paper = paper_recipe_runs()
    chosen = chosen_table1_runs()
    chosen_k50 = [name for name, config in chosen.items() if config.objective == "iwae" and config.k == 50]
    runs = {name: BookRun(name, config, (1,)) for name, config in paper.items() if config.objective == "iwae"}
    runs.update((name, BookRun(name, config, (10,))) for name, config in moonshot_study_runs().items())
    runs.update((name, BookRun(name, chosen[name], (1, 10))) for name in chosen_k50)
    runs.update((name, BookRun(name, config, (1,))) for name, config in paper.items() if config.objective == "vae")
    runs.update((name, BookRun(name, config, (3,))) for name, config in appendix_d_runs().items())
    runs.update((name, BookRun(name, config, (1,))) for name, config in chosen.items() if name not in chosen_k50)
    return runs


def shown_runs(results) -> dict:
    """name -> BookRun of the runs the chapters show: every run of :func:`book_runs`, then
    each of :func:`long_runs` once ``<results>/<name>/metrics.json`` exists (a chapter shows a
    run of the paper's 3280 epochs only when it has finished)."""
    runs = book_runs()
    runs.update((name, run) for name, run in long_runs().items()
                if (Path(results) / name / "metrics.json").is_file())
    return runs


# The smoke profile (IWAE_SMOKE=1) in one place: every run of the book shrunk to seconds
# on 100 training images, with small final evaluations. A name keeps its full meaning.
SMOKE_SHRINK = {"epochs": 8, "train_size": 100, "final_k": 100, "final_test_size": 100, "final_train_size": 100,
                "eval_every": 2, "eval_size": 100, "steps_per_call": 5}
SMOKE_TWO_LAYERS = {"latent_sizes": (20, 10), "hidden_sizes": ((50, 50), (20, 20))}  # the paper's is slow to score


def smoke_version(config: TrainConfig) -> TrainConfig:
    """The smoke profile's stand-in for a run: :data:`SMOKE_SHRINK`, early stopping after two
    evaluations of every epoch, a narrow model for two stochastic layers, one hidden layer of
    50 units and k=5 for the two-dimensional model, and the paper's fixed-length schedule
    replaced by its stages scaled to the smoke epochs."""
    options = dict(SMOKE_SHRINK)
    if config.schedule == "paper":
        options["schedule"] = "scaled"
    if config.warmup_epochs:
        options["warmup_epochs"] = 1.0
    if config.patience is not None:
        options.update(patience=2, eval_every=1)
    if config.n_stochastic == 2:
        options.update(SMOKE_TWO_LAYERS)
    if config.latent_sizes == (2,):
        options.update(hidden_sizes=((50,),), k=5)
    return dataclasses.replace(config, **options)


def config(name: str, smoke: bool | None = None, **overrides) -> TrainConfig:
    """The book's TrainConfig of run ``name`` (a run of :func:`book_runs` or :func:`long_runs`):
    in the smoke profile (``smoke``, default: the environment's) its :func:`smoke_version`;
    ``overrides`` on top. KeyError lists the names."""
    from iwae_lib.chapters.profiles import is_smoke

    runs = {**book_runs(), **long_runs()}
    if name not in runs:
        raise KeyError(f"no run named {name!r} in the book's catalog (iwae_lib/chapters/catalog.py); "
                       f"known runs: {', '.join(runs)}")
    base = runs[name].config
    if is_smoke() if smoke is None else smoke:
        base = smoke_version(base)
    return dataclasses.replace(base, **overrides)


def configs(names, smoke: bool | None = None, **overrides) -> dict:
    """name -> :func:`config` for each of ``names`` (same order)."""
    return {name: config(name, smoke=smoke, **overrides) for name in names}
