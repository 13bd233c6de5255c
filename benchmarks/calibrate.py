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

from autograder.grader.classroom.demo import student_copy  # noqa: E402
from autograder.grader.classroom.grade import grade_submission  # noqa: E402
from autograder.grader.course import ASSIGNMENTS, SOLUTIONS, worksheet_ids  # noqa: E402
from autograder.run import host  # noqa: E402

# What a hidden check measured, from its note when it passed or its message when it failed:
# named groups value and limit, and what (the measure's name) where it varies.
# A limit "< x" is a ceiling; the others are floors.
PATTERNS = [
    ("{what}", "", r"Hidden test: (?P<what>Accuracy on .+?): (?P<value>\d+(?:\.\d+)?) \(required: (?P<limit>\d+(?:\.\d+)?)\)"),
    ("{what}", "", r"(?P<what>Accuracy on .+?) is (?P<value>\d+(?:\.\d+)?), below the required (?P<limit>\d+(?:\.\d+)?)"),
    ("generalization gap, {what}", "< ",
     r"Hidden test: Generalization gap of the (?P<what>\w+) model: (?P<value>-?\d+(?:\.\d+)?) \(below (?P<limit>\d+(?:\.\d+)?)"),
    ("generalization gap, {what}", "< ",
     r"The (?P<what>\w+) model's gap between test and training loss is (?P<value>-?\d+(?:\.\d+)?), not below (?P<limit>\d+(?:\.\d+)?)"),
    ("final model: test loss minus training loss", "",
     r"Hidden test: Test loss minus training loss: (?P<value>-?\d+(?:\.\d+)?) \(at least (?P<limit>\d+(?:\.\d+)?)\)"),
    ("final model: test loss minus training loss", "",
     r"The model's test loss is only (?P<value>-?\d+(?:\.\d+)?) above .*?\(at least (?P<limit>\d+(?:\.\d+)?)"),
    ("synthetic drawings recognised (of {what}) by nearest MNIST neighbours", "",
     r"Hidden test: \w+ on (?P<what>\d+) new drawings: (?P<value>\d+) look like the right digit \(at least (?P<limit>\d+)"),
    ("synthetic drawings recognised (of {what}) by nearest MNIST neighbours", "",
     r"made from (?P<what>\d+) new drawings look like the right digit in only (?P<value>\d+) cases \(at least (?P<limit>\d+)"),
]
STEPS = re.compile(r"^(\d[\d,]*) optimizer steps", re.M)

# A common mistake is an edit of the solution source: (worksheet, what, old, new).
MISTAKES = [
    ("01_handdrawn_digits", "inputs not divided by 255", '.astype("float32") / 255.0', '.astype("float32")'),
    ("01_handdrawn_digits", "relu on the output layer", 'layers.Dense(10, activation="softmax"),\n])\nmodel.summary()',
     'layers.Dense(10, activation="relu"),\n])\nmodel.summary()'),
    ("01_handdrawn_digits", "one epoch", "EPOCHS, BATCH = 15, 512", "EPOCHS, BATCH = 1, 512"),
    ("02_fashion_mnist", "inputs not divided by 255", 'images.astype("float32") / 255.0', 'images.astype("float32")'),
    ("02_fashion_mnist", "relu on the output layer", 'layers.Dense(10, activation="softmax")',
     'layers.Dense(10, activation="relu")'),
    ("02_fashion_mnist", "one epoch", "EPOCHS, BATCH = 15, 512", "EPOCHS, BATCH = 1, 512"),
    ("03_imdb_regularization", "relu on the final model's output",
     'final_model = keras.Sequential([\n    keras.Input(shape=(10_000,)),\n    layers.Dense(16, activation="relu"),\n'
     '    layers.Dense(16, activation="relu"),\n    layers.Dense(1, activation="sigmoid"),',
     'final_model = keras.Sequential([\n    keras.Input(shape=(10_000,)),\n    layers.Dense(16, activation="relu"),\n'
     '    layers.Dense(16, activation="relu"),\n    layers.Dense(1, activation="relu"),'),
    ("03_imdb_regularization", "L2 left out (a second baseline)", "kernel_regularizer=regularizers.l2(0.001)",
     "kernel_regularizer=None"),
    ("03_imdb_regularization", "dropout rate 0 (a second baseline)", "layers.Dropout(0.5)", "layers.Dropout(0.0)"),
    ("04_lstm_sentiment", "padding at the end", "pad_sequences(train_data, maxlen=MAXLEN)",
     'pad_sequences(train_data, maxlen=MAXLEN, padding="post")'),
    ("04_lstm_sentiment", "MAXLEN = 20", "MAXLEN = 200", "MAXLEN = 20"),
    ("05_cnn", "Adadelta at Keras 3's default rate", "keras.optimizers.Adadelta(learning_rate=1.0)",
     "keras.optimizers.Adadelta()"),
    ("05_cnn", "inputs not divided by 255", 'astype("float32") / 255.0', 'astype("float32")'),
    ("06_text_cnn", "GlobalMaxPooling1D left out", "    layers.GlobalMaxPooling1D(),\n", ""),
    ("06_text_cnn", 'Conv1D with padding="same"', 'padding="valid", activation="relu"', 'padding="same", activation="relu"'),
    ("06_text_cnn", 'Conv2D without padding="same"', ', padding="same")(x)', ")(x)"),
    ("06_text_cnn", "strides left out of the output length", "return -(-length // strides)", "return length"),
]


