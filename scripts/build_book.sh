#!/usr/bin/env bash
# Set up everything, then build the book. Full profile (the default): into _build/full/html,
# from the runs recorded in results/; the build never trains: while a run of the book's list
# (python -m iwae_lib runs) is missing it stops before any notebook runs and says how to
# record it. IWAE_SMOKE=1: a quick smoke version (tiny models trained in seconds) into
# _build/smoke/html. The two profiles never share executed notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
PROFILE=smoke
case "${IWAE_SMOKE:-}:${IWAE_PROFILE:-}" in
  1:* | true:* | yes:* | *:smoke) ;;
  *)
    PROFILE=full
    ;;
esac
if [ "$PROFILE" = full ]; then
  python -m iwae_lib runs --check   # exit status 1 and the commands that record the missing runs
fi
python -m iwae_lib.chapters.build --profile "$PROFILE"
echo "The book is in $PWD/_build/$PROFILE/html/index.html"
