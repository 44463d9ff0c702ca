"""Adam after the backward pass: the training step with and without ``apply_adam``'s wait.

``iwae_lib.adam.apply_adam`` makes every update wait until all gradients of the step are
computed. Without the wait, TensorFlow may run a layer's update while the backward pass
still has to read that layer's weights (for the gradient of the layer's input), and then it
copies the weights before updating them. The order changes no number; this benchmark
checks that (parameters after ``--check-steps`` steps equal bit for bit) and measures what
the wait saves, in the compiled call of 100 steps that training runs
(``training.make_train_chunk``), one thread, for the one-layer IWAE at each ``--k``.

Each round builds both versions from the same initial parameters on the same 2000 training
images and times their calls of 100 steps alternately (which goes first alternates between
rounds), so that a change in the machine's speed falls on both; the result per k is the
median over rounds of the ratio of steps/s (with the wait / without). Seconds of process
CPU time are recorded beside wall-clock seconds: on a shared machine they show whether a
difference came from the work or from waiting for a core.

Run:  python benchmarks/adam_order.py [--rounds 4] [--seconds 5] [--json benchmarks/adam_order.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from precision import cpu_info, load_now  # noqa: E402

import iwae_lib  # noqa: E402,F401  (quiet TensorFlow import)
import tensorflow as tf  # noqa: E402

from iwae_lib import adam, data, models, runinfo, training  # noqa: E402
from iwae_lib.config import TrainConfig  # noqa: E402

WITH_WAIT = adam.apply_adam
STEPS_PER_CALL = 100


def adam_without_wait(params, grads, m, v, step, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-4):
    """``apply_adam`` as it was before the wait: each update may run as soon as its own
    gradient exists (the baseline of this benchmark)."""
    beta1_power, beta2_power = beta1**step, beta2**step
    eps_hat = epsilon * tf.sqrt(1.0 - beta2_power)
    for name, g in grads.items():
        tf.raw_ops.ResourceApplyAdam(
            var=params[name].handle, m=m[name].handle, v=v[name].handle,
            beta1_power=beta1_power, beta2_power=beta2_power, lr=learning_rate,
            beta1=beta1, beta2=beta2, epsilon=eps_hat, grad=g)


VERSIONS = {"with wait": WITH_WAIT, "without wait": adam_without_wait}


def train_chunk(update, k: int, images: np.ndarray):
    """A fresh model (seed 0) and its compiled 100-step call using ``update`` for Adam."""
    config = TrainConfig(k=k)
    params = models.as_variables(models.init_params(config.model_config(), 0, images.mean(axis=0)))
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)
    chunk = training.make_train_chunk(params, m, v, config, dynamic=True)
    batches = tf.constant(images.reshape(STEPS_PER_CALL, config.batch_size, -1))
    rate = tf.constant(1e-3)

    def call(first_step: int):
        chunk(batches, rate, tf.constant(first_step, tf.int64))

    adam.apply_adam = update  # read by training.compile_train_chunk when it traces
    try:
        call(0)  # traced here
    finally:
        adam.apply_adam = WITH_WAIT
    return params, call


def trained_parameters(k: int, images: np.ndarray, steps: int) -> dict:
    """version -> its parameters (name -> array) after ``steps`` steps (a multiple of 100)
    from the same start on the same images."""
    finals = {}
    for name, update in VERSIONS.items():
        params, call = train_chunk(update, k, images)
        for first in range(STEPS_PER_CALL, steps, STEPS_PER_CALL):
            call(first)
        finals[name] = {n: p.numpy() for n, p in params.items()}
    return finals


def alternating_rates(calls: dict, seconds: float) -> dict:
    """name -> (steps/s of wall-clock time, steps/s of process CPU time), timing calls of 100
    steps of each version in turn for about ``seconds`` per version, so that a change in the
    machine's speed falls on both alike."""
    wall, cpu, steps = dict.fromkeys(calls, 0.0), dict.fromkeys(calls, 0.0), 0
    for call in calls.values():
        call(STEPS_PER_CALL)
    while steps == 0 or min(wall.values()) < seconds:
        for name, call in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call(2 * STEPS_PER_CALL + steps)
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
        steps += STEPS_PER_CALL
    return {name: (steps / wall[name], steps / cpu[name]) for name in calls}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", nargs="+", type=int, default=[1, 5, 50])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per version and round")
    parser.add_argument("--check-steps", type=int, default=300)
    parser.add_argument("--note", default="", help="conditions to record (what else ran on the machine)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)

    images = data.load_mnist("train")[0][:STEPS_PER_CALL * 20].astype(np.float32)
    result = {"command": "python benchmarks/adam_order.py " + " ".join(argv or sys.argv[1:]),
              "git_revision": runinfo.git_revision(), "cpu": cpu_info(), "note": args.note,
              "load_at_start": load_now(), "k": {}}
    for k in args.k:
        finals = trained_parameters(k, images, args.check_steps)
        identical = all(np.array_equal(finals["with wait"][n], finals["without wait"][n]) for n in finals["with wait"])
        rounds = []
        for r in range(args.rounds):
            order = list(VERSIONS) if r % 2 == 0 else list(VERSIONS)[::-1]
            rates = alternating_rates({name: train_chunk(VERSIONS[name], k, images)[1] for name in order},
                                      args.seconds)
            rounds.append({name: {"wall": w, "cpu": c} for name, (w, c) in rates.items()})
            print(f"k={k} round {r + 1}: " + ", ".join(
                f"{name} {rates[name][0]:.0f} steps/s" for name in VERSIONS), flush=True)
        ratio = {clock: float(np.median([r["with wait"][clock] / r["without wait"][clock] for r in rounds]))
                 for clock in ("wall", "cpu")}
        print(f"k={k}: parameters after {args.check_steps} steps identical: {identical}; with / without "
              f"the wait, median steps/s ratio {ratio['wall']:.2f} (wall), {ratio['cpu']:.2f} (CPU)", flush=True)
        result["k"][str(k)] = {"identical_after_check_steps": identical, "rounds": rounds, "median_ratio": ratio}
    result["load_at_end"] = load_now()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(v["identical_after_check_steps"] for v in result["k"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
