# Sourced by the other scripts: a virtual environment with the pinned requirements.
# Uses the active virtual environment if there is one, else creates .venv in the repo.
set -euo pipefail
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
python -m pip install --disable-pip-version-check -q -r requirements.txt
# TensorFlow's C++ start-up lines must not leak into notebook outputs (see .ipython/).
export IPYTHONDIR="$PWD/.ipython"
