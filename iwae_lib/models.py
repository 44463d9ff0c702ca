"""The paper's generative models and inference networks, as pure functions of a parameter dict.

A model with L stochastic layers has latent variables h_1..h_L:

    generative  p(h_L) p(h_{L-1} | h_L) ... p(h_1 | h_2) p(x | h_1)
    inference   q(h_1 | x) q(h_2 | h_1) ... q(h_L | h_{L-1})

Every conditional is a small tanh MLP. Gaussian conditionals have a linear mean and
sigma = exp(linear); p(x | h_1) is Bernoulli with logits from a linear output layer.
Burda et al. use two architectures (their Section 5):

    one stochastic layer:   x(784) -> 200 -> 200 -> h1(50),             decoder mirrored
    two stochastic layers:  x(784) -> 200 -> 200 -> h1(100) -> 100 -> 100 -> h2(50)

Parameters live in a flat ``dict`` mapping names such as ``"enc1/hidden0/w"`` to arrays
(``tf.Variable`` while training, NumPy arrays in ``weights.npz``). Names starting with
``enc`` belong to the inference network, ``dec`` to the generative model.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from iwae_lib import likelihoods
from iwae_lib._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
import tensorflow_probability as tfp  # noqa: E402

tfd = tfp.distributions

X_SIZE = 784
# p(x | h_1): "bernoulli", the paper's, over binary pixels; "discretized_logistic" over 8-bit
# pixel levels 0..255, for one stochastic layer (:mod:`iwae_lib.likelihoods`).
LIKELIHOODS = tuple(likelihoods.LIKELIHOODS)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of a model.

    latent_sizes: sizes of h_1..h_L, e.g. ``(50,)`` or ``(100, 50)``.
    hidden_sizes: for each stochastic layer i, the deterministic tanh layers between the
        layer below (x or h_{i-1}) and h_i; the decoder of layer i uses them reversed.
    x_size: number of observed pixels.
    likelihood: one of LIKELIHOODS. With "discretized_logistic" the data are pixel levels
        0..255, and the output layer ``dec1/logits`` has 2 * x_size outputs (locations,
        then log-scales); see :mod:`iwae_lib.likelihoods`.
    """

    latent_sizes: tuple = (50,)
    hidden_sizes: tuple = ((200, 200),)
    x_size: int = X_SIZE
    likelihood: str = "bernoulli"

    def __post_init__(self):
        latent = tuple(int(s) for s in self.latent_sizes)
        hidden = tuple(tuple(int(s) for s in layer) for layer in self.hidden_sizes)
        object.__setattr__(self, "latent_sizes", latent)
        object.__setattr__(self, "hidden_sizes", hidden)
        if not latent:
            raise ValueError("a model needs at least one stochastic layer (latent_sizes is empty)")
        if len(hidden) != len(latent):
            raise ValueError(
                f"hidden_sizes must give one list of hidden layers per stochastic layer: "
                f"got {len(hidden)} for {len(latent)} stochastic layers"
            )
        if min(latent) < 1 or any(s < 1 for layer in hidden for s in layer) or self.x_size < 1:
            raise ValueError(f"all layer sizes must be positive: {self}")
        most = likelihoods.get(self.likelihood).max_stochastic
        if most is not None and len(latent) > most:
            raise ValueError(f"the {self.likelihood} (8-bit) model has one stochastic layer; "
                             f"got latent_sizes={latent}")

    @property
    def n_stochastic(self) -> int:
        return len(self.latent_sizes)

    @property
    def outputs_per_pixel(self) -> int:
        """Outputs of ``dec1/logits`` per pixel: 1 (Bernoulli logit) or 2 (location, log-scale)."""
        return likelihoods.get(self.likelihood).outputs_per_pixel

    def to_dict(self) -> dict:
        """JSON-friendly; ``likelihood`` only when not the paper's Bernoulli, so the paper's
        models are recorded as they always were."""
        d = {
            "latent_sizes": list(self.latent_sizes),
            "hidden_sizes": [list(h) for h in self.hidden_sizes],
            "x_size": self.x_size,
        }
        if self.likelihood != "bernoulli":
            d["likelihood"] = self.likelihood
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(tuple(d["latent_sizes"]), tuple(tuple(h) for h in d["hidden_sizes"]), d.get("x_size", X_SIZE),
                   d.get("likelihood", "bernoulli"))


