"""`autograder demo`: the course end to end on three sample students.

- ada hands in the full solutions (hidden tests removed, as a student's copy has none);
- ben hands in the untouched release;
- cy hands in the solutions with one common mistake in each worksheet.

The demo releases the worksheets, grades the submissions with `grade-all` on
two local Dask workers into a gradebook in `demo/`, exports
`demo/grades.csv`, writes feedback and prints a table of scores.
"""

import copy
import shutil
from pathlib import Path

import nbformat

from ..course import (
    ASSIGNMENTS,
    SOLUTIONS,
    course_of,
    course_settings,
    release,
    worksheet_ids,
)

# One common mistake per worksheet, as an edit of the solution source, and the
# test cells that lose their points because of it (all of them, and no others).
COMMON_MISTAKES = {
    "01_handdrawn_digits": (
        ('layers.Dense(100, activation="relu"),\n    layers.Dense(50,',
         'layers.Dense(100, activation="relu"),\n    layers.Dense(64,'),
        {"test_dense_architecture", "test_dense_accuracy", "test_handdrawn"},
        "a wrong layer size (64 units instead of 50): the accuracy checks measure only the required architecture",
    ),
    "02_fashion_mnist": (
        ('layers.Dense(10, activation="softmax")', 'layers.Dense(10, activation="relu")'),
        {"test_architecture", "test_accuracy"},
        "relu instead of softmax on the output",
    ),
    "03_imdb_regularization": (
        ('layers.Dense(4, activation="relu"),\n    layers.Dense(1, activation="sigmoid")',
         'layers.Dense(4, activation="relu"),\n    layers.Dense(1, activation="relu")'),
        {"test_smaller_architecture"},
        "relu on the smaller model's output, as on the course slide",
    ),
    "04_lstm_sentiment": (
        ("history = model.fit(", "history = None and model.fit("),
        {"test_accuracy", "test_predict_sentiment"},
        "forgetting to train the model",
    ),
    "05_cnn": (
        ("keras.optimizers.Adadelta(learning_rate=1.0)", "keras.optimizers.Adadelta()"),
        {"test_lenet_accuracy"},
        "Adadelta at Keras 3's default learning rate (0.001 where the deck's Keras 2 had 1.0)",
    ),
    "06_text_cnn": (
        ("    layers.GlobalMaxPooling1D(),\n", ""),
        {"test_text_cnn_architecture", "test_text_cnn_accuracy"},
        "GlobalMaxPooling1D left out of the text CNN (its Dense layers then score each position)",
    ),
}


def student_copy(nb, solutions=SOLUTIONS):
    """A solution notebook as a student would hand it in: no hidden tests (the markers of the course whose
    solutions are in ``solutions``)."""
    from nbgrader.preprocessors import ClearHiddenTests

    nb, _ = ClearHiddenTests(config=course_of(solutions)).preprocess(copy.deepcopy(nb), {})  # edits cells in place
    return nb


def with_mistake(nb, assignment_id):
    (old, new), _, _ = COMMON_MISTAKES[assignment_id]
    cells = [cell for cell in nb.cells if old in cell.source]
    if len(cells) != 1:
        raise ValueError(f"the mistake for {assignment_id} matches {len(cells)} cells, not 1")
    cells[0].source = cells[0].source.replace(old, new, 1)
    return nb


def make_submissions(root):
    """Write submitted/<student>/<id>/ for the three sample students."""
    submitted = Path(root) / "submitted"
    for assignment_id in worksheet_ids():
        solution = nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4)
        for student, nb in (("ada", student_copy(solution)),
                            ("ben", None),
                            ("cy", with_mistake(student_copy(solution), assignment_id))):
            folder = submitted / student / assignment_id
            if folder.exists():
                shutil.rmtree(folder)
            shutil.copytree(ASSIGNMENTS / assignment_id, folder)
            if nb is not None:
                nbformat.write(nb, folder / f"{assignment_id}.ipynb")
    return submitted


def score_table(outcomes):
    students = sorted({key.split("/")[0] for key in outcomes})
    ids = worksheet_ids()
    lines = ["student  " + "  ".join(f"{i[:14]:>14}" for i in ids)]
    for student in students:
        cells = []
        for assignment_id in ids:
            o = outcomes.get(f"{student}/{assignment_id}", {"status": "missing"})
            cells.append(f"{o['score']:g}/{o['max_score']:g}" if o["status"] == "graded" else o["status"])
        lines.append(f"{student:<8} " + "  ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


STUDENTS = {"ada": ("Ada", "Lovelace"), "ben": ("Ben", "Bitdiddle"), "cy": ("Cy", "D. Fect")}


def register_students(root):
    """The class list, as an instructor enters it: Formgrader shows names, not ids alone."""
    from ..course import nbgrader_api

    with nbgrader_api(root, **course_settings(root)).gradebook as gb:
        for student, (first, last) in STUDENTS.items():
            gb.update_or_create_student(student, first_name=first, last_name=last)


def reference_student_problem(outcomes):
    """Why ada, who handed in the solutions, is short of full marks (the host or the course is broken), or ''."""
    short = []
    for assignment_id in worksheet_ids():
        o = outcomes.get(f"ada/{assignment_id}", {"status": "missing", "reason": "no outcome"})
        if o["status"] != "graded":
            short.append(f"{assignment_id}: {o['status']} ({o.get('reason', '')})")
        elif o["score"] < o["max_score"]:
            short.append(f"{assignment_id}: {o['score']:g}/{o['max_score']:g} ({'; '.join(o['failed_tests'])})")
    return "; ".join(short)


def run_demo(root, workers=2):
    from ... import UserError
    from ..pages.feedback import generate_all
    from .grade_all import format_outcomes, grade_all

    root = Path(root)
    print("== releasing the worksheets to assignments/")
    release()
    print(f"== sample submissions for ada (solutions), ben (untouched) and cy (one mistake each) in {root}/submitted")
    make_submissions(root)
    register_students(root)
    print(f"== grading with {workers} workers")
    outcomes = grade_all(root, workers, **course_settings(root))
    print(format_outcomes(outcomes))
    problem = reference_student_problem(outcomes)
    if problem:
        raise UserError(f"ada, who handed in the solutions, is short of full marks, so this host or the course is "
                        f"broken: {problem}.")
    print("== feedback, hidden tests removed")
    feedback = generate_all(root, **course_settings(root))
    print(f"{len(feedback)} feedback files in {root / 'feedback'}")
    print(f"\ngrades: {root / 'grades.csv'}\n")
    print(score_table(outcomes))
    return outcomes
