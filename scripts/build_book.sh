#!/usr/bin/env bash
# Set up everything, then build the book into _build/html (full profile: recorded runs in
# results/ are loaded, missing runs are trained). IWAE_SMOKE=1 builds a quick smoke version.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
jupyter-book build -W -n --keep-going .
echo "The book is in $PWD/_build/html/index.html"