def paper_model(n_stochastic: int = 1) -> ModelConfig:
    """The architecture of Burda et al. with 1 or 2 stochastic layers."""
    if n_stochastic == 1:
        return ModelConfig((50,), ((200, 200),))
    if n_stochastic == 2:
        return ModelConfig((100, 50), ((200, 200), (100, 100)))
    raise ValueError(f"the paper has models with 1 or 2 stochastic layers, not {n_stochastic}")


# ----------------------------------------------------------------------------- parameters


def _layer_shapes(config: ModelConfig) -> dict:
    """Names and shapes of every weight matrix; biases follow from the matrices."""
    shapes = {}
    below = [config.x_size, *config.latent_sizes[:-1]]
    for i, (n_in, n_latent, hidden) in enumerate(zip(below, config.latent_sizes, config.hidden_sizes), 1):
        sizes = [n_in, *hidden]
        for j in range(len(hidden)):
            shapes[f"enc{i}/hidden{j}/w"] = (sizes[j], sizes[j + 1])
        shapes[f"enc{i}/mean/w"] = (sizes[-1], n_latent)
        shapes[f"enc{i}/logstd/w"] = (sizes[-1], n_latent)
        dec_sizes = [n_latent, *reversed(hidden)]
        for j in range(len(hidden)):
            shapes[f"dec{i}/hidden{j}/w"] = (dec_sizes[j], dec_sizes[j + 1])
        if i == 1:
            shapes["dec1/logits/w"] = (dec_sizes[-1], n_in * config.outputs_per_pixel)
        else:
            shapes[f"dec{i}/mean/w"] = (dec_sizes[-1], n_in)
            shapes[f"dec{i}/logstd/w"] = (dec_sizes[-1], n_in)
    return shapes


def init_params(config: ModelConfig, seed: int = 0, train_mean: np.ndarray | None = None) -> dict:
    """Fresh parameters as a dict of float32 NumPy arrays.

    Weights are Glorot-uniform, biases zero, except the output bias ``dec1/logits/b``,
    which the likelihood sets from the training-set mean pixel ``train_mean`` [x_size]
    (:attr:`iwae_lib.likelihoods.Likelihood.output_bias`: for the Bernoulli its logit,
    as in the reference implementation).
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, (n_in, n_out) in _layer_shapes(config).items():
        limit = math.sqrt(6.0 / (n_in + n_out))
        params[name] = rng.uniform(-limit, limit, size=(n_in, n_out)).astype(np.float32)
        params[name[:-1] + "b"] = np.zeros(n_out, np.float32)
    if train_mean is not None and np.shape(train_mean) != (config.x_size,):
        raise ValueError(f"train_mean must have shape ({config.x_size},), got {np.shape(train_mean)}")
    bias = likelihoods.get(config.likelihood).output_bias(train_mean, config.x_size)
    if bias is not None:
        params["dec1/logits/b"] = bias
    return params


def as_variables(params: dict) -> dict:
    """The same dict with every array wrapped in a ``tf.Variable`` (for training)."""
    return {name: tf.Variable(value, name=name.replace("/", "_")) for name, value in params.items()}


def to_numpy(params: dict) -> dict:
    """A dict of float32 NumPy arrays, whatever the values were."""
    return {name: np.asarray(value, np.float32) for name, value in params.items()}


def count_params(params: dict) -> int:
    return int(sum(np.prod(np.shape(v)) for v in params.values()))


# ----------------------------------------------------------------------------- networks


PRECISIONS = ("float32", "bfloat16")
# bfloat16 precision: hidden activations stay bf16 (False: bias + tanh in fp32, then cast).
# A switch for benchmarks/precision.py, which measured no consistent difference between the two.
_BF16_HIDDEN = True


def check_precision(precision: str):
    """Raise a ValueError for a precision not in PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def _dense(params, prefix, h, hidden=False):
    """Affine layer on a matrix h [N, n_in] -> [N, n_out] (MatMul + BiasAdd, which
    TensorFlow fuses with a following tanh).

    A bfloat16 h (mixed precision) is multiplied by a bfloat16 copy of the float32 weight
    matrix. An output head's product is cast back to float32 before its float32 bias is
    added, so means, log-std and logits are float32; a hidden layer's stays bfloat16.
    """
    w, b = params[prefix + "/w"], params[prefix + "/b"]
    if h.dtype == tf.float32:
        return tf.nn.bias_add(tf.matmul(h, w), b)
    product = tf.matmul(h, tf.cast(w, h.dtype))
    if hidden and _BF16_HIDDEN:
        return tf.nn.bias_add(product, tf.cast(b, h.dtype))
    return tf.nn.bias_add(tf.cast(product, tf.float32), b)


