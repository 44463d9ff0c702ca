"""Helpers shared by the book's notebooks: profiles, paths, and "train or load" runs.

Every notebook runs in one of two profiles:

    smoke   (env ``IWAE_SMOKE=1`` or ``IWAE_PROFILE=smoke``): tiny data subsets, a few
            steps, small k. Runs in well under a minute; used by the tests and the CI
            book build. It never reads or writes ``results/``.
    full    (the default): the real experiment. A run whose recorded results exist in
            ``results/<name>/`` (committed to the repository) is loaded; a missing one is
            trained into ``runs/<name>/`` (git-ignored, resumable).

:func:`train_or_load` returns a :class:`RunRecord`: the metrics, the weights, the
configuration and a sentence saying which run produced the numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import textwrap
import warnings
from pathlib import Path

import numpy as np

from iwae_lib import checkpoints
from iwae_lib.config import TrainConfig, config_differences
from iwae_lib.models import ModelConfig

with warnings.catch_warnings():  # tqdm.auto warns when ipywidgets is missing; its text bars work anyway
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from iwae_lib.chapters.profiles import PROFILES, is_smoke, profile  # noqa: E402,F401

RESULTS = "results"
RUNS = "runs"


PAGE_COLUMNS = 79  # characters of a code cell's output the book's pages show without scrolling


def profile_note() -> str:
    """A sentence for the reader saying what the current profile's numbers mean, broken into
    lines that fit the book's pages."""
    if is_smoke():
        note = ("Smoke profile: tiny models trained for seconds on a few hundred images. The numbers "
                "below only show that the code runs; they say nothing about the paper's claims.")
    else:
        note = ("Full profile: numbers come from the recorded runs in results/ (or from runs trained "
                "now where none was recorded), as listed with each table.")
    return textwrap.fill(note, PAGE_COLUMNS)


SITE_BUILD_ENV = "IWAE_SITE_BUILD"  # set by iwae_lib.chapters.build for the notebook kernels it starts


def building_site() -> bool:
    """True while the book's build (``scripts/build_book.sh``) executes the notebook: its
    outputs become a static page, so nothing that needs a live kernel (a TensorBoard server,
    an interactive widget) should start."""
    return os.environ.get(SITE_BUILD_ENV) == "1"


# ----------------------------------------------------------------------------- paths


def _looks_like_repo(folder: Path) -> bool:
    return (folder / "iwae_lib").is_dir() and (folder / "pyproject.toml").is_file()


def repo_root() -> Path:
    """The repository root: the folder holding ``iwae_lib/`` and ``pyproject.toml``.

    Found from the installed (editable) library first, then from the working directory
    and its parents, so it works from ``notebooks/``, the repository root, or Colab after
    cloning. Raises FileNotFoundError when none is found.
    """
    here = Path(__file__).resolve().parents[2]
    if _looks_like_repo(here):
        return here
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if _looks_like_repo(folder):
            return folder
    raise FileNotFoundError(
        "cannot find the iwae-book repository (a folder with iwae_lib/ and pyproject.toml) "
        "from the library or the working directory; clone it and run from inside it")


def results_dir() -> Path:
    """``results/`` at the repository root (``IWAE_RESULTS_DIR`` overrides it)."""
    override = os.environ.get("IWAE_RESULTS_DIR")
    return Path(override).expanduser().resolve() if override else repo_root() / RESULTS


def runs_dir() -> Path:
    """``runs/`` at the repository root (``IWAE_RUNS_DIR`` overrides it): runs trained here."""
    override = os.environ.get("IWAE_RUNS_DIR")
    return Path(override).expanduser().resolve() if override else repo_root() / RUNS


def resolve_data_dir_env() -> None:
    """Make a relative ``IWAE_DATA_DIR`` (CI uses ``../shared/data``) absolute, relative to
    the repository root, so notebooks find the data from any working directory."""
    value = os.environ.get("IWAE_DATA_DIR")
    if value and not Path(value).expanduser().is_absolute():
        try:
            os.environ["IWAE_DATA_DIR"] = str((repo_root() / Path(value).expanduser()).resolve())
        except FileNotFoundError:
            pass


