"""The published numbers of Burda, Grosse & Salakhutdinov (2015), as data.

Source: "Importance Weighted Autoencoders", arXiv:1509.00519 v4 (ICLR 2016). Every value
below was checked against that version's text:

* :data:`TABLE1` -- Table 1 ("Results on density estimation and the number of active latent
  dimensions"): test negative log-likelihood in nats, estimated with k = 5000 samples, and
  the number of active units, for models trained with the VAE or the IWAE objective with
  k = 1, 5, 50 samples, on dynamically binarized MNIST and on OMNIGLOT, with one or two
  stochastic layers.
* :data:`APPENDIX_D` -- Appendix D, Table 3: the same models on the fixed binarization of
  MNIST of Larochelle & Murray (2011), the book's ``binarized_mnist``.
* :data:`TABLE2` -- Table 2: a model trained with one objective, then trained on with the
  other (learning rate 1e-4, 3^7 more passes).
* :data:`TRAIN_TEST_GAP` -- the text on Table 1: how much the training log-likelihood exceeded
  the test log-likelihood.

Active units are given per stochastic layer, bottom layer first (the paper's "a+b").
"""

from __future__ import annotations

from iwae_lib import adam, schedules

ARXIV_ID = "1509.00519"
ARXIV_VERSION = "v4"
SOURCE = f"arXiv:{ARXIV_ID} {ARXIV_VERSION}"
KS = (1, 5, 50)
OBJECTIVES = ("vae", "iwae")

# Section 5 (training procedure): 3^i epochs at learning rate 1e-3 * 10^(-i/7), i = 0..7.
EPOCHS = schedules.PAPER_EPOCHS  # 3280
STAGES = schedules.PAPER_STAGES  # 8
BATCH_SIZE = 20
EVAL_K = 5000  # samples in the test log-likelihood estimate (Section 5)
ADAM = adam.PAPER_ADAM  # beta1 0.9, beta2 0.999, epsilon 1e-4

# Table 1 (arXiv:1509.00519 v4): dataset -> n_stochastic -> objective -> k -> (test NLL in nats, active units per layer)
TABLE1 = {
    "mnist": {
        1: {
            "vae": {1: (86.76, (19,)), 5: (86.47, (20,)), 50: (86.35, (20,))},
            "iwae": {1: (86.76, (19,)), 5: (85.54, (22,)), 50: (84.78, (25,))},
        },
        2: {
            "vae": {1: (85.33, (16, 5)), 5: (85.01, (17, 5)), 50: (84.78, (17, 5))},
            "iwae": {1: (85.33, (16, 5)), 5: (83.89, (21, 5)), 50: (82.90, (26, 7))},
        },
    },
    "omniglot": {
        1: {
            "vae": {1: (108.11, (28,)), 5: (107.62, (28,)), 50: (107.80, (28,))},
            "iwae": {1: (108.11, (28,)), 5: (106.12, (34,)), 50: (104.67, (41,))},
        },
        2: {  # the k=1 rows differ here: 107.58 (VAE) and 107.56 (IWAE)
            "vae": {1: (107.58, (28, 4)), 5: (106.31, (30, 5)), 50: (106.30, (30, 5))},
            "iwae": {1: (107.56, (30, 5)), 5: (104.79, (38, 6)), 50: (103.38, (44, 7))},
        },
    },
}

# Appendix D, Table 3 (arXiv:1509.00519 v4): MNIST with Larochelle's fixed binarization.
# n_stochastic -> objective -> k -> (test NLL in nats, active units per layer)
APPENDIX_D = {
    1: {
        "vae": {1: (88.71, (19,)), 5: (88.83, (19,)), 50: (89.05, (20,))},
        "iwae": {1: (88.71, (19,)), 5: (87.63, (22,)), 50: (87.10, (24,))},
    },
    2: {
        "vae": {1: (88.08, (16, 5)), 5: (87.63, (17, 5)), 50: (87.86, (17, 6))},
        "iwae": {1: (88.08, (16, 5)), 5: (86.17, (21, 5)), 50: (85.32, (24, 7))},
    },
}