def _mlp(params, prefix, h, n_hidden):
    dtype = h.dtype
    for j in range(n_hidden):
        h = tf.cast(tf.tanh(_dense(params, f"{prefix}/hidden{j}", h, hidden=True)), dtype)
    return h


def _heads(params, prefix, n_hidden, names, inputs, precision="float32"):
    """Run an MLP and its linear output heads on inputs [..., n]: one matrix product per
    layer over all leading dimensions, the outputs reshaped back to float32 [..., n_out].
    ``precision="bfloat16"``: the matrix products take bfloat16 operands (see _dense)."""
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    leading = tf.shape(inputs)[:-1]
    h = tf.reshape(inputs, [-1, inputs.shape[-1]])
    if precision == "bfloat16":
        h = tf.cast(h, tf.bfloat16)
    h = _mlp(params, prefix, h, n_hidden)
    outs = []
    for name in names:
        out = _dense(params, f"{prefix}/{name}", h)
        outs.append(tf.reshape(out, tf.concat([leading, tf.shape(out)[-1:]], 0)))
    return outs


def encoder_layer(params, config: ModelConfig, i: int, below, precision: str = "float32"):
    """q(h_i | below) for below [..., n_below]: returns (mean, std), each float32 [..., latent_i]."""
    mean, log_std = _heads(params, f"enc{i}", len(config.hidden_sizes[i - 1]), ("mean", "logstd"), below,
                           precision)
    return mean, tf.exp(log_std)


def decoder_layer(params, config: ModelConfig, i: int, h_i, precision: str = "float32"):
    """p(below | h_i) for h_i [..., latent_i]: a TFP distribution over the layer below.

    Layer 1 gives ``Bernoulli(logits)`` over x; higher layers give ``Normal(mean, std)``.
    Its event dimension is not reinterpreted: ``log_prob`` is per unit, [..., n_below].
    """
    if i == 1:
        (logits,) = _heads(params, "dec1", len(config.hidden_sizes[0]), ("logits",), h_i, precision)
        return tfd.Bernoulli(logits=logits, dtype=tf.float32)
    mean, log_std = _heads(params, f"dec{i}", len(config.hidden_sizes[i - 1]), ("mean", "logstd"), h_i,
                           precision)
    return tfd.Normal(mean, tf.exp(log_std))


def decoder_output(params, config: ModelConfig, h_1, precision: str = "float32"):
    """The output layer of p(x | h_1) for h_1 [..., latent_1]: float32 [..., outputs_per_pixel * x_size],
    which the likelihood (:mod:`iwae_lib.likelihoods`) scores."""
    (out,) = _heads(params, "dec1", len(config.hidden_sizes[0]), ("logits",), h_1, precision)
    return out


def _stopped(params):
    return {name: tf.stop_gradient(value) for name, value in params.items()}