resolve_data_dir_env()


# ----------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=4)
def dataset(name: str, validation_size: int = 0, seed: int = 0):
    """``data.load_dataset`` cached in memory, so several runs of a notebook share it."""
    from iwae_lib import data

    return data.load_dataset(name, validation_size, seed)


# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass
class RunRecord:
    """One training run, recorded or trained now.

    name: run name (``results/<name>`` or ``runs/<name>``).
    metrics: the run's metrics.json as a dict (``test_log_likelihood``, ``history``, ...).
    weights: parameter dict name -> float32 array (``models`` naming).
    config: the TrainConfig the run used (as recorded, if recorded).
    model: its ModelConfig.
    source: ``"recorded"`` or ``"trained now"``.
    run_dir: the folder holding the run.
    requested: the TrainConfig the notebook asked for.
    """

    name: str
    metrics: dict
    weights: dict
    config: TrainConfig
    model: ModelConfig
    source: str
    run_dir: Path
    requested: TrainConfig

    @property
    def history(self) -> list:
        return self.metrics.get("history", [])

    @property
    def test_log_likelihood(self) -> float:
        return float(self.metrics["test_log_likelihood"])

    @property
    def train_log_likelihood(self) -> float:
        return float(self.metrics["train_log_likelihood"])

    @property
    def active_units(self) -> list:
        return list(self.metrics["active_units"])

    @property
    def training_hours(self) -> float:
        return float(self.metrics.get("wall_seconds", {}).get("training", 0.0)) / 3600.0

    def config_differences(self) -> list:
        """Options where the run's configuration differs from the one requested."""
        return config_differences(self.config.to_dict(), self.requested.to_dict())

    def describe(self) -> str:
        """One sentence naming the run that produced this record's numbers."""
        env = self.metrics.get("environment", {})
        epochs = self.metrics.get("epochs_completed", "?")
        total = self.metrics.get("total_epochs", epochs)
        stopped = ", stopped early" if self.metrics.get("stopped_early") else ""
        where = f"{self.run_dir.parent.name}/{self.name}"
        revision = str(env.get("git_revision", "unknown"))
        revision = revision[:10] + ("+dirty" if revision.endswith("+dirty") else "")
        text = (f"{self.source} run {where}: {epochs} of {total} epochs{stopped}, "
                f"selected epoch {self.metrics.get('selected_epoch', epochs)}, "
                f"git revision {revision}, "
                f"{self.training_hours:.2f} h of training on {env.get('cpu', 'unknown hardware')}"
                f"{' + ' + ', '.join(env['gpus']) if env.get('gpus') else ''}")
        differences = self.config_differences()
        if differences:
            text += f" (differs from this notebook's configuration in: {', '.join(differences)})"
        return text


def load_weights(name: str, folder: Path | None = None) -> dict:
    """Weights of a run: ``<folder or results_dir()>/<name>/weights.npz`` as a dict of arrays."""
    path = Path(folder or results_dir()) / name / "weights.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no weights for run {name!r}: {path} does not exist")
    return checkpoints.load_arrays(path)


def load_run(name: str, folder: Path | None = None, requested: TrainConfig | None = None,
             source: str = "recorded") -> RunRecord:
    """The finished run ``<folder or results_dir()>/<name>`` (metrics.json + weights.npz)."""
    run_dir = Path(folder or results_dir()) / name
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"run {name!r} has no results: {metrics_path} does not exist")
    metrics = checkpoints.load_json(metrics_path)
    config = TrainConfig.from_dict(metrics["config"])
    model = ModelConfig.from_dict(metrics["model"]) if "model" in metrics else config.model_config()
    return RunRecord(name=name, metrics=metrics, weights=load_weights(name, run_dir.parent), config=config,
                     model=model, source=source, run_dir=run_dir, requested=requested or config)


