"""oneDNN on or off in the real training loop: ``python -m iwae_lib train`` at k=50, batch 20.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at import, so each setting runs in its own
process. Each process trains IWAE (k=50, one stochastic layer, dynamic MNIST) for two
epochs of ``--steps`` steps on the first ``20 * steps`` training images; the second epoch is
timed (the first includes tracing). The settings alternate over ``--repeats``; the result is
the median over repeats of (steps/s with oneDNN off) / (steps/s with it on, same repeat).

Run:  python benchmarks/onednn.py [--repeats 3] [--steps 450] [--json benchmarks/onednn.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from precision import cpu_info, load_now  # noqa: E402


def timed_run(onednn: int, steps: int, out: Path) -> float:
    """Steps/s of the second epoch of a two-epoch training run with oneDNN on (1) or off (0)."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=str(onednn))
    subprocess.run([sys.executable, "-m", "iwae_lib", "train", "--out", str(out), "--k", "50",
                    "--schedule", "constant", "--epochs", "2", "--train-size", str(20 * steps),
                    "--eval-every", "0", "--final-k", "10", "--final-test-size", "100",
                    "--final-train-size", "100", "--no-progress"],
                   env=env, cwd=REPO, check=True, capture_output=True)
    history = json.loads((out / "metrics.json").read_text())["history"]
    return steps / (history[1]["train_seconds"] - history[0]["train_seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=450, help="steps per epoch (batch 20)")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "onednn.json"))
    args = parser.parse_args()
    started = load_now()
    rates = {1: [], 0: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for onednn in ((1, 0) if r % 2 == 0 else (0, 1)):
                rates[onednn].append(timed_run(onednn, args.steps, Path(tmp) / f"onednn{onednn}_r{r}"))
            print(f"repeat {r + 1}/{args.repeats}: oneDNN on {rates[1][-1]:.1f}, off {rates[0][-1]:.1f} steps/s",
                  flush=True)
    ratios = np.array(rates[0]) / np.array(rates[1])
    from iwae_lib import runinfo

    result = {"command": "python benchmarks/onednn.py " + " ".join(sys.argv[1:]),
              "environment": runinfo.environment(), "cpu": cpu_info(), "load_at_start": started,
              "load_at_end": load_now(), "steps_per_epoch": args.steps, "repeats": args.repeats,
              "steps_per_s_onednn_on": rates[1], "steps_per_s_onednn_off": rates[0],
              "off_to_on_ratios": ratios.tolist(), "off_to_on_ratio_median": float(np.median(ratios))}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"oneDNN off / on: x{result['off_to_on_ratio_median']:.2f} (median of {args.repeats}; "
          f"range {ratios.min():.2f}-{ratios.max():.2f}); wrote {args.json}")


if __name__ == "__main__":
    main()
