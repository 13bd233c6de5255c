#!/usr/bin/env bash
# Issue 25's measurements on a lent GPU machine (../shared/gpu/README.md), prepared here by
# `bash benchmarks/gpu_prepare.sh`, which prints the two `run` calls to make. From the root:
#   OUT=$OUT bash benchmarks/gpu_measure.sh BACKEND --prepare             the environment, and the carried data
#   OUT=$OUT bash benchmarks/gpu_measure.sh BACKEND --session [ARGS...]   that, then benchmarks/gpu_session.py ARGS
#   OUT=$OUT bash benchmarks/gpu_measure.sh BACKEND ID...                 that, then each ID's reference run
# A call carries at most 64 MiB, so the data comes in two calls: the first (--prepare) fetches what it
# carries into /tmp/agdata, which stays on the warm machine for the second. Carried: .dev/wheels (the
# shared wheels, and those gpu_prepare.sh adds), .dev/bwrap (Debian's bwrap and its libraries, used where
# the machine has none), .dev/mirror-* (the datasets, in parts).
set -o pipefail
export PYTHONUNBUFFERED=1
BACKEND=${1:?backend}; shift
MODE=ids
case ${1:-} in --prepare) MODE=prepare; shift;; --session) MODE=session; shift;; esac
ROOT=$PWD; DEV=$ROOT/.dev; OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
V=/tmp/agvenv

main() {
echo "== $(date -u +%FT%TZ) $(uname -n) uid=$(id -u) root=$ROOT"
if [ ! -x $V/bin/python ] || [ ! -f $V/.ready ]; then
  t0=$(date +%s)
  python3 -m venv --system-site-packages --without-pip $V || { echo "no venv module"; return 2; }
  SP=$($V/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SP" "$DEV"/wheels/*.whl \
    || { echo "wheel install failed"; return 3; }
  # Compiled once here, by the grader: a jailed kernel cannot write __pycache__, and would compile Keras anew
  # at each start.
  $V/bin/python -m compileall -q -j 0 "$SP" >/dev/null 2>&1
  touch $V/.ready
  echo "venv + wheels: $(( $(date +%s) - t0 )) s"
fi
SP=$($V/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT" > "$SP/autograder-dev.pth"   # as an editable install would
# the machine's python3 is itself a venv (jax, torch, numpy): its packages join ours
python3 -c 'import site; print("\n".join(site.getsitepackages()))' > "$SP/machine-site.pth"
cat "$SP/machine-site.pth"
printf '#!%s\nimport sys\nfrom alembic.config import main\nsys.exit(main())\n' $V/bin/python > $V/bin/alembic
chmod +x $V/bin/alembic
export PATH=$V/bin:$SP/bin:$PATH
export KERAS_BACKEND=$BACKEND XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=3
mkdir -p $V/share/jupyter/kernels/python3
cat > $V/share/jupyter/kernels/python3/kernel.json <<EOF
{"argv": ["$V/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python 3 (ipykernel)", "language": "python"}
EOF

# bubblewrap: the machine's, else Debian's 0.8.0 carried here (as root only)
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    cp "$DEV/bwrap/bwrap" /usr/bin/bwrap
    for lib in libselinux.so.1 libpcre2-8.so.0 libcap.so.2; do
      ldconfig -p | grep -q "$lib" || cp "$DEV/bwrap/$lib" /usr/lib/x86_64-linux-gnu/
    done
    ldconfig 2>/dev/null
    echo "bwrap: carried Debian 0.8.0"
  fi
fi
bwrap --version; command -v setpriv unshare prlimit
bwrap --unshare-user --disable-userns --uid 65534 --ro-bind / / --proc /proc --dev /dev true && echo "jail: bwrap works" \
  || echo "jail: bwrap cannot start here"
ls -la /dev/nvidia* 2>&1 | head -3

export AUTOGRADER_DATA_DIR=/tmp/agdata AUTOGRADER_DATA_MIRROR=/tmp/agmirror
mkdir -p /tmp/agmirror /tmp/agdata
find /tmp/agmirror -xtype l -delete  # a link into an earlier call's copy of the tree
carried=()
for m in "$DEV"/mirror-*; do for ds in "$m"/*; do
  [ -d "$ds" ] && ln -sfn "$ds" /tmp/agmirror/ && carried+=("$(basename "$ds")")
done; done
t0=$(date +%s)
[ ${#carried[@]} -eq 0 ] || $V/bin/python -m autograder data fetch "${carried[@]}" || echo "data fetch failed"
echo "data fetch (${carried[*]:-nothing carried}): $(( $(date +%s) - t0 )) s; in /tmp/agdata: $(ls /tmp/agdata | tr '\n' ' ')"
nvidia-smi -L
stat -c '%A %U %n' "$ROOT" "$ROOT/autograder" "$ROOT/autograder/__init__.py"
$V/bin/python -c 'import keras, jax; print("keras", keras.__version__, keras.backend.backend(), jax.devices())'

if [ $MODE = prepare ]; then return 0; fi
if [ $MODE = session ]; then
  $V/bin/python "$ROOT/benchmarks/gpu_session.py" --out "$OUT" "$@"
  return
fi
for id in "$@"; do
  echo "== $id start $(date -u +%T)"
  SANDBOX=${SANDBOX:-1} $V/bin/python - "$id" <<'EOF' | tee -a "$OUT/measure.jsonl"
import json, logging, os, sys, time
logging.basicConfig(level=logging.WARNING)
import nbformat
from autograder.grader.classroom.grade import throwaway_course
from autograder.grader.classroom.reference import judge, reference_payload
from autograder.grader.classroom.worker import execute
from autograder.run.record import report
aid = sys.argv[1]
out = {"assignment": aid, "backend": os.environ["KERAS_BACKEND"]}
try:
    verbose = aid in os.environ.get("VERBOSE_IDS", "")
    with throwaway_course(aid, sandbox=os.environ["SANDBOX"] == "1", verbose=verbose) as (_, settings):
        payload = reference_payload(settings, aid, 1200)
        t = time.perf_counter()
        answer = execute(payload)
        out["wall"] = round(time.perf_counter() - t, 1)
        verdict = judge(answer, payload.config)
        seen = report(nbformat.reads(answer.notebook, as_version=4)) if answer.notebook else {}
        out.update(ok=verdict.ok, score=verdict.score, max_score=verdict.max_score, seconds=verdict.seconds,
                   scoring_seconds=verdict.scoring_seconds, device=seen.get("device"), sandbox=seen.get("sandbox"),
                   versions=seen.get("versions"), reason=verdict.reason[:600],
                   failed=[c["name"] for c in seen.get("cells", []) if c["score"] < c["max_score"]])
except BaseException as e:  # noqa: BLE001 - a measurement: say what broke
    out["error"] = f"{type(e).__name__}: {e}"[:800]
print(json.dumps(out))
EOF
done
}
main "$@" 2>&1 | tee -a "$OUT/measure.log"
