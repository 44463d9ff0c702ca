#!/usr/bin/env bash
# Set up everything, then run all tests: library unit tests, every notebook in the smoke
# profile (nbval), the book build and its browser check.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium"
fi
export IWAE_SMOKE=1
# Two worker processes, each computing on one thread (TensorFlow, BLAS), so that together
# they fill two cores without waiting on each other's threads; each test file (a notebook's
# cells, a module's fixtures) stays in one worker, and the files start in the order given
# (the book build, the longest, first). If a worker dies in native code (once, in
# CI, TensorFlow segfaulted inside an evaluation test that passes everywhere else), a fresh
# worker runs that test once more and goes on; an ordinary failure is never rerun.
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
python -m pytest tests notebooks --nbval-lax -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder \
  --reruns 1 --only-rerun "crashed while running" --durations=50 "$@"