def has_recorded_run(name: str) -> bool:
    return (results_dir() / name / "metrics.json").is_file()


def _resumable_recorded_run(name: str, config: TrainConfig) -> bool:
    """True if results/<name> holds an unfinished run of exactly this configuration."""
    folder = results_dir() / name
    if not (folder / "config.json").is_file() or not (folder / "checkpoint.npz").is_file():
        return False
    stored = checkpoints.load_json(folder / "config.json").get("train", {})
    return not config_differences(stored, config.to_dict())


def smoke_dir(name: str) -> Path:
    return runs_dir() / "smoke" / name


def train_or_load(name: str, config: TrainConfig, smoke: bool | None = None, progress: bool = True) -> RunRecord:
    """The run ``name`` with ``config``: loaded if recorded, trained otherwise.

    Full profile: ``results/<name>/metrics.json`` exists -> load it (and its weights);
    an unfinished recorded run of the same configuration (``results/<name>/`` with a
    checkpoint) is resumed where it is; otherwise train into ``runs/<name>/`` (resuming a
    checkpoint left there).
    Smoke profile (``smoke`` True, default: ``is_smoke()``): always train afresh into
    ``runs/smoke/<name>/``; ``results/`` is never touched.
    """
    from iwae_lib import training

    smoke = is_smoke() if smoke is None else smoke
    if not smoke and has_recorded_run(name):
        return load_run(name, results_dir(), requested=config, source="recorded")
    if smoke:
        out = smoke_dir(name)
        shutil.rmtree(out, ignore_errors=True)
    elif _resumable_recorded_run(name, config):
        out = results_dir() / name
    else:
        out = runs_dir() / name
    if not smoke:  # how long it takes here, and the command that records it instead
        from iwae_lib.bookkeeping.status import training_notice

        print(training_notice(name, config, out, results_dir()))
    ds = dataset(config.dataset, config.validation_size, config.seed)
    training.train(config, out, progress=progress, dataset=ds)
    return load_run(name, out.parent, requested=config, source="trained now")


def train_or_load_all(configs: dict, smoke: bool | None = None, progress: bool = True) -> dict:
    """``train_or_load`` for each name -> TrainConfig; returns name -> RunRecord (same order)."""
    return {name: train_or_load(name, config, smoke=smoke, progress=progress) for name, config in configs.items()}


def train_or_load_recorded(configs: dict, progress: bool = True) -> dict:
    """``train_or_load_all`` for those of ``configs`` (name -> TrainConfig) recorded in results/:
    the long runs a chapter shows once they have finished. In the smoke profile all of them
    are trained (tiny), so the smoke run executes the code that shows them."""
    shown = {name: config for name, config in configs.items() if is_smoke() or has_recorded_run(name)}
    return train_or_load_all(shown, progress=progress)


def missing_runs(names) -> list:
    """The names among ``names`` that have no recorded results (they would be trained)."""
    return [name for name in names if not has_recorded_run(name)]


def provenance(records: dict) -> list:
    """One entry per record: ``"<name>: <describe()>"``, broken into lines of at most
    ``PAGE_COLUMNS`` characters (continuation lines indented) so a page shows it whole."""
    return [textwrap.fill(f"{name}: {record.describe()}", PAGE_COLUMNS, subsequent_indent="    ",
                          break_long_words=False, break_on_hyphens=False)
            for name, record in records.items()]


def glue(name: str, value, display: bool = False):
    """MyST-NB's ``glue``: keep ``value`` under ``name`` so the page's prose can show it
    (``{glue:text}`name:.2f` ``). Returns ``value``. Where myst_nb is missing (Colab) it only
    returns the value: the chapters also print or assert what they glue."""
    if isinstance(value, np.generic):  # NumPy 2 prints np.float64(...), which {glue:text} cannot format
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value


