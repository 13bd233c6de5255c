#!/usr/bin/env bash
# The course's JupyterHub on one machine, as root: everything `autograder hub` checks before it starts.
#
#   bash scripts/hub-setup.sh --course DIR --instructor NAME --student NAME [--student NAME ...]
#        [--students-file FILE] [--hub-dir DIR] [--instructors-group G] [--students-group G] [--worksheets DIR]
#
# 0. A course folder outside this checkout gets the worksheets' sources (with their solutions and hidden
#    tests; --worksheets, default this checkout's solutions/) in DIR/source/, and DIR/nbgrader_config.py: the
#    one place to configure the course (late penalty, drawings, limits), on top of the kit's defaults.
# 1. Unix groups (instructors, students) and users, each with a private home (0700). No passwords are
#    set: for PAM log-ins set them with `passwd` or `chpasswd`; other authenticators need none.
# 2. This kit's checkout (solutions, the grader's package and its hidden data, published pages, the
#    course secret) and the course folder become private to the instructors' group: students get no
#    access at all. The first --instructor owns the course folder.
# 3. The students' Python in HUB_DIR/student-env: the student kit's wheel (built from this checkout)
#    and JupyterHub's single-user server, at the versions of this checkout's .venv. Rebuilt only when
#    the kit changed.
# 4. The dataset cache the students' kernels read, in HUB_DIR/datasets, read-only for all.
#
# Run it again to add students (--students-file takes one user name per line, # for comments); it
# changes only what is missing. Then: sudo .venv/bin/autograder hub --root DIR --hub-dir HUB_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
project=$(pwd -P)
course=$project
worksheets=$project/solutions
hub_dir=/srv/autograder
instructors_group=instructors
students_group=students
instructors=()
students=()
while [ $# -gt 0 ]; do
  case "$1" in
    --course) course=$2; shift 2 ;;
    --worksheets) worksheets=$2; shift 2 ;;
    --hub-dir) hub_dir=$2; shift 2 ;;
    --instructor) instructors+=("$2"); shift 2 ;;
    --student) students+=("$2"); shift 2 ;;
    --students-file) mapfile -t listed < <(sed 's/#.*//' "$2" | awk 'NF {print $1}'); students+=("${listed[@]}"); shift 2 ;;
    --instructors-group) instructors_group=$2; shift 2 ;;
    --students-group) students_group=$2; shift 2 ;;
    *) echo "hub-setup: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "hub-setup: run it as root (with sudo, or in a root shell): it creates users and sets owners" >&2; exit 2; }
[ -x .venv/bin/python ] || { echo "hub-setup: no .venv here; run scripts/setup.sh first" >&2; exit 2; }
# Every user runs Python from this checkout's .venv (instructors) or from a venv on the same base
# interpreter (students), so that interpreter must be open to all: pyenv's under /root is not.
base_python=$(.venv/bin/python -c "import sys; print(sys._base_executable)")
if ! runuser -u nobody -- "$base_python" -c "" 2>/dev/null; then
  echo "hub-setup: other users cannot run $base_python (.venv's interpreter); run bash scripts/setup.sh, which rebuilds .venv on a Python they can run" >&2
  exit 2
