"""Process-level settings, measured in the real training loop (``python -m iwae_lib train``).

TensorFlow reads its thread counts and ``TF_ENABLE_ONEDNN_OPTS`` once, at import, so every
variant runs in fresh processes. Each process trains IWAE (one stochastic layer, dynamic
MNIST, batch 20) for two epochs of ``--steps`` steps on the first ``20 * steps`` training
images; the second epoch is timed (the first includes tracing).

``onednn``: oneDNN on against off (``TF_ENABLE_ONEDNN_OPTS=0``), one process at a time at
  k=50; ratio (off / on) per repeat.
``parallel``: the machine's total training rate with one run at a time (TensorFlow's
  default threads) against two runs side by side, each with one intra-op and one inter-op
  thread; ratio (sum of the two runs' steps/s / the single run's) per repeat, at ``--k``.

The variants alternate over ``--repeats``; each result is the median of the per-repeat
ratios. Results go under their subcommand's key in ``--json``.

Run:  python benchmarks/training_loop.py onednn [--repeats 3] [--steps 450]
      python benchmarks/training_loop.py parallel [--repeats 3] [--steps 450] [--k 5]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from precision import cpu_info, load_now, update_json  # noqa: E402

SINGLE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def start_run(out: Path, k: int, steps: int, env: dict) -> subprocess.Popen:
    """A two-epoch training process (see the module docstring) with extra environment ``env``."""
    return subprocess.Popen([sys.executable, "-m", "iwae_lib", "train", "--out", str(out), "--k", str(k),
                             "--schedule", "constant", "--epochs", "2", "--train-size", str(20 * steps),
                             "--eval-every", "0", "--final-k", "10", "--final-test-size", "100",
                             "--final-train-size", "100", "--no-progress"],
                            env=dict(os.environ, **env), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def second_epoch_rate(process: subprocess.Popen, out: Path, steps: int) -> float:
    """Wait for ``process``; steps/s of its second epoch."""
    _, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"training failed ({process.returncode}): {err[-2000:]}")
    history = json.loads((out / "metrics.json").read_text())["history"]
    return steps / (history[1]["train_seconds"] - history[0]["train_seconds"])


def onednn_repeat(tmp: Path, r: int, args) -> dict:
    rates = {}
    for onednn in ((1, 0) if r % 2 == 0 else (0, 1)):
        out = tmp / f"onednn{onednn}_r{r}"
        rates[onednn] = second_epoch_rate(start_run(out, 50, args.steps, {"TF_ENABLE_ONEDNN_OPTS": str(onednn)}),
                                          out, args.steps)
    return {"on": rates[1], "off": rates[0], "ratio": rates[0] / rates[1]}


def parallel_repeat(tmp: Path, r: int, args) -> dict:
    def single():
        out = tmp / f"single_r{r}"
        return second_epoch_rate(start_run(out, args.k, args.steps, {}), out, args.steps)

    def pair():
        outs = [tmp / f"pair{i}_r{r}" for i in (0, 1)]
        processes = [start_run(out, args.k, args.steps, SINGLE_THREAD) for out in outs]
        return [second_epoch_rate(p, out, args.steps) for p, out in zip(processes, outs)]

    if r % 2 == 0:
        one, two = single(), pair()
    else:
        two, one = pair(), single()
    return {"single": one, "pair": two, "ratio": sum(two) / one}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("onednn", "parallel"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=450, help="steps per epoch (batch 20)")
    parser.add_argument("--k", type=int, default=5, help="samples per image (parallel; onednn uses k=50)")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "training_loop.json"))
    args = parser.parse_args()
    repeat = {"onednn": onednn_repeat, "parallel": parallel_repeat}[args.command]
    started = load_now()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            rows.append(repeat(Path(tmp), r, args))
            print(f"repeat {r + 1}/{args.repeats}: {rows[-1]}", flush=True)
    ratios = np.array([row["ratio"] for row in rows])
    from iwae_lib import runinfo

    result = {"command": "python benchmarks/training_loop.py " + " ".join(sys.argv[1:]),
              "environment": runinfo.environment(), "cpu": cpu_info(), "load_at_start": started,
              "load_at_end": load_now(), "steps_per_epoch": args.steps,
              "k": 50 if args.command == "onednn" else args.k, "repeats": rows,
              "ratio_median": float(np.median(ratios)), "ratio_range": [float(ratios.min()), float(ratios.max())]}
    key = args.command if args.command == "onednn" else f"parallel_k{args.k}"
    update_json(args.json, key, result)
    print(f"{args.command}: x{result['ratio_median']:.2f} (median of {len(rows)}; range "
          f"{ratios.min():.2f}-{ratios.max():.2f}); wrote {args.json}")


if __name__ == "__main__":
    main()
