#!/usr/bin/env bash
# Set-up shared by demo.sh and test.sh: the system packages grading needs (bubblewrap; with
# --tests also what the tests drive: chromium, and npm for JupyterHub's proxy), a virtualenv in
# .venv with the project and its dependencies (with the test, otter and hub extras:
# tests/test_otter.py grades with otter-grader too, tests/test_hub.py runs JupyterHub), then the
# datasets fetched and verified.
# Data comes from $AUTOGRADER_DATA_MIRROR when set, else from the internet.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- system packages: installed where we may (root, or sudo without a password), else one command to run
packages=(bubblewrap)
commands=(bwrap)
if [ "${1:-}" = "--tests" ]; then packages+=(chromium npm); commands+=(chromium npm); fi
missing=()
for i in "${!packages[@]}"; do
  command -v "${commands[$i]}" >/dev/null || missing+=("${packages[$i]}")
done
# The jail's seccomp filter is built with libseccomp (autograder/run/syscall_filter.py): a library, no command,
# looked for with the shell's own globbing (no other program may be on PATH yet).
seccomp=no
for library in /usr/lib/libseccomp.so.2 /usr/lib/*/libseccomp.so.2 /lib/*/libseccomp.so.2 /usr/lib64/libseccomp.so.2; do
  [ -e "$library" ] && seccomp=yes
done
[ "$seccomp" = yes ] || missing+=(libseccomp2)
if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${sudo[*]}" = none ] || ! command -v apt-get >/dev/null; then
    echo "autograder: this needs ${missing[*]}; install it first, e.g. \`sudo apt-get install ${missing[*]}\`, then run this again." >&2
    exit 2
  fi
  echo "== installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--tests" ] && ! command -v configurable-http-proxy >/dev/null; then
  if [ "${sudo[*]}" = none ]; then
    echo "autograder: the hub's tests need JupyterHub's proxy; install it first, e.g. \`sudo npm install -g configurable-http-proxy@5\`, then run this again." >&2
    exit 2
  fi
  echo "== installing configurable-http-proxy (npm)"
  "${sudo[@]}" npm install -g --quiet --no-fund --no-audit configurable-http-proxy@5 >/dev/null
fi

# .venv stands on a Python every user can run: the hub runs it as the instructors, the jail as nobody.
# A default python3 under a private folder (pyenv's in /root) gives way to the system's.
open_to_all() { [ "$(id -u)" != 0 ] || runuser -u nobody -- "$1" -c "" 2>/dev/null; }
python=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
if [ -z "${PYTHON:-}" ] && ! open_to_all "$python" && [ -x /usr/bin/python3 ]; then
  echo "== $python is closed to other users; .venv is built on /usr/bin/python3"
  python=/usr/bin/python3
fi
if [ -x .venv/bin/python ] && ! open_to_all "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')"; then
  echo "== .venv stands on a Python other users cannot run; rebuilding it on $python"
  rm -rf .venv
fi
if ! "$python" -c "import ensurepip" 2>/dev/null; then  # Debian splits venv off its python3
  if [ "${sudo[*]}" = none ] || ! command -v apt-get >/dev/null; then
    echo "autograder: $python cannot make a virtualenv; install python3-venv first, then run this again." >&2
    exit 2
  fi
  echo "== installing python3-venv"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
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
echo "== fetching and verifying the datasets${AUTOGRADER_DATA_MIRROR:+ from $AUTOGRADER_DATA_MIRROR}"
autograder data fetch
