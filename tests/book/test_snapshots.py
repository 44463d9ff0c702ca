"""Chapter 4's snapshot chain (training in segments) reproduces one uninterrupted run."""

import numpy as np
import pytest

from iwae_lib import data, training
from iwae_lib.chapters import snapshots
from iwae_lib.config import TrainConfig

OPTIONS = dict(dataset="mnist", latent_sizes=(3,), hidden_sizes=((8,),), k=3, batch_size=10, schedule="constant",
               train_size=30, eval_every=0, final_k=5, final_test_size=10, final_train_size=10, steps_per_call=2)


def _fake_dataset(seed=0):
    """30 training intensities [30, 784] and 10 binary test images [10, 784], random."""
    rng = np.random.default_rng(seed)
    train = rng.random((30, 784)).astype(np.float32)
    test = (rng.random((10, 784)) < 0.3).astype(np.float32)
    return data.DataSplits(name="mnist", dynamic=True, train=train, valid=None, test=test,
                           train_mean=train.mean(0), valid_indices=np.zeros(0, np.int64))


def test_snapshot_chain_equals_one_uninterrupted_run(tmp_path):
    ds = _fake_dataset(1)
    config = TrainConfig(**OPTIONS, epochs=3)
    snapshots.train_segments(config, (1, 3), tmp_path / "chain", dataset=ds)
    training.train(config, tmp_path / "direct", progress=False, dataset=ds)
    chained = dict(np.load(tmp_path / "chain" / "epoch_0003" / "weights.npz"))
    direct = dict(np.load(tmp_path / "direct" / "weights.npz"))
    assert (tmp_path / "chain" / "epoch_0001" / "metrics.json").is_file()
    for name in direct:
        np.testing.assert_allclose(chained[name], direct[name], rtol=1e-6, atol=1e-7)


def test_snapshot_configs_need_increasing_epochs_and_a_constant_schedule():
    with pytest.raises(ValueError, match="increasing"):
        snapshots.segment_configs(TrainConfig(**OPTIONS, epochs=3), (2, 1))
    with pytest.raises(ValueError, match="constant"):
        snapshots.segment_configs(TrainConfig(**{**OPTIONS, "schedule": "scaled"}, epochs=8), (1, 8))
