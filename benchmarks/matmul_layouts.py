"""Ways of writing the decoder's largest product, [1000, 200] x [200, 784], in TensorFlow.

Times one way per process, one thread, in GFLOP/s of the products (2 m k n each): a
``tf.function`` loop of 50 products ``s += (a + i * 1e-9) @ b`` as in
``matmul_kernels.py``, called repeatedly for one second, five times; prints the median and
the best. Ways (first argument):

  plain    ``a @ b``
  tb       the weight stored transposed, ``tf.matmul(a, bt, transpose_b=True)``
  splitn   two products of 392 columns each, concatenated
  splitm   four products of 250 rows each, concatenated
  einsum   ``tf.einsum("mk,kn->mn", a, b)``
  dw, dh   the two products of the backward pass (weight and input gradients)

Kernel settings come from the environment, e.g. ``ONEDNN_MAX_CPU_ISA=AVX2`` or
``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen's kernel)::

    for way in plain tb splitn splitm einsum; do
        TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python benchmarks/matmul_layouts.py $way
    done
"""

import os
import sys
import time

import numpy as np
import tensorflow as tf

M, K, N = 1000, 200, 784
PRODUCTS_PER_CALL = 50


def main(way: str) -> None:
    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((M, K), dtype=np.float32))
    b = tf.Variable(rng.standard_normal((K, N), dtype=np.float32))
    bt = tf.Variable(rng.standard_normal((N, K), dtype=np.float32))
    g = tf.constant(rng.standard_normal((M, N), dtype=np.float32))
    products = {
        "plain": lambda x: x @ b,
        "tb": lambda x: tf.matmul(x, bt, transpose_b=True),
        "splitn": lambda x: tf.concat([x @ b[:, :N // 2], x @ b[:, N // 2:]], axis=1),
        "splitm": lambda x: tf.concat([x[j * 250:(j + 1) * 250] @ b for j in range(4)], axis=0),
        "einsum": lambda x: tf.einsum("mk,kn->mn", x, b),
        "dw": lambda x: tf.matmul(x, g, transpose_a=True),  # [K, N]
        "dh": lambda x: tf.matmul(g, b, transpose_b=True),  # [M, K]
    }
    if way not in products:
        raise SystemExit(f"unknown way {way!r}; choose one of {', '.join(products)}")
    product = products[way]

    @tf.function
    def loop():
        s = tf.zeros_like(product(a))
        for i in tf.range(PRODUCTS_PER_CALL):
            s += product(a + tf.cast(i, tf.float32) * 1e-9)
        return s

    loop()  # trace and warm up
    rates = []
    for _ in range(5):
        started, calls = time.perf_counter(), 0
        while time.perf_counter() - started < 1.0:
            loop().numpy()
            calls += 1
        seconds = time.perf_counter() - started
        rates.append(2 * M * K * N * PRODUCTS_PER_CALL * calls / seconds / 1e9)
    print(f"{way} (ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')}, "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}): "
          f"GFLOP/s median {np.median(rates):.0f}, best {max(rates):.0f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "plain")
