"""Speed benchmark: iwae_lib against a plain TensorFlow implementation, in one process.

Prints (and writes as JSON with --json):
  * the fp32 matmul rate of the model's own layer shapes (the practical peak here);
  * training steps/s of the 1-stochastic-layer model at batch 20 for k = 1, 5, 50, for
    iwae_lib's compiled multi-step training function and for a plain per-step
    ``@tf.function`` with a tf.data pipeline and a Keras Adam optimiser;
  * GFLOP/s of the k=50 step as a fraction of the peak;
  * the time of a k=5000 log-likelihood evaluation of the test images, both ways.

Run:  python benchmarks/speed.py [--eval-images 10000] [--json benchmarks/results.json]
Numbers depend on the machine and on what else runs on it; the ratios compare runs made
back to back in the same process.
"""

import argparse
import json
import math
import time

import numpy as np

import iwae_lib  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf
import tensorflow_probability as tfp

from iwae_lib import adam, evaluation, models, runinfo
from iwae_lib.config import TrainConfig
from iwae_lib.training import make_train_chunk

tfd = tfp.distributions
BATCH = 20


def layer_macs(config, k):
    """Multiply-adds of one forward pass for a batch of BATCH images with k samples."""
    shapes = models._layer_shapes(config)
    enc = sum(a * b for n, (a, b) in shapes.items() if n.startswith("enc1"))
    dec = sum(a * b for n, (a, b) in shapes.items() if n.startswith("dec1"))
    return BATCH * enc + BATCH * k * dec


def step_flops(config, k):
    """FLOPs of one training step: forward + backward (about 2x forward) of the matmuls."""
    return 3 * 2 * layer_macs(config, k)


def matmul_peak(seconds=3.0):
    """GFLOP/s of fp32 matmuls with the model's largest shapes (forward and backward)."""
    rates = {}
    for (m, n, p) in [(1000, 200, 784), (1000, 784, 200), (200, 1000, 784), (1000, 200, 200)]:
        a = tf.random.normal([m, n])
        b = tf.random.normal([n, p])

        @tf.function
        def repeat(a, b, times):
            acc = tf.zeros([m, p])
            for _ in tf.range(times):
                acc += tf.matmul(a, b)
            return acc

        repeat(a, b, tf.constant(2))
        times = 20
        while True:
            start = time.perf_counter()
            repeat(a, b, tf.constant(times)).numpy()
            elapsed = time.perf_counter() - start
            if elapsed > seconds / 4:
                break
            times *= 2
        rates[f"{m}x{n}x{p}"] = 2 * m * n * p * times / elapsed / 1e9
    return rates


def library_steps_per_second(config, k, train_x, steps):
    cfg = TrainConfig(k=k, schedule="constant", epochs=1)
    params = models.as_variables(models.init_params(config, 0, train_x.mean(0)))
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
    chunk = make_train_chunk(params, m, v, cfg, dynamic=True)
    per_call = cfg.steps_per_call
    batches = train_x[: per_call * BATCH].reshape(per_call, BATCH, -1)
    chunk(batches, tf.constant(1e-3), tf.constant(0, tf.int64))  # trace
    start = time.perf_counter()
    done = 0
    while done < steps:
        chunk(batches, tf.constant(1e-3), tf.constant(done, tf.int64)).numpy()
        done += per_call
    return done / (time.perf_counter() - start)


def plain_log_weights(params, config, x, k):
    """log w [k, B] the obvious way: TFP distributions for q, the prior and p(x | h)."""
    mean, std = models.encoder_layer(params, config, 1, x)
    q = tfd.Normal(mean, std)
    h = q.sample(k)
    logits = models.decoder_layer(params, config, 1, h).logits
    return (tf.reduce_sum(tfd.Normal(0.0, 1.0).log_prob(h) - q.log_prob(h), -1)
            + tf.reduce_sum(tfd.Bernoulli(logits=logits).log_prob(x), -1))


