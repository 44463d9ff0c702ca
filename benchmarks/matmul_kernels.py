"""Where JAX's lead at k=50 comes from: the matrix products of the model, TensorFlow against JAX.

At k=50 a training step of the one-layer IWAE pushes k * B = 1000 samples through the
decoder, so its time goes to a few matrix products of fixed shapes (``SHAPES``). This script
times each shape alone in both frameworks, one thread each, in the way each runs the step:
TensorFlow's ``tf.function`` (oneDNN kernels, op by op, as ``iwae_lib`` trains) and JAX's
``jax.jit`` (XLA:CPU, fusing what follows the product). Each timed call is a loop of 50
products ``s += (a + i * 1e-9) @ b`` (the added term keeps XLA from hoisting the product out
of the loop), plain or followed by ``tanh`` (the hidden layers); the result is GFLOP/s of the
products alone (2 m k n per product). Frameworks run in subprocesses of their own, taking
turns over ``--rounds``; the table gives the median over rounds and JAX's ratio to TensorFlow.

JAX is not a dependency of the book: run it from the environment of ``benchmarks/peers.py``::

    /work/bench-venv/bin/python benchmarks/matmul_kernels.py --rounds 3 --json benchmarks/matmul_kernels.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# (m, k, n) of the products of one k=50 step, batch 20: the decoder's three layers on 1000
# samples, then the encoder's first layer on the 20 images
SHAPES = ((1000, 50, 200), (1000, 200, 200), (1000, 200, 784), (20, 784, 200))
PRODUCTS_PER_CALL = 50
ONE_THREAD = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
              "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}


def seconds_per_call(call, calls: int) -> float:
    call()  # compile
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls


def tensorflow_loop(a, b, activation: bool):
    import tensorflow as tf

    a, b = tf.constant(a), tf.Variable(b)

    @tf.function
    def loop():
        s = tf.zeros([a.shape[0], b.shape[1]])
        for i in tf.range(PRODUCTS_PER_CALL):
            product = (a + tf.cast(i, tf.float32) * 1e-9) @ b
            s += tf.tanh(product) if activation else product
        return s

    return lambda: loop().numpy()


def jax_loop(a, b, activation: bool):
    import jax
    import jax.numpy as jnp

    a, b = jnp.asarray(a), jnp.asarray(b)

    @jax.jit
    def loop(a, b):
        def body(i, s):
            product = (a + i * 1e-9) @ b
            return s + (jnp.tanh(product) if activation else product)

        return jax.lax.fori_loop(0, PRODUCTS_PER_CALL, body, jnp.zeros((a.shape[0], b.shape[1])))

    return lambda: loop(a, b).block_until_ready()


def measure(framework: str, calls: int) -> dict:
    """'m x k x n' or 'm x k x n, tanh' -> GFLOP/s of the products, in this process."""
    rng = np.random.default_rng(0)
    make = {"tensorflow": tensorflow_loop, "jax": jax_loop}[framework]
    out = {}
    for m, k, n in SHAPES:
        a = rng.normal(size=(m, k)).astype(np.float32)
        b = (rng.normal(size=(k, n)) / np.sqrt(k)).astype(np.float32)
        for activation in (False, True):
            seconds = seconds_per_call(make(a, b, activation), calls) / PRODUCTS_PER_CALL
            out[f"{m}x{k}x{n}" + (", tanh" if activation else "")] = 2 * m * k * n / seconds / 1e9
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20, help="timed calls of 50 products per shape")
    parser.add_argument("--json", type=Path, help="write the medians and every round here")
    parser.add_argument("--one", choices=("tensorflow", "jax"), help=argparse.SUPPRESS)  # a subprocess
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.calls)))
        return 0
    rounds = []
    for r in range(args.rounds):
        row = {}
        for framework in ("tensorflow", "jax"):
            done = subprocess.run([sys.executable, __file__, "--one", framework, "--calls", str(args.calls)],
                                  env={**os.environ, **ONE_THREAD}, capture_output=True, text=True)
            if done.returncode:
                print(f"{framework} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                return 1
            row[framework] = json.loads(done.stdout.strip().splitlines()[-1])
        rounds.append(row)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    medians = {fw: {shape: float(np.median([r[fw][shape] for r in rounds])) for shape in rounds[0][fw]}
               for fw in ("tensorflow", "jax")}
    print("GFLOP/s of the products, one thread, median over rounds; ratio JAX / TensorFlow")
    print("| product | TensorFlow | JAX | ratio |\n| --- | ---: | ---: | ---: |")
    for shape, tf_speed in medians["tensorflow"].items():
        jax_speed = medians["jax"][shape]
        print(f"| {shape} | {tf_speed:.0f} | {jax_speed:.0f} | x{jax_speed / tf_speed:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(["python", "benchmarks/matmul_kernels.py", *sys.argv[1:]]),
                                         "products_per_call": PRODUCTS_PER_CALL, "median_gflops": medians,
                                         "rounds": rounds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
