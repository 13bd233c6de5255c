"""Calibrate the hidden-test floors: grade each solution on several seeds, and the common mistakes.

    .venv/bin/python benchmarks/calibrate.py [--seeds 0 1 2 3 4] [--worksheets ID ...] [--out benchmarks/CALIBRATION.md]

Each solution is handed in as a student would (hidden tests removed) with
`SEED = n`, and graded by `autograder grade`, the jail on. The hidden checks
report what they measured (accuracy on held-out data, generalization gaps,
accuracy on the hand-drawn set); the training cells print their optimizer
steps. Then each common mistake of `MISTAKES` is graded on seed 0. The table
gives, per measure, the range over seeds, the floor, the margin of the worst
seed above it, and the margin of the floor above the best mistake.
"""

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import host  # noqa: E402
from autograder.grader.course import ASSIGNMENTS, SOLUTIONS, worksheet_ids  # noqa: E402
from autograder.grader.demo import student_copy  # noqa: E402
from autograder.grader.grading import grade_submission  # noqa: E402

MEASURE = re.compile(r"^Hidden test: (.+?): (-?[0-9.]+)(?: \(required: ([^)]+)\))?", re.M)
GAP = re.compile(r"^Hidden test: Generalization gap of the (\w+) model: (-?[0-9.]+) \(below ([0-9.]+)", re.M)
STEPS = re.compile(r"^(\d[\d,]*) optimizer steps", re.M)

# A common mistake is an edit of the solution source: (worksheet, what, old, new).
MISTAKES = [
    ("01_handdrawn_digits", "inputs not divided by 255", '.astype("float32") / 255.0', '.astype("float32")'),
    ("01_handdrawn_digits", "relu on the output layer", 'layers.Dense(10, activation="softmax"),\n])\nmodel.summary()',
     'layers.Dense(10, activation="relu"),\n])\nmodel.summary()'),
    ("01_handdrawn_digits", "one epoch", "EPOCHS = 8", "EPOCHS = 1"),
    ("02_fashion_mnist", "inputs not divided by 255", 'images.astype("float32") / 255.0', 'images.astype("float32")'),
    ("02_fashion_mnist", "relu on the output layer", 'layers.Dense(10, activation="softmax")',
     'layers.Dense(10, activation="relu")'),
    ("02_fashion_mnist", "one epoch", "EPOCHS = 15", "EPOCHS = 1"),
    ("03_imdb_regularization", "relu on the final model's output",
     'final_model = keras.Sequential([\n    keras.Input(shape=(10_000,)),\n    layers.Dense(16, activation="relu"),\n'
     '    layers.Dense(16, activation="relu"),\n    layers.Dense(1, activation="sigmoid"),',
     'final_model = keras.Sequential([\n    keras.Input(shape=(10_000,)),\n    layers.Dense(16, activation="relu"),\n'
     '    layers.Dense(16, activation="relu"),\n    layers.Dense(1, activation="relu"),'),
    ("03_imdb_regularization", "L2 and dropout left out (plain baselines)", "kernel_regularizer=regularizers.l2(0.001)",
     "kernel_regularizer=None"),
    ("04_lstm_sentiment", "padding at the end", "pad_sequences(train_data, maxlen=MAXLEN)",
     'pad_sequences(train_data, maxlen=MAXLEN, padding="post")'),
    ("04_lstm_sentiment", "MAXLEN = 20", "MAXLEN = 200", "MAXLEN = 20"),
    ("05_cnn", "Adadelta at Keras 3's default rate", "keras.optimizers.Adadelta(learning_rate=1.0)",
     "keras.optimizers.Adadelta()"),
    ("05_cnn", "inputs not divided by 255", 'astype("float32") / 255.0', 'astype("float32")'),
]


