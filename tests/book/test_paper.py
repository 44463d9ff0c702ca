"""The paper's numbers in iwae_lib.chapters.paper: values pinned against arXiv:1509.00519 v4, and their structure."""

import pytest

from iwae_lib import adam, schedules
from iwae_lib.chapters import paper

BLOCKS = [("mnist", 1), ("mnist", 2), ("omniglot", 1), ("omniglot", 2), ("binarized_mnist", 1), ("binarized_mnist", 2)]


def test_source_is_the_checked_version():
    assert paper.SOURCE == "arXiv:1509.00519 v4"
    assert paper.source("mnist") == "arXiv:1509.00519 v4, Table 1"
    assert paper.source("binarized_mnist") == "arXiv:1509.00519 v4, Appendix D, Table 3"
    assert not hasattr(paper, "TABLE1_CHECKED")
    assert "memory" not in paper.__doc__ and "could not be checked" not in paper.__doc__
    with pytest.raises(KeyError, match="no numbers for data set 'cifar'"):
        paper.source("cifar")


@pytest.mark.parametrize("dataset, layers, objective, k, nll, units", [
    ("mnist", 1, "iwae", 5, 85.54, (22,)),
    ("mnist", 1, "iwae", 50, 84.78, (25,)),
    ("mnist", 1, "vae", 5, 86.47, (20,)),
    ("mnist", 2, "iwae", 50, 82.90, (26, 7)),
    ("omniglot", 1, "iwae", 50, 104.67, (41,)),
    # the 2-layer Omniglot block, corrected against the paper's text
    ("omniglot", 2, "vae", 1, 107.58, (28, 4)),
    ("omniglot", 2, "iwae", 1, 107.56, (30, 5)),
    ("omniglot", 2, "vae", 5, 106.31, (30, 5)),
    ("omniglot", 2, "iwae", 5, 104.79, (38, 6)),
    ("omniglot", 2, "vae", 50, 106.30, (30, 5)),
    ("omniglot", 2, "iwae", 50, 103.38, (44, 7)),
    # Appendix D, Table 3: fixed binarization
    ("binarized_mnist", 1, "vae", 1, 88.71, (19,)),
    ("binarized_mnist", 1, "vae", 5, 88.83, (19,)),
    ("binarized_mnist", 1, "iwae", 5, 87.63, (22,)),
    ("binarized_mnist", 1, "vae", 50, 89.05, (20,)),
    ("binarized_mnist", 1, "iwae", 50, 87.10, (24,)),
    ("binarized_mnist", 2, "vae", 50, 87.86, (17, 6)),
    ("binarized_mnist", 2, "iwae", 5, 86.17, (21, 5)),
    ("binarized_mnist", 2, "iwae", 50, 85.32, (24, 7)),
])
def test_pinned_values(dataset, layers, objective, k, nll, units):
    assert paper.test_nll(dataset, layers, objective, k) == nll
    assert paper.active_units(dataset, layers, objective, k) == units


def test_every_block_is_complete_and_fits_the_models():
    for dataset, layers in BLOCKS:
        block = paper.TABLES[dataset][layers]
        assert set(block) == set(paper.OBJECTIVES)
        for objective in paper.OBJECTIVES:
            assert set(block[objective]) == set(paper.KS)
            for k in paper.KS:
                nll, units = block[objective][k]
                assert isinstance(nll, float) and 80 < nll < 110
                assert len(units) == layers and units[0] <= (50 if layers == 1 else 100)
                assert layers == 1 or units[1] <= 50


def test_the_papers_claims_hold_in_its_numbers():
    for dataset, layers in BLOCKS:
        for k in (5, 50):  # IWAE beats the VAE and uses at least as many units
            assert paper.test_nll(dataset, layers, "iwae", k) < paper.test_nll(dataset, layers, "vae", k)
            assert sum(paper.active_units(dataset, layers, "iwae", k)) >= sum(paper.active_units(dataset, layers, "vae", k))
        iwae = [paper.test_nll(dataset, layers, "iwae", k) for k in paper.KS]
        assert iwae == sorted(iwae, reverse=True)  # more samples, lower NLL
        for objective in paper.OBJECTIVES:
            for k in paper.KS:
                assert paper.test_nll(dataset, 2, objective, k) < paper.test_nll(dataset, 1, objective, k)
    # with k = 1 both objectives are the same bound; only the 2-layer Omniglot runs differ
    for dataset, layers in BLOCKS:
        same = paper.test_nll(dataset, layers, "vae", 1) == paper.test_nll(dataset, layers, "iwae", 1)
        assert same == ((dataset, layers) != ("omniglot", 2))
    # fixed binarization overfits: every Appendix D model is worse than its Table 1 twin
    for layers in (1, 2):
        for objective in paper.OBJECTIVES:
            for k in paper.KS:
                assert paper.test_nll("binarized_mnist", layers, objective, k) > paper.test_nll("mnist", layers, objective, k)


def test_table2_and_train_test_gaps():
    vae_then_iwae, iwae_then_vae = paper.TABLE2
    assert vae_then_iwae == {"first": ("vae", 1), "then": ("iwae", 50), "before": (86.76, (19,)), "after": (84.88, (22,))}
    assert iwae_then_vae == {"first": ("iwae", 50), "then": ("vae", 1), "before": (84.78, (25,)), "after": (86.02, (23,))}
    for row in paper.TABLE2:  # "before" is the Table 1 model
        assert row["before"] == (paper.test_nll("mnist", 1, *row["first"]), paper.active_units("mnist", 1, *row["first"]))
    assert paper.TABLE2_LEARNING_RATE == 1e-4 and paper.TABLE2_EXTRA_EPOCHS == 2187
    assert paper.TRAIN_TEST_GAP == {"mnist": (0.62, 0.79), "omniglot": (2.39, 2.65)}


def test_training_settings():
    assert paper.EPOCHS == 3280 == sum(3**i for i in range(8)) == schedules.PAPER_EPOCHS
    assert paper.BATCH_SIZE == 20 and paper.EVAL_K == 5000 and paper.ADAM is adam.PAPER_ADAM


def test_rows_are_keyed_by_run_name():
    rows = paper.table1_rows("mnist", 1)
    assert list(rows) == [f"mnist_1l_{o}_k{k}" for o in ("vae", "iwae") for k in (1, 5, 50)]
    assert rows["mnist_1l_vae_k5"] == {"test NLL": 86.47, "active units": (20,)}
    static = paper.appendix_d_rows(1)
    assert list(static) == [f"binarized_mnist_1l_{o}_k{k}" for o in ("vae", "iwae") for k in (1, 5, 50)]
    assert static["binarized_mnist_1l_iwae_k5"] == {"test NLL": 87.63, "active units": (22,)}
    assert paper.appendix_d_rows(2)["binarized_mnist_2l_iwae_k50"] == {"test NLL": 85.32, "active units": (24, 7)}
    with pytest.raises(KeyError, match="the paper has no entry"):
        paper.test_nll("mnist", 3, "iwae", 5)
    with pytest.raises(KeyError, match="Table 1 has no data set 'binarized_mnist'"):
        paper.table1_rows("binarized_mnist", 1)
