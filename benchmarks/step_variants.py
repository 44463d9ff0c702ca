"""What a training step costs with another objective, estimator or likelihood.

Multiply-adds do not see that DReG and PIWAE take two backward passes through the network,
or that the 8-bit likelihood evaluates logistic CDFs where the Bernoulli one has a sigmoid.
This benchmark measures it: for every *step kind* (:func:`iwae_lib.bookkeeping.pace.step_kind`)
of the book's runs other than the standard IWAE step (:data:`BASIS_KINDS`), it times that run's
own configuration against its twin with the standard IWAE step and the Bernoulli likelihood
(same model, k, batch), alternating the two over ``--repeats``, in one process. The result per
kind is the median of the per-repeat ratios (kind's seconds per step / twin's), written under
``"step_kinds"`` of ``--json``.

Run:  python benchmarks/step_variants.py [--repeats 5] [--steps 200] [--json benchmarks/step_variants.json]
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from precision import cpu_info, load_now  # noqa: E402

import iwae_lib  # noqa: E402,F401  (quiet TensorFlow import)
import tensorflow as tf  # noqa: E402

from iwae_lib import adam, models, quantized, runinfo  # noqa: E402
from iwae_lib.chapters import catalog  # noqa: E402
from iwae_lib.bookkeeping.pace import step_kind  # noqa: E402
from iwae_lib.training import make_train_chunk  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "step_variants.json"
BASIS_KINDS = ("iwae/standard/bernoulli",)  # the step the other kinds are compared with


def plain_twin(config):
    """``config`` with the standard IWAE step and the Bernoulli likelihood (:data:`BASIS_KINDS`)."""
    return dataclasses.replace(config, objective="iwae", estimator="standard", likelihood="bernoulli")


def kinds_to_measure() -> dict:
    """step kind -> the first book run's TrainConfig of that kind, for kinds other than the basis."""
    found = {}
    for run in catalog.book_runs().values():
        kind = step_kind(run.config)
        if kind not in BASIS_KINDS and kind not in found:
            found[kind] = run.config
    return found


def stepper(config, steps: int, seed: int = 0):
    """``time()`` -> seconds for ``steps`` training steps of ``config`` on random images
    (gray levels 0..255 for the 8-bit likelihood, intensities in [0, 1] otherwise)."""
    model = config.model_config()
    rng = np.random.default_rng(seed)
    eight_bit = config.likelihood == quantized.LIKELIHOOD
    x = (rng.integers(0, 256, (steps, config.batch_size, model.x_size)) if eight_bit
         else rng.random((steps, config.batch_size, model.x_size))).astype(np.float32)
    mean = x.reshape(-1, model.x_size).mean(0) / (255.0 if eight_bit else 1.0)
    params = models.as_variables(models.init_params(model, seed, mean))
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
    chunk = make_train_chunk(params, m, v, dataclasses.replace(config, steps_per_call=steps), dynamic=not eight_bit)
    x = tf.constant(x)
    chunk(x, tf.constant(1e-4), tf.constant(0, tf.int64)).numpy()  # trace

    def time_it():
        start = time.perf_counter()
        chunk(x, tf.constant(1e-4), tf.constant(steps, tf.int64)).numpy()
        return time.perf_counter() - start

    return time_it


def measure(config, steps: int, repeats: int) -> dict:
    """Per-repeat seconds of ``config`` and of its plain twin, alternating which goes first."""
    kind, twin = stepper(config, steps), stepper(plain_twin(config), steps)
    rows = []
    for r in range(repeats):
        if r % 2 == 0:
            kind_seconds, plain_seconds = kind(), twin()
        else:
            plain_seconds, kind_seconds = twin(), kind()
        rows.append({"kind_seconds": kind_seconds, "plain_seconds": plain_seconds,
                     "ratio": kind_seconds / plain_seconds})
    ratios = [row["ratio"] for row in rows]
    return {"k": config.k, "steps": steps, "repeats": rows, "ratio_median": float(np.median(ratios)),
            "ratio_range": [float(min(ratios)), float(max(ratios))]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200, help="training steps per timing")
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args()
    out = {"command": "python benchmarks/step_variants.py " + " ".join(sys.argv[1:]),
           "environment": runinfo.environment(), "cpu": cpu_info(), "load_at_start": load_now(), "step_kinds": {}}
    for kind, config in kinds_to_measure().items():
        result = measure(config, args.steps, args.repeats)
        out["step_kinds"][kind] = result
        print(f"{kind:<40} k={config.k:<3} x{result['ratio_median']:.2f} "
              f"(range {result['ratio_range'][0]:.2f}-{result['ratio_range'][1]:.2f})", flush=True)
    out["load_at_end"] = load_now()
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