def submission(assignment_id, folder, seed=0, edit=None):
    """The solution as a student hands it in, with ``SEED = seed`` and an optional (old, new) edit."""
    nb = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
    for cell in nb.cells:
        cell.source = re.sub(r"^SEED = \d+", f"SEED = {seed}", cell.source, flags=re.M)
    if edit:
        hits = [c for c in nb.cells if edit[0] in c.source]
        if len(hits) != 1:
            raise SystemExit(f"{assignment_id}: the mistake {edit[0]!r} matches {len(hits)} cells")
        hits[0].source = hits[0].source.replace(edit[0], edit[1], 1)
    folder.mkdir(parents=True, exist_ok=True)
    for path in (ASSIGNMENTS / assignment_id).iterdir():  # my_digits/ and other files beside it
        if path.is_dir():
            import shutil

            shutil.copytree(path, folder / path.name, dirs_exist_ok=True)
    nbformat.write(nb, folder / f"{assignment_id}.ipynb")
    return folder / f"{assignment_id}.ipynb"


def measures(report, keep):
    """What the hidden checks measured, and the optimizer steps the training cells printed."""
    nb = nbformat.read(next(Path(keep).glob("*.ipynb")), as_version=4)
    found, steps = {}, 0
    for cell in nb.cells:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        for name, value, floor in MEASURE.findall(text):
            found[name] = (float(value), floor)
        for name, gap, limit in GAP.findall(text):
            found[f"generalization gap, {name}"] = (float(gap), f"< {limit}")
        steps += sum(int(s.replace(",", "")) for s in STEPS.findall(text))
    return found, steps


def grade(path, work):
    keep = Path(tempfile.mkdtemp(dir=work))
    report = grade_submission(path, keep=keep)
    found, steps = measures(report, keep)
    return report, found, steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--worksheets", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "CALIBRATION.md")
    args = parser.parse_args()
    host.configure_kernels()
    ids = args.worksheets or worksheet_ids()
    rows, summary = [], []
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        work = Path(tmp)
        for assignment_id in ids:
            runs = {}
            for seed in args.seeds:
                path = submission(assignment_id, work / f"{assignment_id}-{seed}", seed)
                report, found, steps = grade(path, work)
                runs[seed] = (found, steps, report["seconds"], report["score"], report["max_score"])
                print(f"{assignment_id} seed {seed}: {report['score']:g}/{report['max_score']:g} in "
                      f"{report['seconds']:.0f} s, {steps} steps, {found}", flush=True)
            mistakes = {}
            for worksheet, what, old, new in MISTAKES:
                if worksheet == assignment_id:
                    path = submission(assignment_id, work / f"{assignment_id}-{len(mistakes)}-mistake", 0, (old, new))
                    report, found, _ = grade(path, work)
                    mistakes[what] = found
                    print(f"{assignment_id} mistake {what}: {found}", flush=True)
            first = runs[args.seeds[0]][0]
            for measure, (_, floor) in first.items():
                values = [runs[s][0].get(measure, (float("nan"), ""))[0] for s in args.seeds]
                worst = max(values) if floor.startswith("<") else min(values)
                limit = float(floor.lstrip("< ")) if floor else float("nan")
                margin = limit - worst if floor.startswith("<") else worst - limit
                bad = [f"{what} {m[measure][0]:.4f}" for what, m in mistakes.items() if measure in m]
                rows.append(f"| {assignment_id} | {measure} | " + " | ".join(f"{v:.4f}" for v in values)
                            + f" | {floor} | {margin:+.4f} | {'; '.join(bad) or '-'} |")
            seconds = [runs[s][2] for s in args.seeds]
            summary.append(f"| {assignment_id} | {runs[args.seeds[0]][1]:,} | {statistics.median(seconds):.0f} "
                           f"({min(seconds):.0f}-{max(seconds):.0f}) | "
                           + ", ".join(f"{runs[s][3]:g}/{runs[s][4]:g}" for s in args.seeds) + " |")
    lines = [
        "# Calibration of the hidden-test floors", "",
        f"Measured by `benchmarks/calibrate.py` on {host.device()}: each solution graded with `SEED` = "
        f"{', '.join(map(str, args.seeds))} by `autograder grade`, then each common mistake on seed 0.", "",
        "## Measures", "",
        "| worksheet | measure | " + " | ".join(f"seed {s}" for s in args.seeds)
        + " | floor | worst seed's margin | common mistakes (seed 0) |",
        "|---|---|" + "---:|" * len(args.seeds) + "---|---:|---|", *rows, "",
        "## Steps, time and scores", "",
        "| worksheet | optimizer steps | grading time, s (median, range) | scores |",
        "|---|---:|---|---|", *summary, "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
