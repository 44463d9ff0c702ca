"""Mixed precision and step settings: training speed A/B in one process, and an accuracy A/B.

``speed`` (one command; all ratios come from interleaved measurements in one process):
  * training steps/s of iwae_lib's compiled multi-step function for the one-stochastic-layer
    model, fp32 against ``precision="bfloat16"`` (bf16 matrix products; hidden activations
    kept bf16, or bias + tanh in fp32), at k = 1, 5, 50 with batch 20 and k = 50 with batch
    100; at batch 20 also XLA on the whole gradient function (``jit_compile``), fp32 and
    bf16, and (k = 1, 5) 500 instead of 100 steps per compiled call. Each repeat times every variant once, in a rotating order,
    for about ``--seconds``; the reported ratio is the median over repeats of
    (variant steps/s) / (fp32 steps/s of the same repeat);
  * the CPU model, whether it has AVX-512 BF16 / AMX instructions, and the load average.

``threads``: intra-/inter-op thread settings and oneDNN on/off, each in a child process (they cannot change
inside one), the settings interleaved over repeats, steps/s ratios against TensorFlow's
default.

``accuracy``: the same IWAE k=5 training run (same seed, data order and budget) in fp32 and
bf16, plus fp32 with a second seed for the run-to-run noise, each trained with
``iwae_lib.training.train`` on dynamic MNIST with a 10000-image validation split; then all
scored with the same k-sample estimate on the validation images. Runs go to
``runs/ab_precision/``.

Each writes its part of ``benchmarks/precision.json`` (the other part is kept).

Run:  python benchmarks/precision.py speed [--repeats 7] [--json benchmarks/precision.json]
      python benchmarks/precision.py threads [--thread-repeats 2]
      python benchmarks/precision.py accuracy [--epochs 8] [--eval-k 1000]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO / "benchmarks" / "precision.json"
# (intra, inter, oneDNN); 0 threads: TensorFlow's choice; oneDNN 0 sets TF_ENABLE_ONEDNN_OPTS=0
THREAD_SETTINGS = ((0, 0, 1), (2, 1, 1), (1, 1, 1), (2, 2, 1), (0, 0, 0))


def cpu_info() -> dict:
    """CPU model and the instruction sets that decide whether bf16 matrix products are fast."""
    flags, model = set(), "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"model": model, "cores": os.cpu_count(), "flags": {f: f in flags for f in wanted}}


def load_now() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "loadavg_1_5_15": [one, five, fifteen]}


def update_json(path, key, value):
    """Write ``value`` under ``key`` of the JSON file at ``path``, keeping its other keys."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


# ----------------------------------------------------------------------------- speed


def build_variant(train_x, k, batch, precision, bf16_hidden=True, xla=False, seed=0):
    """A traced training-chunk function for one variant (its own fresh parameters and Adam state).

    Returns ``run(steps_per_call, calls)`` -> seconds taken by ``calls`` calls, each of
    ``steps_per_call`` steps on [steps_per_call, batch, 784] images binarized in the step.
    """
    import tensorflow as tf

    from iwae_lib import adam, estimators, models
    from iwae_lib.training import binarize_batch, compile_train_chunk

    config = models.paper_model(1)
    params = models.as_variables(models.init_params(config, seed, train_x.mean(0)))
    m, v = adam.zeros_like_params(params), adam.zeros_like_params(params)

    def gradient_fn(params, x, step_seed):
        return estimators.loss_and_gradients(params, config, x, k, step_seed, "iwae", "standard", precision)

    models._BF16_HIDDEN = bf16_hidden  # read while tracing, below
    chunk = compile_train_chunk(params, m, v, tf.function(gradient_fn, jit_compile=True) if xla else gradient_fn,
                                seed, batch, config.x_size, binarize_batch)
    rng = np.random.default_rng(seed)
    batches = {}

    def run(steps_per_call, calls):
        if steps_per_call not in batches:
            idx = rng.permutation(len(train_x))[: steps_per_call * batch]
            batches[steps_per_call] = tf.constant(train_x[idx].reshape(steps_per_call, batch, -1))
        x = batches[steps_per_call]
        start = time.perf_counter()
        for c in range(calls):
            chunk(x, tf.constant(1e-3), tf.constant(c * steps_per_call, tf.int64)).numpy()
        return time.perf_counter() - start

    run(100, 1)  # trace and warm up
    models._BF16_HIDDEN = True
    return run


