"""The published numbers of Burda, Grosse & Salakhutdinov (2015), as data.

Source: "Importance Weighted Autoencoders", arXiv:1509.00519 (ICLR 2016), Table 1
("Results on density estimation and the number of active latent dimensions"):
test negative log-likelihood in nats (estimated with k = 5000 samples) and the number of
active units, for models trained with the VAE or the IWAE objective with k = 1, 5, 50
samples, on dynamically binarized MNIST and on OMNIGLOT.

Provenance note: these values were transcribed from the paper's Table 1. The text search
available while writing this module returned only the first part of the paper's pages, so
the table could not be re-checked against the paper's text here; ``TABLE1_CHECKED`` says so.
Appendix D (static binarization, overfitting): its numbers could not be checked at all, so
they are left out (``APPENDIX_D`` is empty) rather than typed from memory.
"""

from __future__ import annotations

from iwae_lib import adam, schedules

ARXIV_ID = "1509.00519"
TABLE1_CHECKED = False  # see the provenance note above
KS = (1, 5, 50)
OBJECTIVES = ("vae", "iwae")

# Section 5 (training procedure): 3^i epochs at learning rate 1e-3 * 10^(-i/7), i = 0..7.
EPOCHS = schedules.PAPER_EPOCHS  # 3280
STAGES = schedules.PAPER_STAGES  # 8
BATCH_SIZE = 20
EVAL_K = 5000  # samples in the test log-likelihood estimate (Section 5)
ADAM = adam.PAPER_ADAM  # beta1 0.9, beta2 0.999, epsilon 1e-4

# Table 1: dataset -> n_stochastic -> objective -> k -> (test NLL in nats, active units per layer)
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
        2: {
            "vae": {1: (107.05, (28, 4)), 5: (106.30, (27, 3)), 50: (106.30, (28, 3))},
            "iwae": {1: (107.05, (28, 4)), 5: (104.79, (34, 4)), 50: (103.38, (37, 4))},
        },
    },
}

# Appendix D (Larochelle's statically binarized MNIST): not checked, so not included.
APPENDIX_D: dict = {}


def _entry(dataset: str, n_stochastic: int, objective: str, k: int):
    try:
        return TABLE1[dataset][n_stochastic][objective][k]
    except KeyError:
        raise KeyError(f"Table 1 has no entry for dataset={dataset!r}, n_stochastic={n_stochastic}, "
                       f"objective={objective!r}, k={k}; it covers datasets {sorted(TABLE1)}, "
                       f"1 or 2 stochastic layers, objectives {OBJECTIVES} and k in {KS}") from None


def test_nll(dataset: str, n_stochastic: int, objective: str, k: int) -> float:
    """The paper's test negative log-likelihood (nats) for one model of Table 1."""
    return _entry(dataset, n_stochastic, objective, k)[0]


def active_units(dataset: str, n_stochastic: int, objective: str, k: int) -> tuple:
    """The paper's number of active units per stochastic layer (bottom layer first)."""
    return _entry(dataset, n_stochastic, objective, k)[1]


def run_name(dataset: str, n_stochastic: int, objective: str, k: int) -> str:
    """The book's name for the run reproducing one Table 1 entry, e.g. ``mnist_1l_iwae_k50``."""
    return f"{dataset}_{n_stochastic}l_{objective}_k{k}"


def table1_rows(dataset: str = "mnist", n_stochastic: int = 1) -> dict:
    """Run name -> {"test NLL": ..., "active units": ...} for one block of Table 1.

    The keys match :func:`run_name` and the columns of ``plotting.results_table``.
    """
    return {run_name(dataset, n_stochastic, objective, k): {"test NLL": test_nll(dataset, n_stochastic, objective, k),
                                                           "active units": active_units(dataset, n_stochastic, objective, k)}
            for objective in OBJECTIVES for k in KS}
