#!/usr/bin/env bash
# Set-up shared by demo.sh and test.sh: a virtualenv in .venv with the project
# and its dependencies (with the test, otter and hub extras: tests/test_otter.py
# grades with otter-grader too, tests/test_hub.py runs JupyterHub), then the
# three datasets fetched and verified.
# Data comes from $AUTOGRADER_DATA_MIRROR when set, else from the internet.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
# Reinstall only when the dependencies changed.
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "== installing the project and its dependencies (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test,otter,hub]"
  rm -f .venv/.installed-* && touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# Debian packages, installed by .ci/run in CI; elsewhere, say what is missing.
command -v bwrap >/dev/null ||
  echo "== note: grading needs bubblewrap to jail the students' code (apt-get install bubblewrap)"
command -v chromium >/dev/null ||
  echo "== note: the browser tests skip without chromium (apt-get install chromium)"
command -v configurable-http-proxy >/dev/null ||
  echo "== note: autograder hub and its test need JupyterHub's proxy (npm install -g configurable-http-proxy)"
echo "== fetching and verifying the datasets${AUTOGRADER_DATA_MIRROR:+ from $AUTOGRADER_DATA_MIRROR}"
autograder data fetch
