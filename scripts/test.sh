#!/usr/bin/env bash
# The test suite: sets itself up, then runs pytest (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests

# The torch-backend tests need torch. Install it only where its CPU wheel is
# already on the machine (as on our CI machines): elsewhere pip would fetch
# several GB of CUDA packages, and those tests skip instead.
if ! .venv/bin/python -c "import torch" 2>/dev/null &&
   .venv/bin/python -m pip download --quiet --no-deps --no-index -d "$(mktemp -d)" torch==2.13.0 >/dev/null 2>&1; then
  echo "== installing torch 2.13.0 (local CPU wheel) for the torch-backend tests"
  .venv/bin/python -m pip install --quiet torch==2.13.0
fi
exec .venv/bin/python -m pytest -ra "$@"