OBJECTIVE_LABELS = {"vae": "VAE", "iwae": "IWAE", "miwae": "MIWAE", "ciwae": "CIWAE", "piwae": "PIWAE"}
ESTIMATOR_LABELS = {"standard": "standard", "stl": "STL", "dreg": "DReG"}
RUNS_PAGE = "How the runs were made"  # the back matter's page of provenance (book/runs.md)


def run_label(config: TrainConfig) -> str:
    """A legend's words for a run: ``"IWAE, k=50"``, ``"IWAE, k=5, DReG"``, ``"MIWAE, k=64, 8
    groups"``; never a run id."""
    label = f"{OBJECTIVE_LABELS.get(config.objective, config.objective)}, k={config.k}"
    if config.objective in ("miwae", "piwae") and config.miwae_groups > 1:
        label += f", {config.miwae_groups} groups"
    if config.objective == "ciwae":
        label += f", beta={config.ciwae_beta:g}"
    if config.estimator != "standard":
        label += f", {ESTIMATOR_LABELS.get(config.estimator, config.estimator)}"
    return label


def labelled(records: dict) -> dict:
    """``run_label(record.config) -> record`` for name -> RunRecord (labels must be unique)."""
    out = {run_label(record.config): record for record in records.values()}
    if len(out) != len(records):
        raise ValueError(f"runs share a label, name them yourself: {', '.join(records)}")
    return out


def _recipe_words(config: TrainConfig) -> str:
    from iwae_lib import recipes

    name = recipes.matching_recipe(config)
    if name:
        return f"{name} recipe"
    return {"constant": f"constant rate {config.learning_rate:g}", "scaled": "paper's stages scaled",
            "paper": "paper's stages", "linear_decay": "linear decay"}.get(config.schedule, config.schedule)


def runs_note(records: dict) -> str:
    """One sentence, wrapped to the page, naming the runs a chapter shows: name, recipe and
    epochs trained (grouped), and where their provenance is. The chapters print it once."""
    if is_smoke():
        epochs = sorted({r.metrics.get("epochs_completed") for r in records.values()})
        return textwrap.fill(f"Smoke profile: {len(records)} tiny run(s) trained just now "
                             f"({', '.join(map(str, epochs))} epochs on 100 images); the numbers only "
                             "show that the code runs.", PAGE_COLUMNS)
    groups = {}
    for name, record in records.items():
        done = record.metrics.get("epochs_completed", "?")
        key = f"{_recipe_words(record.config)}, {done} epochs"
        groups.setdefault(key, []).append(name)
    parts = [f"{', '.join(names)} ({key})" for key, names in groups.items()]
    return textwrap.fill(f"Runs shown: {'; '.join(parts)}. Provenance: back matter, "
                         f"'{RUNS_PAGE}'.", PAGE_COLUMNS, break_long_words=False, break_on_hyphens=False)


def summary(records: dict, keys=("test_log_likelihood", "train_log_likelihood", "active_units", "selected_epoch")):
    """Rows (one per record) of selected metrics, as a pandas DataFrame indexed by name."""
    import pandas as pd

    rows = {name: {key: r.metrics.get(key) for key in keys} for name, r in records.items()}
    return pd.DataFrame.from_dict(rows, orient="index")



def log_weights(weights: dict, model: ModelConfig, x, k: int, seed: int = 0, batch_size: int = 10) -> np.ndarray:
    """Importance log-weights for many samples, a few images at a time (bounded memory).

    weights: parameter dict; model: its ModelConfig; x: [N, 784] binary images.
    Returns float32 [k, N]; batch b uses the stateless seed (seed, b).
    """
    from iwae_lib import models
    from iwae_lib._quiet import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != model.x_size:
        raise ValueError(f"x must have shape [N, {model.x_size}], got {x.shape}")
    tensors = {name: tf.convert_to_tensor(value) for name, value in weights.items()}
    parts = []
    for b, start in enumerate(range(0, len(x), batch_size)):
        log_w, _ = models.log_weights(tensors, model, x[start:start + batch_size], k, tf.constant([seed, b], tf.int64))
        parts.append(log_w.numpy())
    return np.concatenate(parts, axis=1)
