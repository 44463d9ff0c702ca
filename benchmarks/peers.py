"""Peer speed benchmark: iwae_lib's compiled training step against JAX and PyTorch, in one run.

What it measures: training steps per second of the paper's one-stochastic-layer IWAE
(784-200-200-50 tanh encoder with a Gaussian q whose std is exp(linear), the mirrored
decoder with Bernoulli logits, the IWAE bound, Adam with beta1 0.9, beta2 0.999, epsilon
1e-4, learning rate 1e-3, each batch of 20 binarized afresh inside the step), for k = 1, 5
and 50, written three ways:

  iwae_lib  the library's own compiled call of 100 steps (``training.make_train_chunk``,
            as training runs it: ``steps_per_call=100``);
  jax       the same model and Adam in plain ``jax.numpy``, ``jax.jit`` over a
            ``jax.lax.scan`` of 100 steps;
  torch     the same in PyTorch, ``torch.compile`` on the loss (forward and, through
            AOTAutograd, backward) and on the optimiser's step (``torch.optim.Adam``),
            100 steps per timed call from a Python loop.

Every framework runs in a subprocess of its own with one thread (TensorFlow:
TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1; JAX: XLA_FLAGS with
--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1; PyTorch:
torch.set_num_threads(1)), and the subprocesses take turns in rounds (iwae_lib, jax,
torch, iwae_lib, jax, torch, ...) so that the load of the machine falls on all of them
alike. Each subprocess times k = 1, 5, 50 in turn: a first call (tracing / compiling, and
one call's steps) and one more call are not timed, then calls of 100 steps are timed
until ``--seconds`` have passed. The table gives the median steps/s over the rounds and
its ratio to iwae_lib; the warm-up (first call less a steady call) is reported apart.

All three start from the same parameters (iwae_lib's initialisation, seed 0, output bias
at the logit of the mean training pixel) and train on the same 2000 MNIST training images
(100 batches, repeated; the binarization and samples differ every step).

The check (run before the timing, or alone with ``--check``): for the same parameters
(biases perturbed so that none is zero), the same binary batch and the same noise
(iwae_lib's own draw for its seed, handed to the others), every framework computes the
IWAE bound per image, its gradient, and three Adam updates from given gradients; the
bound is compared with a float64 NumPy computation written out here, the gradients and
the Adam updates with iwae_lib's. So the timing compares the same computation.

JAX and PyTorch are not dependencies of the book, its tests or CI. Install them in a
separate virtual environment (``pip install torch==2.13.0`` takes a CPU wheel here; a bare
``torch`` would take a CUDA build of several GB)::

    python3 -m venv /work/bench-venv
    /work/bench-venv/bin/pip install -r requirements.txt jax torch==2.13.0

Run (from the repository root)::

    /work/bench-venv/bin/python benchmarks/peers.py --check      # the check alone
    /work/bench-venv/bin/python benchmarks/peers.py --rounds 3 --seconds 10 \\
        --note "what else ran on the machine" --json benchmarks/peers.json

A framework that is not installed is skipped with a message (``python benchmarks/peers.py``
in the project's own environment times iwae_lib alone). Numbers depend on the machine and
on its load; only ratios from one run, rounds interleaved, compare like with like.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("iwae_lib", "jax", "torch")
BATCH = 20
STEPS_PER_CALL = 100
LATENT = 50
LEARNING_RATE = 1e-3
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-4
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
TRAIN_IMAGES = STEPS_PER_CALL * BATCH
CHECK_SEED = (7, 11)
# the layers of the model, in iwae_lib's names (each has "/w" [in, out] and "/b" [out])
ENCODER = ("enc1/hidden0", "enc1/hidden1")
DECODER = ("dec1/hidden0", "dec1/hidden1")

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
THREAD_ENV = {
    "iwae_lib": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
    "jax": {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
            "JAX_PLATFORMS": "cpu"},
    "torch": {"TORCHINDUCTOR_COMPILE_THREADS": "1"},  # and torch.set_num_threads(1) in the worker
}
MISSING = {"jax": "jax is not installed: skipping JAX (pip install jax, in a separate environment)",
           "torch": "torch is not installed: skipping PyTorch (pip install torch==2.13.0, in a separate "
                    "environment)"}


# ----------------------------------------------------------------------------- NumPy float64 reference


def numpy_log_weights(p, x, eps):
    """log p(x, h) - log q(h | x) [k, B] in float64 for binary x [B, 784] and noise eps [k, B, 50]."""
    p = {n: np.asarray(v, np.float64) for n, v in p.items()}
    h = np.asarray(x, np.float64)
    for name in ENCODER:
        h = np.tanh(h @ p[name + "/w"] + p[name + "/b"])
    mean = h @ p["enc1/mean/w"] + p["enc1/mean/b"]
    log_std = h @ p["enc1/logstd/w"] + p["enc1/logstd/b"]
    z = mean + np.exp(log_std) * eps
    log_q = np.sum(-0.5 * ((z - mean) * np.exp(-log_std)) ** 2 - log_std - HALF_LOG_2PI, -1)
    log_prior = np.sum(-0.5 * z * z - HALF_LOG_2PI, -1)
    d = z
    for name in DECODER:
        d = np.tanh(d @ p[name + "/w"] + p[name + "/b"])
    logits = d @ p["dec1/logits/w"] + p["dec1/logits/b"]
    log_px = np.sum(x * logits - np.logaddexp(0.0, logits), -1)
    return log_px + log_prior - log_q


def numpy_bound(p, x, eps):
    """The IWAE bound per image [B]: log mean_k w_k, float64."""
    log_w = numpy_log_weights(p, x, eps)
    top = log_w.max(0)
    return top + np.log(np.mean(np.exp(log_w - top), 0))


def numpy_adam(params, grad_sequence):
    """Parameters after Adam steps t = 1, 2, ... with the given gradients (float64)."""
    theta = {n: np.asarray(v, np.float64) for n, v in params.items()}
    m = {n: np.zeros_like(v) for n, v in theta.items()}
    v = {n: np.zeros_like(a) for n, a in theta.items()}
    for t, grads in enumerate(grad_sequence, 1):
        for n in theta:
            g = np.asarray(grads[n], np.float64)
            m[n] = BETA1 * m[n] + (1 - BETA1) * g
            v[n] = BETA2 * v[n] + (1 - BETA2) * g * g
            m_hat, v_hat = m[n] / (1 - BETA1**t), v[n] / (1 - BETA2**t)
            theta[n] = theta[n] - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + EPSILON)
    return theta


def adam_gradients(grads):
    """Three gradient dicts for the Adam check: g, g / 2 and -g (a sign change in the moments)."""
    return [grads, {n: 0.5 * g for n, g in grads.items()}, {n: -g for n, g in grads.items()}]


def check_params(params, seed=3):
    """The initial parameters with every bias perturbed (N(0, 0.1)): no zero bias hides a wiring error."""
    rng = np.random.default_rng(seed)
    return {n: (v + rng.normal(0.0, 0.1, v.shape).astype(np.float32)) if n.endswith("/b") else v
            for n, v in params.items()}


# ----------------------------------------------------------------------------- iwae_lib


def iwae_lib_prepare(out: Path):
    """Write the shared inputs: initial parameters, the training chunk, the check's batch."""
    from iwae_lib import data, models

    ds = data.load_dataset("mnist")
    params = models.init_params(models.paper_model(1), 0, ds.train_mean)
    np.savez(out / "params.npz", **params)
    np.save(out / "train.npy", ds.train[:TRAIN_IMAGES].reshape(STEPS_PER_CALL, BATCH, -1).astype(np.float32))
    rng = np.random.default_rng(5)
    x = (rng.uniform(size=ds.test[:BATCH].shape) < ds.test[:BATCH]).astype(np.float32)
    np.save(out / "check_x.npy", x)


