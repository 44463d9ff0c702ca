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
python -m pytest tests notebooks --nbval-lax -p no:cacheprovider --durations=15 "$@"