# Table 2 (arXiv:1509.00519 v4): one-stochastic-layer MNIST models trained to the end of the
# schedule with one objective, then for 3^7 more passes at learning rate 1e-4 with the other.
# Test NLL in nats and active units before ("first") and after ("then").
TABLE2 = (
    {"first": ("vae", 1), "then": ("iwae", 50), "before": (86.76, (19,)), "after": (84.88, (22,))},
    {"first": ("iwae", 50), "then": ("vae", 1), "before": (84.78, (25,)), "after": (86.02, (23,))},
)
TABLE2_LEARNING_RATE = 1e-4
TABLE2_EXTRA_EPOCHS = 3**7

# The text on Table 1 (arXiv:1509.00519 v4): the training log-likelihood exceeded the test
# log-likelihood by this many nats (lowest, highest over the models of Table 1).
TRAIN_TEST_GAP = {"mnist": (0.62, 0.79), "omniglot": (2.39, 2.65)}

# Where each data set's numbers are: the book's data set name -> (table, its location).
TABLES = {"mnist": TABLE1["mnist"], "omniglot": TABLE1["omniglot"], "binarized_mnist": APPENDIX_D}
TABLE_NAMES = {"mnist": "Table 1", "omniglot": "Table 1", "binarized_mnist": "Appendix D, Table 3"}


def _entry(dataset: str, n_stochastic: int, objective: str, k: int):
    try:
        return TABLES[dataset][n_stochastic][objective][k]
    except KeyError:
        raise KeyError(f"the paper has no entry for dataset={dataset!r}, n_stochastic={n_stochastic}, "
                       f"objective={objective!r}, k={k}; Table 1 and Appendix D cover data sets "
                       f"{sorted(TABLES)}, 1 or 2 stochastic layers, objectives {OBJECTIVES} and k in {KS}") from None


def source(dataset: str) -> str:
    """Where the paper reports ``dataset``'s numbers, e.g. ``"arXiv:1509.00519 v4, Table 1"``."""
    if dataset not in TABLE_NAMES:
        raise KeyError(f"the paper reports no numbers for data set {dataset!r}; known: {sorted(TABLE_NAMES)}")
    return f"{SOURCE}, {TABLE_NAMES[dataset]}"


def test_nll(dataset: str, n_stochastic: int, objective: str, k: int) -> float:
    """The paper's test negative log-likelihood (nats) for one model.

    ``dataset`` "mnist" or "omniglot" reads Table 1, "binarized_mnist" Appendix D.
    """
    return _entry(dataset, n_stochastic, objective, k)[0]


def active_units(dataset: str, n_stochastic: int, objective: str, k: int) -> tuple:
    """The paper's number of active units per stochastic layer (bottom layer first)."""
    return _entry(dataset, n_stochastic, objective, k)[1]


def run_name(dataset: str, n_stochastic: int, objective: str, k: int) -> str:
    """The book's name for the run reproducing one Table 1 entry, e.g. ``mnist_1l_iwae_k50``."""
    return f"{dataset}_{n_stochastic}l_{objective}_k{k}"


def rows(dataset: str = "mnist", n_stochastic: int = 1) -> dict:
    """Run name -> {"test NLL": ..., "active units": ...} for one block of Table 1 or Appendix D.

    ``dataset`` "mnist" or "omniglot": Table 1; "binarized_mnist": Appendix D. The keys match
    :func:`run_name` and the columns of ``plotting.results_table``.
    """
    return {run_name(dataset, n_stochastic, objective, k): {"test NLL": test_nll(dataset, n_stochastic, objective, k),
                                                           "active units": active_units(dataset, n_stochastic, objective, k)}
            for objective in OBJECTIVES for k in KS}


def table1_rows(dataset: str = "mnist", n_stochastic: int = 1) -> dict:
    """:func:`rows` of a Table 1 block (``dataset`` "mnist" or "omniglot")."""
    if dataset not in TABLE1:
        raise KeyError(f"Table 1 has no data set {dataset!r}; it has {sorted(TABLE1)}")
    return rows(dataset, n_stochastic)


def appendix_d_rows(n_stochastic: int = 1) -> dict:
    """:func:`rows` of Appendix D (fixed binarization), keyed ``binarized_mnist_<L>l_<objective>_k<k>``."""
    return rows("binarized_mnist", n_stochastic)