def speed(args):
    import tensorflow as tf  # noqa: F401

    from iwae_lib import data, runinfo

    ds = data.load_dataset("mnist")
    settings = [(1, 20), (5, 20), (50, 20), (50, 100)]
    variants = {  # name -> (precision, bf16 hidden activations, XLA gradient, steps per call)
        "fp32": ("float32", True, False, 100),
        "bf16": ("bfloat16", True, False, 100),
        "bf16_fp32_hidden": ("bfloat16", False, False, 100),
        "fp32_xla": ("float32", True, True, 100),
        "bf16_xla": ("bfloat16", True, True, 100),
        "fp32_500_per_call": ("float32", True, False, 500),
    }
    started = load_now()
    print(f"CPU: {cpu_info()}; load {started['loadavg_1_5_15']}", flush=True)
    runners, calls = {}, {}
    for k, batch in settings:
        for name, (precision, hidden, xla, per_call) in variants.items():
            if (per_call == 500 and k == 50) or ((xla or not hidden) and batch != 20):
                continue
            key = (k, batch, name)
            # the 500-per-call variant shares the fp32 function (same trace, other call size)
            runners[key] = (runners[(k, batch, "fp32")][0] if per_call == 500
                            else build_variant(ds.train, k, batch, precision, hidden, xla), per_call)
        # steps per measurement: about args.seconds of fp32 training, in calls of 100 steps
        fp32_run = runners[(k, batch, "fp32")][0]
        per_step = fp32_run(100, 1) / 100
        calls[(k, batch)] = max(1, round(args.seconds / (100 * per_step)))
        print(f"k={k} batch={batch}: traced; {1 / per_step:.0f} fp32 steps/s, "
              f"{100 * calls[(k, batch)]} steps per measurement", flush=True)
    rates = {key: [] for key in runners}
    keys = list(runners)
    for r in range(args.repeats):
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        for key in order:
            run, per_call = runners[key]
            n_calls = max(1, round(100 * calls[key[:2]] / per_call))
            rates[key].append(n_calls * per_call / run(per_call, n_calls))
        print(f"repeat {r + 1}/{args.repeats} done, load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for k, batch in settings:
        base = np.array(rates[(k, batch, "fp32")])
        row = {"k": k, "batch_size": batch, "steps_per_measurement": 100 * calls[(k, batch)],
               "fp32_steps_per_s_median": float(np.median(base))}
        for name in variants:
            if (k, batch, name) not in rates or name == "fp32":
                continue
            ratio = np.array(rates[(k, batch, name)]) / base
            row[f"{name}_steps_per_s_median"] = float(np.median(rates[(k, batch, name)]))
            row[f"{name}_ratio_median"] = float(np.median(ratio))
            row[f"{name}_ratio_range"] = [float(ratio.min()), float(ratio.max())]
        rows.append(row)
        print(f"k={k:>2} batch={batch:>3}: fp32 {row['fp32_steps_per_s_median']:6.1f} steps/s; ratios "
              + ", ".join(f"{n} x{row[n + '_ratio_median']:.2f}" for n in variants if n + "_ratio_median" in row),
              flush=True)
    out = {"command": "python benchmarks/precision.py speed " + " ".join(sys.argv[2:]),
           "environment": runinfo.environment(), "cpu": cpu_info(), "load_at_start": started,
           "repeats": args.repeats, "training": rows, "raw_steps_per_s": {"/".join(map(str, key)): v
                                                                          for key, v in rates.items()}}
    out["load_at_end"] = load_now()
    update_json(args.json, "speed", out)
    print(f"wrote {args.json}")


def threads(args):
    """Thread settings, each in a child process, interleaved over repeats."""
    from iwae_lib import runinfo

    results = {s: [] for s in THREAD_SETTINGS}
    started = load_now()
    for r in range(args.thread_repeats):
        order = THREAD_SETTINGS[r % len(THREAD_SETTINGS):] + THREAD_SETTINGS[: r % len(THREAD_SETTINGS)]
        for intra, inter, onednn in order:
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=str(onednn))
            out = subprocess.run([sys.executable, __file__, "thread-child", "--intra", str(intra), "--inter",
                                  str(inter)], capture_output=True, text=True, check=True, cwd=REPO, env=env)
            results[(intra, inter, onednn)].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"threads: repeat {r + 1}/{args.thread_repeats} done", flush=True)
    rows = []
    for setting, runs in results.items():
        row = {"intra_op": setting[0], "inter_op": setting[1], "onednn": bool(setting[2]),
               "actual": runs[0]["actual"]}
        for k in ("5", "50"):
            ratio = [run["steps_per_s"][k] / base["steps_per_s"][k] for run, base in zip(runs, results[(0, 0, 1)])]
            row[f"k{k}_steps_per_s_median"] = float(np.median([run["steps_per_s"][k] for run in runs]))
            row[f"k{k}_ratio_to_default_median"] = float(np.median(ratio))
        rows.append(row)
        print(f"threads intra={setting[0]} inter={setting[1]} oneDNN={setting[2]} (actual {row['actual']}): "
              f"k=5 x{row['k5_ratio_to_default_median']:.2f}, k=50 x{row['k50_ratio_to_default_median']:.2f}")
    update_json(args.json, "threads", {
        "command": "python benchmarks/precision.py threads " + " ".join(sys.argv[2:]), "settings": rows,
        "repeats": args.thread_repeats, "load_at_start": started, "load_at_end": load_now(),
        "environment": runinfo.environment(), "cpu": cpu_info(),
        "note": "(0, 0) with oneDNN is TensorFlow's default; ratios are to it, within the same repeat; fp32, batch 20"})