fi
mkdir -p "$course" "$hub_dir"
course=$(realpath "$course")
hub_dir=$(realpath "$hub_dir")
for name in "${instructors[@]}" "${students[@]}"; do
  [[ $name =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || { echo "hub-setup: $name is not a valid Unix user name" >&2; exit 2; }
done

# A course inside this checkout (the demo's) grades the checkout's solutions/, which its instructors see there.
if [ "$course" != "$project" ] && [[ "$course" != "$project"/* ]]; then
  echo "== the course: its worksheets in $course/source/, its settings (late penalty, drawings, limits) in $course/nbgrader_config.py"
  .venv/bin/python -c "import sys; from autograder.grader.course import start_course; start_course(*sys.argv[1:])" \
    "$course" "$worksheets"
fi

echo "== users: instructors (${instructors[*]:-none new}), students (${students[*]:-none new})"
groupadd -f "$instructors_group"
groupadd -f "$students_group"
add_user() {  # NAME GROUP
  id -u "$1" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash --user-group "$1"
  usermod -a -G "$2" "$1"
  chmod 700 "$(getent passwd "$1" | cut -d: -f6)"
}
for name in "${instructors[@]}"; do add_user "$name" "$instructors_group"; done
for name in "${students[@]}"; do add_user "$name" "$students_group"; done

echo "== private to the $instructors_group group: $project and $course"
owner=${instructors[0]:-$(stat -c %U "$course")}
# The checkout holds the solutions, the hidden checks and data, the published solutions and the secret.
chgrp -R "$instructors_group" "$project"
chmod -R g+rX,o-rwx "$project"
# What the grading jail's unprivileged uid reads, and nothing private: the interpreter and libraries,
# and the public datasets. Other users still cannot walk into the checkout to reach them; the grader
# (as root) binds them into the jail (autograder/run/jail.py).
chmod -R o+rX "$project/.venv" "$project/datasets"
if [ "$course" != "$project" ]; then
  chown -R "$owner:$instructors_group" "$course"
  chmod -R u+rwX,g+rX,o-rwx "$course"
fi
# The course secrets (the hidden tests' seeds; a course without its own configuration uses the
# project's), made now, readable by the instructors and no one else.
for folder in "$project" "$course"; do
  .venv/bin/python -c "import sys
from autograder import UserError
from autograder.grader.hidden_tests.launch import course_secret
try:
    course_secret(sys.argv[1])
except UserError as e:  # a link where the secret goes: one sentence
    sys.exit(f'hub-setup: {e}')" "$folder" || exit 2
  chgrp -h "$instructors_group" "$folder/.autograder-secret"
  [ -L "$folder/.autograder-secret" ] || chmod 640 "$folder/.autograder-secret"
done
[ "$course" = "$project" ] || chown -h "$owner" "$course/.autograder-secret"
if [ ${#instructors[@]} -gt 0 ] && ! runuser -u "${instructors[0]}" -- test -r "$project/nbgrader_config.py"; then
  echo "hub-setup: ${instructors[0]} cannot reach $project; let them through its parent folders (chmod o+x)" >&2
  exit 1
fi

echo "== the students' Python in $hub_dir/student-env"
chmod 755 "$hub_dir"
kit_digest=$(.venv/bin/python - <<'EOF'
import hashlib, sys
from autograder import kit
digest = hashlib.sha256(sys._base_executable.encode())
for rel, source in kit.files():
    digest.update(rel.encode() + b"\0" + source.read_bytes())
print(digest.hexdigest()[:16])
EOF
)
stamp="$hub_dir/student-env/.kit-$kit_digest"
if [ ! -f "$stamp" ]; then
  rm -rf "$hub_dir/student-env" "$hub_dir/dist"
  "$base_python" -m venv "$hub_dir/student-env"
  wheel=$(.venv/bin/python -c "import sys; from autograder.run.kit import build_wheel; print(build_wheel(sys.argv[1]))" "$hub_dir/dist")
  # The same versions as the grader's environment, so that Validate and grading agree.
  .venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' > "$hub_dir/dist/constraints.txt"
  "$hub_dir/student-env/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$hub_dir/dist/constraints.txt" "$wheel" jupyterhub 2>&1 | grep -v "is ignored" || true
  "$hub_dir/student-env/bin/python" -c "import autograder.checks, autograder.nbgrader_exchange.private_submit, jupyterhub" ||
    { echo "hub-setup: the students' environment did not install" >&2; exit 1; }
  touch "$stamp"
fi
chown -R root:root "$hub_dir/student-env"
chmod -R a+rX,go-w "$hub_dir/student-env"

echo "== the dataset cache in $hub_dir/datasets, read-only"
AUTOGRADER_DATA_DIR="$hub_dir/datasets" "$hub_dir/student-env/bin/autograder" data fetch --mirror "$(.venv/bin/python -c 'from autograder.datasets.download import data_dir; print(data_dir())')"
chown -R root:root "$hub_dir/datasets"
chmod -R a+rX,go-w "$hub_dir/datasets"
echo "== done; start the hub with: sudo $project/.venv/bin/autograder hub --root $course --hub-dir $hub_dir"