def log_weights(params, config: ModelConfig, x, k: int, seed, stop_q_params: bool = False,
                precision: str = "float32"):
    """Importance log-weights log p(x, h) - log q(h | x) for k reparameterised samples.

    Args:
        params: parameter dict (variables or tensors).
        x: [B, x_size] data as the likelihood reads them: binary images (float32) for
            the Bernoulli, pixel levels 0..255 for the discretized logistic.
        k: number of samples per image.
        seed: stateless seed, int32/int64 tensor of shape [2].
        stop_q_params: evaluate log q with the inference network's parameters held
            constant (the samples h still depend on them): this is what the STL and DReG
            estimators differentiate.
        precision: ``"float32"``, or ``"bfloat16"`` for mixed precision: the networks'
            matrix products take bfloat16 operands (bfloat16 copies of the float32
            parameters), while the networks' outputs, the samples and every
            log-probability and sum here stay float32.

    Returns:
        log_w: [k, B] log-weights.
        samples: list of L tensors h_i, each [k, B, latent_i].
    """
    likelihood = likelihoods.get(config.likelihood)
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    q_params = _stopped(params) if stop_q_params and config.n_stochastic > 1 else params
    samples, log_q = [], 0.0
    below = likelihood.encoder_input(x)
    for i, n_latent in enumerate(config.latent_sizes, 1):
        mean, std = encoder_layer(params, config, i, below, precision)
        eps = tf.random.stateless_normal(
            tf.stack([k, batch, n_latent]) if i == 1 else tf.shape(mean),
            seed=tf.random.experimental.stateless_fold_in(seed, i),
        )
        h = mean + std * eps  # layer 1: [k, B, n] by broadcasting; later: same shape as mean
        if stop_q_params and i == 1:  # q(h_1 | x) does not depend on h: stop its outputs
            mean, std = tf.stop_gradient(mean), tf.stop_gradient(std)
        elif stop_q_params:  # q(h_i | h_{i-1}) still depends on the sample below it
            mean, std = encoder_layer(q_params, config, i, below, precision)
        log_q += tf.reduce_sum(tfd.Normal(mean, std).log_prob(h), -1)
        samples.append(h)
        below = h
    log_p = tf.reduce_sum(tfd.Normal(0.0, 1.0).log_prob(samples[-1]), -1)
    for i in range(config.n_stochastic, 1, -1):
        log_p += tf.reduce_sum(decoder_layer(params, config, i, samples[i - 1], precision).log_prob(samples[i - 2]), -1)
    log_p += likelihood.log_prob(decoder_output(params, config, samples[0], precision), x)
    return log_p - log_q, samples


def sample_prior(params, config: ModelConfig, n: int, seed):
    """Ancestral samples from the generative model.

    Returns (pixel probabilities [n, x_size], list of latent samples h_L..h_1).
    """
    _check_bernoulli(config, "sample_prior")
    h = tf.random.stateless_normal([n, config.latent_sizes[-1]], seed=seed)
    latents = [h]
    for i in range(config.n_stochastic, 1, -1):
        h = decoder_layer(params, config, i, h).sample(seed=tf.random.experimental.stateless_fold_in(seed, i))
        latents.append(h)
    return tf.sigmoid(decoder_layer(params, config, 1, h).logits), latents


def _check_bernoulli(config: ModelConfig, what: str):
    if config.likelihood != "bernoulli":
        raise ValueError(f"{what} gives Bernoulli pixel probabilities; for the {config.likelihood} (8-bit) model "
                         "use iwae_lib.quantized.sample_images")


def reconstruct(params, config: ModelConfig, x):
    """Pixel probabilities [B, x_size] decoded from the means of q, layer by layer."""
    _check_bernoulli(config, "reconstruct")
    h = tf.convert_to_tensor(x, tf.float32)
    for i in range(1, config.n_stochastic + 1):
        h, _ = encoder_layer(params, config, i, h)
    for i in range(config.n_stochastic, 1, -1):
        h = decoder_layer(params, config, i, h).mean()
    return tf.sigmoid(decoder_layer(params, config, 1, h).logits)