def plain_steps_per_second(config, k, train_x, steps):
    """The obvious implementation: tf.data batches, one @tf.function call per step."""
    params = models.as_variables(models.init_params(config, 0, train_x.mean(0)))
    variables = list(params.values())
    optimizer = tf.keras.optimizers.Adam(1e-3, 0.9, 0.999, 1e-4)
    dataset = (tf.data.Dataset.from_tensor_slices(train_x).shuffle(len(train_x), seed=0).repeat()
               .batch(BATCH).map(lambda x: tf.cast(tf.random.uniform(tf.shape(x)) < x, tf.float32)).prefetch(2))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(tf.reduce_logsumexp(plain_log_weights(params, config, x, k), 0) - math.log(k))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    it = iter(dataset)
    for _ in range(5):
        step(next(it))
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(next(it))
    loss.numpy()
    return steps / (time.perf_counter() - start)


def plain_log_likelihood(params, config, x, k=5000, batch_images=10):
    """The obvious k=5000 evaluation: all k samples of a few images at once."""
    tensors = {n: tf.constant(v) for n, v in params.items()}

    @tf.function
    def batch_ll(xb):
        return tf.reduce_logsumexp(plain_log_weights(tensors, config, xb, k), 0) - math.log(k)

    return np.concatenate([batch_ll(x[i:i + batch_images]).numpy() for i in range(0, len(x), batch_images)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-images", type=int, default=10000, help="test images for the k=5000 timing")
    parser.add_argument("--steps", type=int, default=300, help="training steps timed per setting")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    from iwae_lib import data

    ds = data.load_dataset("mnist")
    config = models.paper_model(1)
    out = {"environment": runinfo.environment(), "batch_size": BATCH}
    peak = matmul_peak()
    out["matmul_gflops"] = peak
    out["peak_gflops"] = max(peak.values())
    print("fp32 matmul, model shapes (GFLOP/s): " + ", ".join(f"{s}: {r:.1f}" for s, r in peak.items()))
    rows = []
    for k, steps in ((1, args.steps * 3), (5, args.steps), (50, max(100, args.steps // 3))):
        lib = library_steps_per_second(config, k, ds.train, steps)
        plain = plain_steps_per_second(config, k, ds.train, steps)
        gflops = lib * step_flops(config, k) / 1e9
        rows.append({"k": k, "library_steps_per_s": lib, "plain_steps_per_s": plain, "speedup": lib / plain,
                     "library_gflops": gflops, "fraction_of_peak": gflops / out["peak_gflops"]})
        print(f"train k={k:>2}: iwae_lib {lib:7.1f} steps/s, plain {plain:7.1f} steps/s, x{lib / plain:.2f}; "
              f"{gflops:.1f} GFLOP/s = {100 * gflops / out['peak_gflops']:.0f}% of peak", flush=True)
    out["training"] = rows

    params = models.init_params(config, 0, ds.train_mean)
    x = ds.test[: args.eval_images]
    start = time.perf_counter()
    lib_ll = evaluation.log_likelihood(params, config, x, k=5000, progress=False)
    lib_s = time.perf_counter() - start
    plain_n = min(len(x), 1000)
    start = time.perf_counter()
    plain_ll = plain_log_likelihood(params, config, x[:plain_n])
    plain_s = (time.perf_counter() - start) * len(x) / plain_n
    out["evaluation"] = {"images": len(x), "k": 5000, "library_seconds": lib_s,
                         "plain_seconds_extrapolated": plain_s, "plain_images_timed": plain_n,
                         "speedup": plain_s / lib_s,
                         "mean_abs_difference_nats": float(np.mean(np.abs(lib_ll[:plain_n] - plain_ll)))}
    print(f"k=5000 evaluation of {len(x)} test images: iwae_lib {lib_s:.1f} s, plain {plain_s:.1f} s "
          f"(timed on {plain_n} images), x{plain_s / lib_s:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
