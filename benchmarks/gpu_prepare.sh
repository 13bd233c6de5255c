#!/usr/bin/env bash
# Prepare .dev/ for benchmarks/gpu_measure.sh on a lent GPU machine (../shared/gpu/README.md), then print the
# two `run` calls that measure issue 25's figures. Run from the root, here (it needs PyPI for the wheels the
# shared set lacks: Dask's, and the versions this project pins).
#   bash benchmarks/gpu_prepare.sh
set -euo pipefail
ROOT=$PWD; SHARED=${SHARED:-$ROOT/../shared}; DEV=$ROOT/.dev
[ -f "$ROOT/benchmarks/gpu_measure.sh" ] || { echo "run it from the project's root" >&2; exit 2; }
[ -d "$SHARED/gpu/wheels" ] || { echo "no $SHARED/gpu/wheels: the shared folder is not beside the project" >&2; exit 2; }
grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo /.dev/ >> .git/info/exclude

rm -rf "$DEV/wheels" "$DEV/bwrap" "$DEV"/mirror-*
mkdir -p "$DEV/wheels" "$DEV/bwrap" "$DEV/mirror-a" "$DEV/mirror-b"
cp "$SHARED"/gpu/wheels/*.whl "$DEV/wheels/"

# What the grading path imports beyond the shared set, at this checkout's versions: grade-all's Dask and what
# it needs, and jsonschema below 4.25 (its 4.26 costs 0.7 s at each notebook read: pyproject.toml).
PY=${PY:-$ROOT/.venv/bin/python}
extra=(distributed dask click cloudpickle locket msgpack psutil pyyaml sortedcontainers tblib toolz zict partd fsspec
       importlib_metadata zipp jinja2 markupsafe packaging tqdm nh3 latex2mathml jsonschema)
pins=()
for name in "${extra[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
  pins+=("$name==$version")
done
rm -f "$DEV"/wheels/jsonschema-*.whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEV/wheels" "${pins[@]}"

# bubblewrap for a machine without one, with the libraries it links (gpu_measure.sh copies them as root).
cp /usr/bin/bwrap "$DEV/bwrap/"
for lib in libselinux.so.1 libpcre2-8.so.0 libcap.so.2; do cp -L "/lib/x86_64-linux-gnu/$lib" "$DEV/bwrap/"; done

# The data, in two parts: a call carries at most 64 MiB with the tree.
cp -r "$SHARED/datasets/fashion-mnist" "$DEV/mirror-b/"
cp -r "$SHARED/datasets/mnist" "$SHARED/datasets/imdb" "$DEV/mirror-a/"
du -sh "$DEV"/* | sed 's/^/  /'
cat <<'EOF'
Then, with the device tool (15 minutes of device time in all, start-up included; the second call within the
machine's idle release after the first):
  1. run carry [".dev/wheels", ".dev/bwrap", ".dev/mirror-b"]  timeout_s 300
       command: OUT=$OUT bash benchmarks/gpu_measure.sh jax --prepare
  2. run carry [".dev/mirror-a"]  timeout_s 600
       command: OUT=$OUT bash benchmarks/gpu_measure.sh jax --session --budget 480
  then give_back, and copy $OUT/gpu_session.md into benchmarks/RESULTS.md.
EOF
