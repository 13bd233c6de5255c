#!/usr/bin/env bash
# The demo course end to end: sets itself up, then `autograder demo`
# (release, sample submissions, parallel grading, grades.csv, feedback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/autograder demo "$@"
