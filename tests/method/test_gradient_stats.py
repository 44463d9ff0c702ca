"""Gradient variance and signal-to-noise ratio; PIWAE's gradient."""

import numpy as np
import pytest

from iwae_lib import estimators, models
from iwae_lib.chapters import gradient_stats
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()

TINY = models.ModelConfig((2,), ((8,),), x_size=4)


def _tiny_problem(seed=0, batch=1):
    x = (np.random.default_rng(seed).random((batch, TINY.x_size)) < 0.5).astype(np.float32)
    return models.init_params(TINY, seed), x


def test_snr_of_gaussian_samples_is_mean_over_std():
    rng = np.random.default_rng(0)
    mu = np.array([0.5, -2.0, 3.0, 0.0])
    s = np.array([1.0, 0.5, 6.0, 2.0])
    samples = mu + s * rng.standard_normal((20000, 4))
    np.testing.assert_allclose(gradient_stats.snr(samples), np.abs(mu) / s, atol=0.03)
    np.testing.assert_allclose(gradient_stats.gradient_variance(samples), s**2, rtol=0.03)


def test_snr_marks_constant_parameters_as_nan_and_summary_skips_them():
    samples = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 6.0]])
    out = gradient_stats.snr(samples)
    assert np.isnan(out[0]) and out[1] == pytest.approx(4.0 / 2.0)
    rows = gradient_stats.summarize({"encoder": samples, "decoder": samples * 2})
    assert [r["network"] for r in rows] == ["encoder", "decoder"]
    assert rows[0]["mean_snr"] == pytest.approx(2.0)
    assert rows[1]["mean_variance"] == pytest.approx((0.0 + 16.0) / 2)
    with pytest.raises(ValueError, match="R >= 2"):
        gradient_stats.snr(np.ones((1, 3)))


def test_gradient_samples_shapes_order_and_mean_match_the_estimator():
    params, x = _tiny_problem(batch=3)
    samples = gradient_stats.gradient_samples(params, TINY, x, k=5, n_repeats=4, seed=7)
    n_enc = sum(v.size for n, v in params.items() if n.startswith("enc"))
    n_dec = sum(v.size for n, v in params.items() if n.startswith("dec"))
    assert samples["encoder"].shape == (4, n_enc) and samples["decoder"].shape == (4, n_dec)
    # Repeat 2 is the estimator called with seed (7, 2), flattened in sorted-name order.
    _, grads = estimators.loss_and_gradients(models.as_variables(params), TINY, x, 5, tf.constant([7, 2], tf.int64))
    names = gradient_stats.split_networks(params)
    expected = np.concatenate([grads[n].numpy().ravel() for n in names["decoder"]])
    np.testing.assert_allclose(samples["decoder"][2], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(samples["decoder"][0], samples["decoder"][1])  # repeats differ


def test_bad_arguments_give_clear_errors():
    params, x = _tiny_problem()
    with pytest.raises(ValueError, match="n_repeats"):
        gradient_stats.gradient_samples(params, TINY, x, k=2, n_repeats=1)
    with pytest.raises(ValueError, match=r"shape \[B, 4\]"):
        gradient_stats.gradient_samples(params, TINY, np.zeros((2, 5)), k=2, n_repeats=2)
    with pytest.raises(ValueError, match="DReG"):
        gradient_stats.estimator_gradient_fn(TINY, 5, "dreg", "vae")
    with pytest.raises(ValueError, match="divisible"):
        gradient_stats.piwae_gradient_fn(TINY, 5, "miwae", miwae_groups=2)


def test_piwae_takes_encoder_gradients_from_its_bound_and_decoder_gradients_from_iwae():
    params, x = _tiny_problem(batch=2)
    variables = models.as_variables(params)
    seed = tf.constant([3, 4], tf.int64)
    bound, grads = gradient_stats.piwae_gradients(variables, TINY, x, 6, seed, "miwae", miwae_groups=3)
    iwae, iwae_grads = estimators.loss_and_gradients(variables, TINY, x, 6, seed, "iwae")
    _, miwae_grads = estimators.loss_and_gradients(variables, TINY, x, 6, seed, "miwae", miwae_groups=3)
    np.testing.assert_allclose(bound.numpy(), iwae.numpy())
    for name in params:
        source = miwae_grads if name.startswith("enc") else iwae_grads
        np.testing.assert_allclose(grads[name].numpy(), source[name].numpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(grads["enc1/mean/w"].numpy(), iwae_grads["enc1/mean/w"].numpy())


def test_rainforth_encoder_snr_falls_and_decoder_snr_rises_with_k_while_dreg_does_not_fall():
    """Rainforth et al. (2018): standard IWAE gradients have encoder SNR O(1/sqrt(k)) and
    decoder SNR O(sqrt(k)); DReG's encoder SNR does not vanish. One image, k = 2 vs 200."""
    params, x = _tiny_problem(seed=0)
    rows = gradient_stats.snr_sweep(params, TINY, x, ks=(2, 200), estimators_to_compare=("standard", "dreg"),
                                    n_repeats=100, seed=0)
    snr = {(r["k"], r["estimator"], r["network"]): r["mean_snr"] for r in rows}
    assert len(rows) == 8
    assert snr[200, "standard", "encoder"] < 0.5 * snr[2, "standard", "encoder"]
    assert snr[200, "standard", "decoder"] > 3.0 * snr[2, "standard", "decoder"]
    assert snr[200, "dreg", "encoder"] > 5.0 * snr[200, "standard", "encoder"]
    assert snr[200, "dreg", "decoder"] == pytest.approx(snr[200, "standard", "decoder"], rel=1e-6)