def thread_child(args):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter)
    from iwae_lib import data

    ds = data.load_dataset("mnist")
    runners = {k: build_variant(ds.train, k, 20, "float32") for k in (5, 50)}
    times = {k: [] for k in runners}
    for _ in range(2):
        for k, run in runners.items():
            steps = 500 if k == 5 else 200
            times[k].append(steps / run(100, steps // 100))
    actual = [tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads()]
    print(json.dumps({"steps_per_s": {str(k): float(np.median(v)) for k, v in times.items()}, "actual": actual}))


# ----------------------------------------------------------------------------- accuracy


def evaluation_precision_error(weights, config, x, k, seed=777, batch=50, chunk=100):
    """The k-sample log-likelihood estimate [N] computed with bf16 matrix products minus the
    fp32 one, with the same samples (same seeds): the bias a bf16 evaluation would add."""
    import tensorflow as tf

    from iwae_lib import models

    tensors = {n: tf.constant(v) for n, v in weights.items()}

    @tf.function
    def estimate(xb, batch_seed, precision):
        parts = [tf.reduce_logsumexp(models.log_weights(tensors, config, xb, chunk,
                                                        tf.random.experimental.stateless_fold_in(batch_seed, c),
                                                        precision=precision)[0], axis=0)
                 for c in range(k // chunk)]
        return tf.reduce_logsumexp(tf.stack(parts), axis=0) - math.log(k // chunk * chunk)

    diffs = []
    for b, start in enumerate(range(0, len(x), batch)):
        xb, batch_seed = tf.constant(x[start:start + batch]), tf.constant([seed, b], tf.int64)
        diffs.append(estimate(xb, batch_seed, "bfloat16").numpy() - estimate(xb, batch_seed, "float32").numpy())
    diff = np.concatenate(diffs).astype(np.float64)
    return {"images": len(x), "k": k // chunk * chunk, "mean": float(diff.mean()),
            "stderr_over_images": float(diff.std() / math.sqrt(len(diff))),
            "mean_abs": float(np.abs(diff).mean()), "max_abs": float(np.abs(diff).max())}


def accuracy(args):
    from iwae_lib import data, evaluation, training
    from iwae_lib.config import TrainConfig
    from iwae_lib.run_dir import WEIGHTS_FILE

    out_root = REPO / args.out
    runs = {name: (("bfloat16" if name.startswith("bf16") else "float32"), int(name.rsplit("seed", 1)[1]))
            for name in args.runs}
    started = load_now()
    results = {}
    for name, (precision, seed) in runs.items():
        config = TrainConfig(k=5, objective="iwae", schedule="scaled", epochs=args.epochs, seed=seed,
                             validation_size=10000, eval_every=0, final_k=args.eval_k, final_test_size=2000,
                             final_train_size=1000,
                             precision=precision)
        # one train/validation split (that of seed 0) for every run, so that all are scored
        # on the same 10000 images; the seed changes initialisation, data order and samples
        ds = data.load_dataset(config.dataset, config.validation_size, 0)
        t0 = time.monotonic()
        metrics = training.train(config, out_root / name, progress=False, dataset=ds)  # or its recorded metrics
        scores = out_root / name / f"valid_log_likelihood_k{args.eval_k}.npy"
        if not scores.exists():  # same evaluation seed for every run
            weights = dict(np.load(out_root / name / WEIGHTS_FILE))
            np.save(scores, evaluation.log_likelihood(weights, config.model_config(), ds.valid, k=args.eval_k,
                                                      seed=12345, progress=False))
        valid_ll = np.load(scores)
        results[name] = {"precision": precision, "seed": seed, "training_seconds": metrics["wall_seconds"]["training"],
                         "final_train_bound": metrics["history"][-1]["train_bound"],
                         "valid_log_likelihood": float(np.mean(valid_ll)),
                         "valid_log_likelihood_stderr_over_images": float(np.std(valid_ll) / math.sqrt(len(valid_ll))),
                         "test_log_likelihood": metrics["test_log_likelihood"],
                         "wall_seconds_with_evaluation": time.monotonic() - t0}
        print(f"{name}: validation log p(x) (k={args.eval_k}) {results[name]['valid_log_likelihood']:.3f}, "
              f"test {metrics['test_log_likelihood']:.3f}, training {results[name]['training_seconds']:.0f} s",
              flush=True)

    def paired(a, b):
        if a not in runs or b not in runs:
            return None
        diff = (np.load(out_root / a / f"valid_log_likelihood_k{args.eval_k}.npy")
                - np.load(out_root / b / f"valid_log_likelihood_k{args.eval_k}.npy"))
        return {"mean": float(diff.mean()), "stderr_over_images": float(diff.std() / math.sqrt(len(diff)))}

    if "fp32_seed0" in runs:
        ds = data.load_dataset("mnist", 10000, 0)
        weights = dict(np.load(out_root / "fp32_seed0" / WEIGHTS_FILE))
        bf16_eval = evaluation_precision_error(weights, TrainConfig().model_config(), ds.valid[: args.error_images],
                                               args.eval_k)
        bf16_eval.update(model=f"{args.out}/fp32_seed0", images_from="the validation split")
        print(f"bf16 evaluation error: {bf16_eval}", flush=True)
    summary = {
        "command": "python benchmarks/precision.py accuracy " + " ".join(sys.argv[2:]),
        "setup": f"IWAE k=5, one stochastic layer, dynamic MNIST, validation_size=10000, schedule scaled, "
                 f"{args.epochs} epochs, batch 20, seed 0's train/validation split for every run; validation "
                 f"log p(x) with k={args.eval_k} (evaluation in fp32, seed 12345 for all runs); runs in {args.out}/",
        "runs": results,
        "bf16_minus_fp32_same_seed": paired("bf16_seed0", "fp32_seed0"),
        "fp32_seed1_minus_fp32_seed0": paired("fp32_seed1", "fp32_seed0"),
        "bf16_evaluation_minus_fp32_evaluation": bf16_eval if "fp32_seed0" in runs else None,
        "load_at_start": started, "load_at_end": load_now(),
    }
    print(json.dumps({k: summary[k] for k in ("bf16_minus_fp32_same_seed", "fp32_seed1_minus_fp32_seed0")}))
    update_json(args.json, "accuracy", summary)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="steps/s A/B in one process")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--seconds", type=float, default=1.0, help="approximate seconds per fp32 measurement")
    p.add_argument("--json", default=str(DEFAULT_JSON))
    p = sub.add_parser("threads", help="thread settings, each in a child process")
    p.add_argument("--thread-repeats", type=int, default=2)
    p.add_argument("--json", default=str(DEFAULT_JSON))
    p = sub.add_parser("accuracy", help="fp32 / bf16 training A/B")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--eval-k", type=int, default=1000)
    p.add_argument("--out", default="runs/ab_precision")
    p.add_argument("--error-images", type=int, default=500,
                   help="validation images for the bf16-evaluation error (same samples as fp32)")
    p.add_argument("--runs", nargs="+", default=["fp32_seed0", "bf16_seed0", "fp32_seed1"],
                   help="runs to train (or reuse) and score: fp32_seedN or bf16_seedN")
    p.add_argument("--json", default=str(DEFAULT_JSON))
    p = sub.add_parser("thread-child", help=argparse.SUPPRESS)
    p.add_argument("--intra", type=int, required=True)
    p.add_argument("--inter", type=int, required=True)
    args = parser.parse_args()
    import iwae_lib  # noqa: F401  (quiet TensorFlow import)

    {"speed": speed, "threads": threads, "accuracy": accuracy, "thread-child": thread_child}[args.command](args)


if __name__ == "__main__":
    main()