def iwae_lib_trainer(params, batches, k):
    """``call(first_step)`` -> mean bound of one compiled call of 100 training steps."""
    import iwae_lib  # noqa: F401  (quiet TensorFlow import)
    import tensorflow as tf

    from iwae_lib import adam, models
    from iwae_lib.config import TrainConfig
    from iwae_lib.training import make_train_chunk

    config = TrainConfig(k=k, schedule="constant", epochs=1, steps_per_call=STEPS_PER_CALL)
    variables = models.as_variables(params)
    m, v = adam.zeros_like_params(variables), adam.zeros_like_params(variables)
    chunk = make_train_chunk(variables, m, v, config, dynamic=True)
    x = tf.constant(batches)
    rate = tf.constant(LEARNING_RATE)
    return lambda first: float(chunk(x, rate, tf.constant(first, tf.int64)).numpy())


def iwae_lib_check(params, x, k):
    """iwae_lib's bound [B] and gradient of -mean(bound) for its seed CHECK_SEED, and the noise it drew."""
    import iwae_lib  # noqa: F401
    import tensorflow as tf

    from iwae_lib import estimators, models

    config = models.paper_model(1)
    variables = models.as_variables(params)
    seed = tf.constant(CHECK_SEED, tf.int64)
    bound, grads = tf.function(lambda xb: estimators.loss_and_gradients(variables, config, xb, k, seed))(
        tf.constant(x))
    # models.log_weights draws layer 1's noise with the seed folded with 1: the same draw here
    eps = tf.random.stateless_normal([k, BATCH, LATENT], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    return bound.numpy(), {n: g.numpy() for n, g in grads.items()}, eps.numpy()


def iwae_lib_adam(params, grad_sequence):
    import iwae_lib  # noqa: F401
    import tensorflow as tf

    from iwae_lib import adam, models

    variables = models.as_variables(params)
    m, v = adam.zeros_like_params(variables), adam.zeros_like_params(variables)
    for t, grads in enumerate(grad_sequence, 1):
        adam.apply_adam(variables, {n: tf.constant(g) for n, g in grads.items()}, m, v, tf.constant(float(t)),
                        tf.constant(LEARNING_RATE), BETA1, BETA2, EPSILON)
    return {n: var.numpy() for n, var in variables.items()}


def iwae_lib_version():
    import tensorflow as tf

    return f"tensorflow {tf.__version__}"


# ----------------------------------------------------------------------------- JAX


def _jax_functions():
    import jax
    import jax.numpy as jnp

    def log_weights(p, x, eps):
        h = x
        for name in ENCODER:
            h = jnp.tanh(h @ p[name + "/w"] + p[name + "/b"])
        mean = h @ p["enc1/mean/w"] + p["enc1/mean/b"]
        log_std = h @ p["enc1/logstd/w"] + p["enc1/logstd/b"]
        z = mean + jnp.exp(log_std) * eps  # [k, B, 50]
        log_q = jnp.sum(-0.5 * jnp.square((z - mean) * jnp.exp(-log_std)) - log_std - HALF_LOG_2PI, -1)
        log_prior = jnp.sum(-0.5 * jnp.square(z) - HALF_LOG_2PI, -1)
        d = z.reshape(-1, LATENT)
        for name in DECODER:
            d = jnp.tanh(d @ p[name + "/w"] + p[name + "/b"])
        logits = (d @ p["dec1/logits/w"] + p["dec1/logits/b"]).reshape(eps.shape[0], eps.shape[1], -1)
        log_px = jnp.sum(x * logits - jax.nn.softplus(logits), -1)
        return log_px + log_prior - log_q

    def bound(p, x, eps):
        return jax.nn.logsumexp(log_weights(p, x, eps), 0) - math.log(eps.shape[0])

    def loss(p, x, eps):
        b = bound(p, x, eps)
        return -jnp.mean(b), b

    def adam_update(p, m, v, g, t):
        m = jax.tree_util.tree_map(lambda a, b: BETA1 * a + (1 - BETA1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: BETA2 * a + (1 - BETA2) * b * b, v, g)
        c1, c2 = 1 - BETA1**t, 1 - BETA2**t
        p = jax.tree_util.tree_map(lambda a, mm, vv: a - LEARNING_RATE * (mm / c1) / (jnp.sqrt(vv / c2) + EPSILON),
                                   p, m, v)
        return p, m, v

    return jax, jnp, loss, adam_update


def jax_trainer(params, batches, k):
    jax, jnp, loss, adam_update = _jax_functions()
    key = jax.random.key(0)

    def step(state, inputs):
        p, m, v = state
        x_prob, t = inputs  # t: the 1-based update number
        k_bin, k_eps = jax.random.split(jax.random.fold_in(key, t))
        x = (jax.random.uniform(k_bin, x_prob.shape) < x_prob).astype(jnp.float32)
        eps = jax.random.normal(k_eps, (k, BATCH, LATENT))
        (value, _), grads = jax.value_and_grad(loss, has_aux=True)(p, x, eps)
        p, m, v = adam_update(p, m, v, grads, t.astype(jnp.float32))
        return (p, m, v), value

    @jax.jit
    def chunk(state, xs, first):
        ts = first + 1 + jnp.arange(xs.shape[0], dtype=jnp.int32)
        state, values = jax.lax.scan(step, state, (xs, ts))
        return state, -jnp.mean(values)

    p = {n: jnp.asarray(a) for n, a in params.items()}
    state = [(p, jax.tree_util.tree_map(jnp.zeros_like, p), jax.tree_util.tree_map(jnp.zeros_like, p))]
    xs = jnp.asarray(batches)

    def call(first):
        state[0], value = chunk(state[0], xs, jnp.int32(first))
        return float(value.block_until_ready())

    return call


def jax_check(params, x, eps):
    jax, jnp, loss, _ = _jax_functions()
    p = {n: jnp.asarray(a) for n, a in params.items()}
    (_, bound), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(p, jnp.asarray(x), jnp.asarray(eps))
    return np.asarray(bound), {n: np.asarray(g) for n, g in grads.items()}


def jax_adam(params, grad_sequence):
    jax, jnp, _, adam_update = _jax_functions()
    p = {n: jnp.asarray(a) for n, a in params.items()}
    m, v = jax.tree_util.tree_map(jnp.zeros_like, p), jax.tree_util.tree_map(jnp.zeros_like, p)
    update = jax.jit(adam_update)
    for t, grads in enumerate(grad_sequence, 1):
        p, m, v = update(p, m, v, {n: jnp.asarray(g) for n, g in grads.items()}, jnp.float32(t))
    return {n: np.asarray(a) for n, a in p.items()}


def jax_version():
    import jax
    import jaxlib

    return f"jax {jax.__version__}, jaxlib {jaxlib.__version__}"


# ----------------------------------------------------------------------------- PyTorch


def _torch_functions():
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass

    def log_weights(p, x, eps):
        h = x
        for name in ENCODER:
            h = torch.tanh(torch.addmm(p[name + "/b"], h, p[name + "/w"]))
        mean = torch.addmm(p["enc1/mean/b"], h, p["enc1/mean/w"])
        log_std = torch.addmm(p["enc1/logstd/b"], h, p["enc1/logstd/w"])
        z = mean + torch.exp(log_std) * eps  # [k, B, 50]
        log_q = torch.sum(-0.5 * torch.square((z - mean) * torch.exp(-log_std)) - log_std - HALF_LOG_2PI, -1)
        log_prior = torch.sum(-0.5 * torch.square(z) - HALF_LOG_2PI, -1)
        d = z.reshape(-1, LATENT)
        for name in DECODER:
            d = torch.tanh(torch.addmm(p[name + "/b"], d, p[name + "/w"]))
        logits = torch.addmm(p["dec1/logits/b"], d, p["dec1/logits/w"]).reshape(eps.shape[0], eps.shape[1], -1)
        log_px = torch.sum(x * logits - torch.nn.functional.softplus(logits), -1)
        return log_px + log_prior - log_q

    def bound(p, x, eps):
        return torch.logsumexp(log_weights(p, x, eps), 0) - math.log(eps.shape[0])

    return torch, bound


def _torch_params(torch, params):
    return {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}


def _torch_adam(torch, p):
    return torch.optim.Adam(list(p.values()), lr=LEARNING_RATE, betas=(BETA1, BETA2), eps=EPSILON)


def torch_trainer(params, batches, k):
    torch, bound = _torch_functions()
    torch.manual_seed(0)
    p = _torch_params(torch, params)
    optimizer = _torch_adam(torch, p)

    @torch.compile
    def loss(x_prob):
        x = (torch.rand_like(x_prob) < x_prob).to(torch.float32)
        eps = torch.randn(k, BATCH, LATENT)
        return -torch.mean(bound(p, x, eps))

    @torch.compile
    def optimizer_step():
        optimizer.step()

    xs = torch.from_numpy(batches)

    def call(first):
        total = 0.0
        for i in range(xs.shape[0]):
            optimizer.zero_grad(set_to_none=True)
            value = loss(xs[i])
            value.backward()
            optimizer_step()
            total += value.detach()
        return float(-total / xs.shape[0])

    return call


def torch_check(params, x, eps):
    torch, bound = _torch_functions()
    p = _torch_params(torch, params)
    compiled = torch.compile(bound)
    b = compiled(p, torch.from_numpy(x), torch.from_numpy(eps))
    (-b.mean()).backward()
    return b.detach().numpy(), {n: t.grad.numpy() for n, t in p.items()}


def torch_adam(params, grad_sequence):
    torch, _ = _torch_functions()
    p = _torch_params(torch, params)
    optimizer = _torch_adam(torch, p)
    for grads in grad_sequence:
        for n, t in p.items():
            t.grad = torch.from_numpy(np.asarray(grads[n], np.float32))
        optimizer.step()
    return {n: t.detach().numpy() for n, t in p.items()}


def torch_version():
    import torch

    return f"torch {torch.__version__}"


# ----------------------------------------------------------------------------- workers


TRAINERS = {"iwae_lib": iwae_lib_trainer, "jax": jax_trainer, "torch": torch_trainer}
VERSIONS = {"iwae_lib": iwae_lib_version, "jax": jax_version, "torch": torch_version}
MODULES = {"iwae_lib": "tensorflow", "jax": "jax", "torch": "torch"}


def time_calls(call, seconds: float) -> dict:
    """Steps/s of calls of STEPS_PER_CALL steps, after a first (compiling) and a second call."""
    start = time.perf_counter()
    call(0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    call(STEPS_PER_CALL)
    second = time.perf_counter() - start
    steps, elapsed, done = 0, 0.0, 2 * STEPS_PER_CALL
    start = time.perf_counter()
    while steps == 0 or elapsed < seconds:  # at least one timed call
        value = call(done)
        done += STEPS_PER_CALL
        steps += STEPS_PER_CALL
        elapsed = time.perf_counter() - start
    return {"steps_per_s": steps / elapsed, "steps": steps, "seconds": elapsed,
            "warmup_s": max(0.0, first - second), "first_call_s": first, "last_mean_bound": value}


def speed_worker(framework: str, folder: Path, ks, seconds: float) -> dict:
    with np.load(folder / "params.npz") as archive:
        params = {n: archive[n] for n in archive.files}
    batches = np.load(folder / "train.npy")
    result = {"version": VERSIONS[framework](), "k": {}}
    for k in ks:
        result["k"][str(k)] = time_calls(TRAINERS[framework](params, batches, k), seconds)
    return result


def check_worker(framework: str, folder: Path, ks) -> dict:
    with np.load(folder / "params.npz") as archive:
        params = check_params({n: archive[n] for n in archive.files})
    x = np.load(folder / "check_x.npy")
    for k in ks:
        if framework == "iwae_lib":
            bound, grads, eps = iwae_lib_check(params, x, k)
            np.save(folder / f"check_eps_k{k}.npy", eps)
            np.savez(folder / f"check_grads_k{k}.npz", **grads)  # the Adam check's gradients
        else:
            eps = np.load(folder / f"check_eps_k{k}.npy")
            bound, grads = (jax_check if framework == "jax" else torch_check)(params, x, eps)
        np.savez(folder / f"check_{framework}_k{k}.npz", bound=bound, **{"grad:" + n: g for n, g in grads.items()})
    with np.load(folder / f"check_grads_k{ks[-1]}.npz") as archive:
        grads = {n: archive[n] for n in archive.files}
    adam = {"iwae_lib": iwae_lib_adam, "jax": jax_adam, "torch": torch_adam}[framework]
    np.savez(folder / f"check_{framework}_adam.npz", **adam(params, adam_gradients(grads)))
    return {"version": VERSIONS[framework]()}


def worker(args) -> int:
    folder = Path(args.folder)
    out = folder / f"{args.worker}_{args.tag}.json"
    try:
        __import__(MODULES[args.worker])
    except ImportError:
        out.write_text(json.dumps({"skipped": MISSING[args.worker]}))
        return 0
    ks = [int(k) for k in args.k]
    if args.tag == "prepare":
        iwae_lib_prepare(folder)
        result = {}
    elif args.tag == "probe":
        result = {"version": VERSIONS[args.worker]()}
    elif args.tag == "check":
        result = check_worker(args.worker, folder, ks)
    else:
        result = speed_worker(args.worker, folder, ks, args.seconds)
    out.write_text(json.dumps(result))
    return 0


def run_worker(framework: str, folder: Path, tag: str, ks, seconds: float = 0.0) -> dict:
    """Run one worker subprocess (one thread) and return what it wrote."""
    env = dict(os.environ, **ONE_THREAD, **THREAD_ENV[framework])
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, "--folder", str(folder),
               "--tag", tag, "--seconds", str(seconds), "--k", *map(str, ks)]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    out = folder / f"{framework}_{tag}.json"
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"the {framework} worker ({tag}) failed with code {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return json.loads(out.read_text())


# ----------------------------------------------------------------------------- the check


def relative_error(a, b) -> float:
    """max |a - b| / max |b| (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a)))


# tolerances of a float32 computation against float64 or another float32 one
BOUND_RTOL = 2e-5  # of |bound| (about 100-550 nats here): float32 sums over 784 pixels
GRAD_RTOL = 1e-3  # of the largest gradient entry, per tensor
ADAM_TOL = 1e-6  # |param - float64| / max(|param|, 1) after three updates of about 1e-3 each


def compare(folder: Path, frameworks, ks) -> dict:
    """Compare the check files the workers wrote; returns a JSON-ready summary with ``passed``."""
    with np.load(folder / "params.npz") as archive:
        params = check_params({n: archive[n] for n in archive.files})
    x = np.load(folder / "check_x.npy")
    summary = {"k": {}, "tolerances": {"bound_rtol": BOUND_RTOL, "grad_rtol": GRAD_RTOL, "adam_tol": ADAM_TOL}}
    passed = True
    for k in ks:
        eps = np.load(folder / f"check_eps_k{k}.npy")
        reference = numpy_bound(params, x, eps)
        with np.load(folder / f"check_iwae_lib_k{k}.npz") as archive:
            lib_grads = {n[5:]: archive[n] for n in archive.files if n.startswith("grad:")}
        rows = {"mean_bound_float64": float(reference.mean())}
        for fw in frameworks:
            with np.load(folder / f"check_{fw}_k{k}.npz") as archive:
                bound = archive["bound"]
                grads = {n[5:]: archive[n] for n in archive.files if n.startswith("grad:")}
            bound_err = float(np.max(np.abs(bound - reference) / np.abs(reference)))
            row = {"bound_max_abs_diff_nats": float(np.max(np.abs(bound - reference))), "bound_max_rel_diff": bound_err}
            ok = bound_err <= BOUND_RTOL
            if fw != "iwae_lib":
                grad_err = max(relative_error(grads[n], lib_grads[n]) for n in lib_grads)
                row["grad_max_rel_diff_to_iwae_lib"] = grad_err
                ok = ok and grad_err <= GRAD_RTOL and set(grads) == set(lib_grads)
            row["ok"] = bool(ok)
            passed = passed and ok
            rows[fw] = row
        summary["k"][str(k)] = rows
    with np.load(folder / f"check_grads_k{ks[-1]}.npz") as archive:
        expected = numpy_adam(params, adam_gradients({n: archive[n] for n in archive.files}))
    summary["adam_max_diff_to_float64"] = {}
    for fw in frameworks:
        with np.load(folder / f"check_{fw}_adam.npz") as archive:
            diff = max(float(np.max(np.abs(archive[n] - expected[n]) / np.maximum(np.abs(expected[n]), 1.0)))
                       for n in expected)
        summary["adam_max_diff_to_float64"][fw] = diff
        passed = passed and diff <= ADAM_TOL
    summary["passed"] = bool(passed)
    return summary


def print_check(summary: dict):
    for k, rows in summary["k"].items():
        parts = [f"{fw} bound {row['bound_max_abs_diff_nats']:.1e} nats"
                 + (f", grad {row['grad_max_rel_diff_to_iwae_lib']:.1e}" if "grad_max_rel_diff_to_iwae_lib" in row else "")
                 for fw, row in rows.items() if isinstance(row, dict)]
        print(f"check k={k:>2} (mean bound {rows['mean_bound_float64']:.3f}, float64): " + "; ".join(parts))
    print("check Adam, 3 updates, max |param - float64| / max(|param|, 1): "
          + ", ".join(f"{fw} {d:.1e}" for fw, d in summary["adam_max_diff_to_float64"].items()))
    print("check " + ("PASSED" if summary["passed"] else "FAILED") + " (tolerances: " + ", ".join(
        f"{n} {v:g}" for n, v in summary["tolerances"].items()) + ")", flush=True)


# ----------------------------------------------------------------------------- the run


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        return rev or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def busiest_processes(n=4) -> list:
    """The n processes with the most CPU (ps's average over each one's life): nice, %CPU, command."""
    try:
        lines = subprocess.run(["ps", "-eo", "pid=,ni=,pcpu=,args=", "--sort=-pcpu"], capture_output=True,
                               text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in lines:
        pid, nice, cpu, command = line.split(None, 3)
        if int(pid) != os.getpid() and float(cpu) >= 5.0:
            rows.append({"nice": nice, "cpu_percent": float(cpu), "command": command[:100]})
    return rows[:n]


def load_now() -> dict:
    return {"time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()], "busiest_processes": busiest_processes()}


def summarise(rounds, frameworks, ks) -> dict:
    medians, ratios, warmups, ranges = {}, {}, {}, {}
    for fw in frameworks:
        medians[fw] = {str(k): statistics.median(r[fw]["k"][str(k)]["steps_per_s"] for r in rounds) for k in ks}
        warmups[fw] = {str(k): statistics.median(r[fw]["k"][str(k)]["warmup_s"] for r in rounds) for k in ks}
        ranges[fw] = {str(k): [min(r[fw]["k"][str(k)]["steps_per_s"] for r in rounds),
                               max(r[fw]["k"][str(k)]["steps_per_s"] for r in rounds)] for k in ks}
        if "iwae_lib" in frameworks:
            ratios[fw] = {str(k): medians[fw][str(k)] / medians["iwae_lib"][str(k)] for k in ks}
    return {"median_steps_per_s": medians, "range_steps_per_s": ranges, "ratio_to_iwae_lib": ratios,
            "median_warmup_s": warmups}


def print_table(summary, frameworks, ks):
    med, ratio, rng, warm = (summary["median_steps_per_s"], summary["ratio_to_iwae_lib"], summary["range_steps_per_s"],
                             summary["median_warmup_s"])
    print("\nsteps/s at batch 20, median over rounds [min-max]; ratio to iwae_lib")
    print("| k | " + " | ".join(frameworks) + " |")
    print("| ---: |" + " ---: |" * len(frameworks))
    for k in map(str, ks):
        cells = [f"{med[fw][k]:.0f} [{rng[fw][k][0]:.0f}-{rng[fw][k][1]:.0f}]"
                 + (f" x{ratio[fw][k]:.2f}" if fw in ratio and fw != "iwae_lib" else "") for fw in frameworks]
        print(f"| {k} | " + " | ".join(cells) + " |")
    print("warm-up (first call less a steady one), median s: " + "; ".join(
        f"{fw} " + ", ".join(f"k={k} {warm[fw][str(k)]:.1f}" for k in ks) for fw in frameworks), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that the implementations agree")
    parser.add_argument("--no-check", action="store_true", help="time without the check first")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (iwae_lib, jax, torch) subprocesses")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per framework, k and round")
    parser.add_argument("--k", nargs="+", type=int, default=[1, 5, 50])
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--note", default="", help="conditions to record (what else ran on the machine)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.exit(worker(args))
    if "iwae_lib" not in args.frameworks:
        parser.error("iwae_lib is the reference: keep it in --frameworks")
    frameworks = [fw for fw in FRAMEWORKS if fw in args.frameworks]
    ks = sorted(set(args.k))
    out = {"command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
           "git_revision": git_revision(), "cpu": {"model": cpu_model(), "cores": os.cpu_count()}, "note": args.note, "load_at_start": load_now(),
           "settings": {"batch": BATCH, "steps_per_call": STEPS_PER_CALL, "rounds": args.rounds,
                        "seconds_per_timing": args.seconds, "learning_rate": LEARNING_RATE,
                        "adam": [BETA1, BETA2, EPSILON],
                        "threads": {fw: dict(ONE_THREAD, **THREAD_ENV[fw]) for fw in frameworks}}}
    print(f"CPU: {out['cpu']['model']}, {out['cpu']['cores']} cores; load {out['load_at_start']['loadavg_1_5_15']}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="iwae_peers_") as tmp:
        folder = Path(tmp)
        run_worker("iwae_lib", folder, "prepare", ks)
        versions = {}
        for fw in frameworks:  # which peers are installed (and their versions)
            if fw != "iwae_lib" and "skipped" in run_worker(fw, folder, "probe", ks):
                print(MISSING[fw], flush=True)
                continue
            versions[fw] = None
        frameworks = list(versions)
        if not args.no_check:
            for fw in frameworks:
                versions[fw] = run_worker(fw, folder, "check", ks)["version"]
            out["check"] = compare(folder, frameworks, ks)
            print_check(out["check"])
        if not args.check:
            rounds = []
            for r in range(args.rounds):
                rounds.append({})
                for fw in frameworks:
                    result = run_worker(fw, folder, f"round{r}", ks, args.seconds)
                    versions[fw] = result["version"]
                    rounds[-1][fw] = {"k": result["k"]}
                    print(f"round {r + 1}/{args.rounds} {fw}: " + ", ".join(
                        f"k={k} {v['steps_per_s']:.0f} steps/s" for k, v in result["k"].items()), flush=True)
            out.update(summarise(rounds, frameworks, ks))
            out["rounds"] = [{fw: {k: {"steps_per_s": round(v["steps_per_s"], 2), "steps": v["steps"],
                                       "warmup_s": round(v["warmup_s"], 2)} for k, v in r[fw]["k"].items()}
                              for fw in r} for r in rounds]
            print_table(out, frameworks, ks)
    out["versions"] = versions
    out["load_at_end"] = load_now()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    if "check" in out and not out["check"]["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