def submission(assignment_id, folder, seed=0, edit=None):
    """The solution as a student hands it in, with ``SEED = seed`` and an optional (old, new) edit of one code cell."""
    nb = student_copy(nbformat.read(SOLUTIONS / assignment_id / f"{assignment_id}.ipynb", as_version=4))
    for cell in nb.cells:
        cell.source = re.sub(r"^SEED = \d+", f"SEED = {seed}", cell.source, flags=re.M)
    if edit:
        hits = [c for c in nb.cells if c.cell_type == "code" and edit[0] in c.source]
        if len(hits) != 1:
            raise SystemExit(f"{assignment_id}: the mistake {edit[0]!r} matches {len(hits)} code cells")
        hits[0].source = hits[0].source.replace(edit[0], edit[1])
    folder.mkdir(parents=True, exist_ok=True)
    for path in (ASSIGNMENTS / assignment_id).iterdir():  # my_digits/ and other files beside it
        if path.is_dir():
            import shutil

            shutil.copytree(path, folder / path.name, dirs_exist_ok=True)
    nbformat.write(nb, folder / f"{assignment_id}.ipynb")
    return folder / f"{assignment_id}.ipynb"


def measures(report, keep):
    """What the hidden checks measured, by test cell, and the optimizer steps the training cells printed."""
    nb = nbformat.read(next(Path(keep).glob("*.ipynb")), as_version=4)
    texts, steps = [(cell["name"], cell["message"] or "") for cell in report["cells"]], 0
    for cell in nb.cells:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        texts.append((cell.metadata.get("nbgrader", {}).get("grade_id", ""), text))
        steps += sum(int(s.replace(",", "")) for s in STEPS.findall(text))
    found = {}
    for where, text in texts:
        for name, kind, pattern in PATTERNS:
            for match in re.finditer(pattern, text):
                found[f"{where}: {name.format(**match.groupdict())}"] = (float(match["value"]), kind + match["limit"])
    return found, steps


def grade(path, work):
    keep = Path(tempfile.mkdtemp(dir=work))
    report = grade_submission(path, keep=keep)
    found, steps = measures(report, keep)
    return report, found, steps


def margin(value, limit):
    """How far ``value`` clears ``limit`` ("0.96" a floor, "< 0.31" a ceiling); negative when it fails."""
    bound = float(limit.lstrip("< "))
    return bound - value if limit.startswith("<") else value - bound


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--worksheets", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "CALIBRATION.md")
    args = parser.parse_args()
    host.configure_kernels()
    ids = args.worksheets or worksheet_ids()
    rows, wrong, summary = [], [], []
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
            first = runs[args.seeds[0]][0]
            for measure, (_, limit) in first.items():
                values = [runs[s][0].get(measure, (float("nan"), ""))[0] for s in args.seeds]
                worst = min(margin(v, limit) for v in values)
                rows.append(f"| {assignment_id} | {measure} | " + " | ".join(f"{v:.4f}" for v in values)
                            + f" | {limit} | {worst:+.4f} |")
            for worksheet, what, old, new in MISTAKES:
                if worksheet != assignment_id:
                    continue
                path = submission(assignment_id, work / f"{assignment_id}-mistake-{len(wrong)}", 0, (old, new))
                report, found, _ = grade(path, work)
                print(f"{assignment_id} mistake {what}: {report['score']:g}/{report['max_score']:g} {found}", flush=True)
                failed = {m: (v, limit) for m, (v, limit) in found.items() if margin(v, limit) < 0}
                lost = [c["name"] for c in report["cells"] if c["score"] < c["max_score"]]
                points = f"{report['score']:g}/{report['max_score']:g} (lost: {', '.join(lost) or 'nothing'})"
                for measure, (value, limit) in failed.items():
                    wrong.append(f"| {assignment_id} | {what} | {points} | {measure} | {value:.4f} | {limit} "
                                 f"| {-margin(value, limit):.4f} |")
                if not failed:  # the points went to a layer or function check, which measures no number
                    wrong.append(f"| {assignment_id} | {what} | {points} | none (a check without a number) | - | - | - |")
            seconds = [runs[s][2] for s in args.seeds]
            summary.append(f"| {assignment_id} | {runs[args.seeds[0]][1]:,} | {statistics.median(seconds):.0f} "
                           f"({min(seconds):.0f}-{max(seconds):.0f}) | "
                           + ", ".join(f"{runs[s][3]:g}/{runs[s][4]:g}" for s in args.seeds) + " |")
    lines = [
        "# Calibration of the hidden-test floors", "",
        f"Measured by `benchmarks/calibrate.py` on {host.device()}: each solution graded with `SEED` = "
        f"{', '.join(map(str, args.seeds))} by `autograder grade` (the jail on), then each common mistake "
        "on seed 0. A limit `< x` is a ceiling; the others are floors.", "",
        "## The solutions: how far the worst seed clears each limit", "",
        "| worksheet | measure | " + " | ".join(f"seed {s}" for s in args.seeds) + " | limit | worst seed's margin |",
        "|---|---|" + "---:|" * len(args.seeds) + "---|---:|", *rows, "",
        "## Common mistakes: how far each falls short", "",
        "| worksheet | mistake | score | measure it fails | value | limit | short by |",
        "|---|---|---|---|---:|---|---:|", *wrong, "",
        "## Steps, time and scores of the solutions", "",
        "| worksheet | optimizer steps | grading time, s (median, range) | scores |",
        "|---|---:|---|---|", *summary, "",
        "Optimizer steps are those the training cells print. Worksheet 1's softmax warm-up prints none: "
        "3 epochs at batch 256 are 705 more, 2,295 in all. Before the recipes changed (batch 64, 12 "
        "epochs for the dense nets) worksheet 1 took 11,535 steps (5.0x more) and worksheet 2 10,128 "
        "(6.4x); worksheets 3 (1,696) and 4 (939) were under 2,000, and worksheet 3 now trains at batch "
        "128 for 5 epochs instead of batch 512 for 10, fewer epochs but more steps, in less time.", "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
