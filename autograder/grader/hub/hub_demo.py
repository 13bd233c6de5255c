"""`autograder demo --hub`: the demo course through nbgrader's exchange, as it runs on the course's JupyterHub.

As root, with the demo's three students (ada, ben, cy) and an instructor as
Unix users made by scripts/hub-setup.sh, each step runs as the user who would
take it in the browser, with the same configuration their servers get:

1. the instructor generates and releases the five worksheets;
2. each student fetches them, puts in their work (ada the solutions, ben
   nothing, cy one common mistake per worksheet) and submits;
3. the instructor collects (`SafeCollect`), grades with `grade-all` in the
   jail, generates feedback without the hidden tests and releases it.

It ends with the scores and how to start the hub and log in: the students
fetch their feedback in the Assignment List.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from ... import UserError
from ..classroom.demo import STUDENTS, score_table, student_copy, with_mistake
from ..course import SOLUTIONS, worksheet_ids
from .course_hub import (
    SETUP_SCRIPT,
    Hub,
    as_user,
    instructor_environment,
    make_exchange,
    student_environment,
    write_configs,
)

INSTRUCTOR = "instructor"


def work_of(student, assignment_id):
    """What the sample student hands in for a worksheet, or None for the untouched release."""
    if student == "ben":
        return None
    solution = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
    return solution if student == "ada" else with_mistake(solution, assignment_id)


def run_as(user, command, env, cwd=None):
    """A step as ``user``; its output only when it fails, with the step in one sentence."""
    result = as_user(user, command, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise UserError(f"`{' '.join(map(str, command))}` as {user} failed: {lines[-1] if lines else result.returncode}")
    return result.stdout


def run_hub_demo(root, hub_dir, workers=2):
    if os.geteuid() != 0:
        raise UserError("`autograder demo --hub` must run as root: it makes the sample students Unix users and "
                        "acts as each of them (sudo .venv/bin/autograder demo --hub).")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    students = sorted(STUDENTS)
    print(f"== users ({INSTRUCTOR}; {', '.join(students)}), the students' environment and data in {hub_dir}")
    subprocess.run(["bash", str(SETUP_SCRIPT), "--course", str(root), "--hub-dir", str(hub_dir),
                    "--instructor", INSTRUCTOR, *[a for s in students for a in ("--student", s)]], check=True)
    hub = Hub(root, hub_dir)
    make_exchange(hub)
    _, password = write_configs(hub, authenticator="shared-password")
    teacher, learner = instructor_environment(hub), student_environment(hub)
    ids = worksheet_ids()

    print(f"== {INSTRUCTOR}: the class list, then generate and release {len(ids)} worksheets to the exchange")
    for student, (first, last) in STUDENTS.items():
        run_as(INSTRUCTOR, ["nbgrader", "db", "student", "add", student, f"--first-name={first}",
                            f"--last-name={last}"], teacher, root)
    for assignment_id in ids:
        run_as(INSTRUCTOR, ["nbgrader", "generate_assignment", assignment_id, "--force"], teacher, root)
        run_as(INSTRUCTOR, ["nbgrader", "release_assignment", assignment_id, "--force"], teacher, root)

    for student in students:
        print(f"== {student}: fetch, work, submit")
        home = Path(f"~{student}").expanduser()
        for assignment_id in ids:
            if not (home / assignment_id).is_dir():
                run_as(student, ["nbgrader", "fetch_assignment", assignment_id], learner)
            nb = work_of(student, assignment_id)
            if nb is not None:
                write_as(student, home / assignment_id / f"{assignment_id}.ipynb", nbformat.writes(nb), learner, hub)
            run_as(student, ["nbgrader", "submit", assignment_id], learner)

    print(f"== {INSTRUCTOR}: collect, grade-all on {workers} workers, feedback, release feedback")
    for assignment_id in ids:
        run_as(INSTRUCTOR, ["nbgrader", "collect", assignment_id], teacher, root)
    as_user(INSTRUCTOR, ["autograder", "grade-all", "--workers", workers], env=teacher, cwd=root)
    run_as(INSTRUCTOR, ["autograder", "feedback"], teacher, root)
    for assignment_id in ids:
        run_as(INSTRUCTOR, ["nbgrader", "release_feedback", assignment_id], teacher, root)

    outcomes = json.loads((root / "grade-all.json").read_text())
    print()
    print(score_table(outcomes))
    print(f"\nStart the hub: sudo {Path(sys.executable).parent / 'autograder'} hub --root {root} --hub-dir {hub_dir} "
          "--authenticator shared-password\nthen log in at http://127.0.0.1:8000/ as "
          f"{INSTRUCTOR} (Formgrader) or {', '.join(students)} (Assignment List: Fetch Feedback), "
          f"password {password}.")
    return outcomes


def write_as(user, path, text, env, hub):
    """Write ``text`` to ``path`` as ``user``, as their own editor would."""
    result = as_user(user, [hub.student_env / "bin" / "python", "-c",
                            "import sys; open(sys.argv[1], 'w').write(sys.stdin.read())", path],
                     env=env, input=text, capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"could not write {path} as {user}: {result.stderr.strip().splitlines()[-1:]}")
