"""benchmarks/adam_order.py: Adam's wait for every gradient changes no number."""

import importlib.util
from pathlib import Path

import numpy as np

from iwae_lib import adam, models
from iwae_lib.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("adam_order_benchmark", REPO / "benchmarks" / "adam_order.py")
adam_order = importlib.util.module_from_spec(spec)
spec.loader.exec_module(adam_order)


def test_both_orders_train_to_the_same_bits():
    images = np.random.default_rng(0).uniform(size=(2000, 784)).astype(np.float32)
    finals = adam_order.trained_parameters(5, images, 200)
    assert adam.apply_adam is adam_order.WITH_WAIT  # the library's update is restored
    initial = models.init_params(TrainConfig(k=5).model_config(), 0, images.mean(axis=0))
    for name, value in finals["with wait"].items():
        np.testing.assert_array_equal(value, finals["without wait"][name])
        assert np.abs(value - initial[name]).max() > 1e-3  # 200 steps moved every tensor
