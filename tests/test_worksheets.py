"""The six worksheets: the release is clean and in sync, the hidden tests are fair, and grading is right.

The grading tests run whole notebooks through `autograder grade` (the jail
on) on the real data: a few minutes on 2 CPU cores; `-m "not slow"` skips them.
"""

import json
import re
import shutil

import keras
import nbformat
import pytest
from keras import layers
from nbgrader.preprocessors import ClearHiddenTests

from autograder.checks import CheckFailed
from autograder.grader import course
from autograder.grader.classroom.demo import COMMON_MISTAKES, student_copy, with_mistake
from autograder.grader.classroom.grade import grade_submission, reference_verdict
from autograder.grader.hidden_tests import vocabulary as hidden
from autograder.grader.hidden_tests.launch import check_in_clean_process
from autograder.grader.hidden_tests.scorer import parse
from autograder.grader.pages.offline import DropSolutionMarkers
from autograder.grader.tools.publish import DOCS, published_code
from autograder.run.hidden_regions import Markers

hidden_blocks = Markers().blocks

IDS = ["01_handdrawn_digits", "02_fashion_mnist", "03_imdb_regularization", "04_lstm_sentiment", "05_cnn",
       "06_text_cnn"]
BLOCK = {
    "solution": re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S),
    "hidden": re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S),
}


def notebook(root, assignment_id):
    return nbformat.read(root / assignment_id / f"{assignment_id}.ipynb", as_version=4)


def graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]


def protected_lines(assignment_id, kind):
    """Lines inside solution or hidden-test blocks that say something specific."""
    lines = set()
    for cell in notebook(course.SOLUTIONS, assignment_id).cells:
        for block in BLOCK[kind].findall(cell.source):
            lines.update(line.strip() for line in block.splitlines() if len(line.strip()) > 12)
    return lines - {"return results"}


def test_the_course_has_the_six_worksheets():
    assert course.worksheet_ids() == IDS


@pytest.mark.parametrize("assignment_id", IDS)
def test_release_has_no_solution_code_and_no_hidden_tests(assignment_id):
    released = notebook(course.ASSIGNMENTS, assignment_id)
    text = "\n".join(cell.source for cell in released.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    for kind in ("solution", "hidden"):
        leaked = {line for line in protected_lines(assignment_id, kind) if line in text}
        assert not leaked, f"{kind} lines in the release: {sorted(leaked)[:3]}"
    code = "\n".join(cell.source for cell in released.cells if cell.cell_type == "code")
    assert code.count("# YOUR CODE HERE") == sum(
        "### BEGIN SOLUTION" in c.source for c in notebook(course.SOLUTIONS, assignment_id).cells)


@pytest.mark.parametrize("assignment_id", IDS)
def test_every_test_cell_has_a_visible_part_and_a_hidden_part_the_grader_can_run(assignment_id):
    """A visible test of the same kind sits beside each hidden one, and every hidden block plans."""
    for cell in graded_cells(notebook(course.SOLUTIONS, assignment_id)):
        name = cell.metadata.nbgrader["grade_id"]
        blocks = hidden_blocks(cell.source)
        assert blocks, f"{name} has no hidden test: its points would rest on the student's kernel alone"
        visible = cell.source.split("### BEGIN HIDDEN TESTS")[0].strip()
        assert visible and not visible.startswith("#"), f"{name} has no visible test"
        assert parse("\n".join(blocks), where=name)


@pytest.mark.parametrize("assignment_id", IDS)
def test_every_floor_is_stated_in_the_text_above_its_test(assignment_id):
    nb = notebook(course.SOLUTIONS, assignment_id)
    text = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text += cell.source
            continue
        for block in hidden_blocks(cell.source):
            for value in re.findall(r"(?:floor|max_gap)=([0-9.]+)", block):
                assert value in text, f"{cell.metadata.nbgrader['grade_id']}: floor {value} not stated above"


def test_regenerating_the_release_gives_no_diff(tmp_path):
    shutil.copytree(course.SOLUTIONS, tmp_path / "solutions")
    course.release(root=tmp_path)
    for assignment_id in IDS:
        committed = sorted(p.relative_to(course.ASSIGNMENTS) for p in (course.ASSIGNMENTS / assignment_id).rglob("*"))
        fresh = sorted(p.relative_to(tmp_path / "assignments") for p in (tmp_path / "assignments" / assignment_id).rglob("*"))
        assert committed == fresh
        for rel in committed:
            a, b = course.ASSIGNMENTS / rel, tmp_path / "assignments" / rel
            if a.is_file():
                assert a.read_bytes() == b.read_bytes(), f"{rel} differs: run `autograder release`"


# A cell that draws: each must show its figure on the published page.
DRAWS = re.compile(r"plt\.(subplots|hist|imshow)\(|^plot_\w+\(", re.M)


@pytest.mark.parametrize("assignment_id", IDS)
def test_the_published_page_shows_the_current_solution_run_with_its_plots(assignment_id):
    page = DOCS / f"{assignment_id}.html"
    assert page.is_file(), f"no {page}: run `autograder publish {assignment_id}`"
    html = page.read_text()
    solution, _ = ClearHiddenTests().preprocess(notebook(course.SOLUTIONS, assignment_id), {})
    solution, _ = DropSolutionMarkers().preprocess(solution, {})
    solution = [c.source for c in solution.cells if c.cell_type == "code"]
    shown = [source.rstrip() for source in solution]
    assert published_code(html) == shown, f"{page.name} is out of date: run `autograder publish {assignment_id}`"
    assert "In [ ]:" not in html, "a cell was not run"
    cells = html.split('<div class="jp-Cell jp-CodeCell')[1:]
    for source, cell in zip(solution, cells):
        if DRAWS.search(source):
            assert "<img" in cell, f"no figure under {source.splitlines()[0]!r}"
    assert "BEGIN HIDDEN TESTS" not in html and "hidden.expect" not in html and "BEGIN SOLUTION" not in html
    markdown = "".join(c.source for c in notebook(course.SOLUTIONS, assignment_id).cells if c.cell_type == "markdown")
    if "$" in markdown:  # math drawn as MathML when the page was made: no MathJax, no CDN needed
        assert re.search(r'<math [^>]*xmlns="http://www.w3.org/1998/Math/MathML"', html)
    assert '<link rel="stylesheet" href="style.css">' in html and "<style" not in html
    assert ".jp-Cell" in (DOCS / "style.css").read_text()


# --- grading through nbgrader ---------------------------------------------------

# Correct answers in other valid styles, all in one hand-in per worksheet; each must still get full marks.
OTHER_STYLES = {
    # The functional API, a Dense layer followed by an Activation layer, tf.nn.softmax,
    # and float64 images from `images / 255.0`.
    "02_fashion_mnist": [
        ('model = keras.Sequential([\n    keras.Input(shape=(28, 28)),\n    layers.Flatten(),\n'
         '    layers.Dense(128, activation="relu"),\n    layers.Dense(10, activation="softmax"),\n])',
         'import tensorflow as tf\n\ninputs = keras.Input(shape=(28, 28))\n'
         'hidden = layers.Dense(128, activation="relu")(layers.Flatten()(inputs))\n'
         'model = keras.Model(inputs, layers.Activation(tf.nn.softmax)(layers.Dense(10)(hidden)))'),
        ('images.astype("float32") / 255.0', "images / 255.0"),
    ],
    # math.ceil and floats for the arithmetic; the text CNN functional, with Convolution1D, mask_zero
    # (which Keras 3's Conv1D drops with a warning) and the deck's Dense, Dropout, Activation; the
    # CIFAR-10 CNN Sequential, with ReLU(negative_slope=0.3) and a Softmax layer.
    "06_text_cnn": [
        ("    if padding in (\"same\", \"causal\"):\n        return -(-length // strides)  # ceil(length / strides)\n"
         "    return (length - kernel_size) // strides + 1",
         "    import math\n\n    if padding == \"valid\":\n        length = length - kernel_size + 1\n"
         "    return math.ceil(length / strides)"),
        ("    return (kernel_size * in_channels + 1) * filters", "    return float(np.prod([kernel_size, in_channels, filters]) + filters)"),
        ('text_cnn = keras.Sequential([\n    keras.Input(shape=(MAXLEN,)),\n    layers.Embedding(NUM_WORDS, 32),\n'
         '    layers.Conv1D(250, 3, padding="valid", activation="relu", strides=1),\n    layers.GlobalMaxPooling1D(),\n'
         '    layers.Dense(250, activation="relu"),\n    layers.Dropout(0.2),\n    layers.Dense(1, activation="sigmoid"),\n])',
         'reviews = keras.Input(shape=(MAXLEN,))\nx = layers.Embedding(NUM_WORDS, 32, mask_zero=True)(reviews)\n'
         'x = keras.layers.Convolution1D(250, 3, activation="relu")(x)\nx = layers.GlobalMaxPooling1D()(x)\n'
         'x = layers.Activation("relu")(layers.Dropout(0.2)(layers.Dense(250)(x)))\n'
         'text_cnn = keras.Model(reviews, layers.Activation("sigmoid")(layers.Dense(1)(x)))'),
        ('inputs = keras.Input(shape=(32, 32, 3))\nx = conv_block(inputs, 32, strides=1)\nx = conv_block(x, 32, strides=2)\n'
         'x = conv_block(x, 64, strides=1)\nx = conv_block(x, 64, strides=2)\nx = layers.Flatten()(x)\n'
         'x = layers.Dense(128)(x)\nx = layers.BatchNormalization()(x)\nx = layers.LeakyReLU()(x)\n'
         'x = layers.Dropout(rate=0.5)(x)\noutputs = layers.Dense(10, activation="softmax")(x)\n'
         'cifar_cnn = keras.Model(inputs, outputs)',
         'cifar_cnn = keras.Sequential([keras.Input(shape=(32, 32, 3))])\n'
         'for filters, strides in [(32, 1), (32, 2), (64, 1), (64, 2)]:\n'
         '    for layer in [layers.Conv2D(filters, 3, strides=strides, padding="same"), layers.BatchNormalization(),\n'
         '                  layers.ReLU(negative_slope=0.3)]:\n'
         '        cifar_cnn.add(layer)\n'
         'for layer in [layers.Flatten(), layers.Dense(128), layers.BatchNormalization(), layers.LeakyReLU(),\n'
         '              layers.Dropout(0.5), layers.Dense(10), layers.Softmax()]:\n'
         '    cifar_cnn.add(layer)'),
    ],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """grade_submission, memoised per (kind, assignment), so each notebook runs once."""
    cache = {}

    def grade(kind, assignment_id):
        key = (kind, assignment_id)
        if key not in cache and kind == "solution":  # the check before a class: the same run
            verdict = reference_verdict(assignment_id)
            cache[key] = {"cells": verdict.cells, "score": verdict.score, "max_score": verdict.max_score,
                          "flags": verdict.flags, "fault": None if verdict.ok else verdict.reason}
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{kind.replace(' ', '-')}-{assignment_id}")
            shutil.copytree(course.ASSIGNMENTS / assignment_id, folder / assignment_id)
            path = folder / assignment_id / f"{assignment_id}.ipynb"
            if kind != "untouched":
                nb = student_copy(notebook(course.SOLUTIONS, assignment_id))
                if kind == "mistake":
                    nb = with_mistake(nb, assignment_id)
                elif kind == "other styles":
                    for old, new in OTHER_STYLES[assignment_id]:
                        hits = [c for c in nb.cells if old in c.source]
                        assert len(hits) == 1, old
                        hits[0].source = hits[0].source.replace(old, new)
                nbformat.write(nb, path)
            cache[key] = grade_submission(path, assignment_id)
            print(json.dumps(cache[key], indent=1))
        return cache[key]

    return grade


def scores(report):
    return {cell["name"]: (cell["score"], cell["max_score"]) for cell in report["cells"]}


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", IDS)
def test_solution_gets_full_marks(graded, assignment_id):
    report = graded("solution", assignment_id)
    lost = {name: s for name, s in scores(report).items() if s[0] != s[1]}
    assert not lost, f"{assignment_id} solution lost points: {lost}\n" + json.dumps(report["cells"], indent=1)
    assert report["score"] == report["max_score"] > 0 and not report["flags"] and not report["fault"]


def exhaustive_except(*kept):
    """IDS, each of them but ``kept`` marked exhaustive: run with `-m exhaustive`, not by default (CI time)."""
    return [i if i in kept else pytest.param(i, marks=pytest.mark.exhaustive) for i in IDS]


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", exhaustive_except("02_fashion_mnist"))
def test_untouched_release_scores_zero_everywhere(graded, assignment_id):
    report = graded("untouched", assignment_id)
    assert report["max_score"] > 0 and report["cells"]
    assert all(cell["score"] == 0 for cell in report["cells"]), report["cells"]
    assert "was not filled in" in report["cells"][0]["message"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment_id", exhaustive_except("02_fashion_mnist"))
def test_a_common_mistake_loses_exactly_its_points(graded, assignment_id):
    _, losing, _ = COMMON_MISTAKES[assignment_id]
    report = graded("mistake", assignment_id)
    full = scores(graded("solution", assignment_id))
    for name, (score, max_score) in scores(report).items():
        expected = 0 if name in losing else full[name][0]
        assert score == expected, f"{name}: {score}/{max_score}, expected {expected}\n{report['cells']}"
        if name in losing:
            assert next(c["message"] for c in report["cells"] if c["name"] == name)


@pytest.mark.slow
# Worksheet 6's whole hand-in (87 s) runs with -m exhaustive: its models in every valid style are checked
# one by one below, in seconds (CI time).
@pytest.mark.parametrize("assignment_id", [i if i != "06_text_cnn" else pytest.param(i, marks=pytest.mark.exhaustive)
                                           for i in OTHER_STYLES])
def test_answers_in_other_valid_styles_get_full_marks(graded, assignment_id):
    report = graded("other styles", assignment_id)
    assert report["score"] == report["max_score"], report["cells"]


# --- worksheet 6: its architecture checks, on every valid way of writing the two models --------

def hidden_block(assignment_id, grade_id):
    cells = graded_cells(notebook(course.SOLUTIONS, assignment_id))
    return "\n".join(hidden_blocks(next(c for c in cells if c.metadata.nbgrader["grade_id"] == grade_id).source))


def text_cnn(functional=False, conv=layers.Conv1D, mask_zero=False, deck_activations=False, pooling=True,
             padding="valid"):
    """Worksheet 6's text CNN; ``deck_activations`` writes Dense, Dropout, Activation as the course deck does."""
    stack = [layers.Embedding(10_000, 32, mask_zero=mask_zero), conv(250, 3, padding=padding, activation="relu")]
    stack += [layers.GlobalMaxPooling1D()] if pooling else []
    if deck_activations:
        stack += [layers.Dense(250), layers.Dropout(0.2), layers.Activation("relu"),
                  layers.Dense(1), layers.Activation("sigmoid")]
    else:
        stack += [layers.Dense(250, activation="relu"), layers.Dropout(0.2), layers.Dense(1, activation="sigmoid")]
    return chain(keras.Input(shape=(200,)), stack, functional)


def cifar_cnn(functional=True, leaky=layers.LeakyReLU, padding="same", normalize_first=True, softmax_layer=False):
    stack = []
    for filters, strides in [(32, 1), (32, 2), (64, 1), (64, 2)]:
        block = [layers.BatchNormalization(), leaky()]
        stack += [layers.Conv2D(filters, 3, strides=strides, padding=padding)] + block[::1 if normalize_first else -1]
    stack += [layers.Flatten(), layers.Dense(128), layers.BatchNormalization(), leaky(), layers.Dropout(0.5)]
    stack += [layers.Dense(10), layers.Softmax()] if softmax_layer else [layers.Dense(10, activation="softmax")]
    return chain(keras.Input(shape=(32, 32, 3)), stack, functional)


def chain(inputs, stack, functional):
    if not functional:
        return keras.Sequential([inputs, *stack])
    x = inputs
    for layer in stack:
        x = layer(x)
    return keras.Model(inputs, x)


ARCHITECTURE_CELLS = ("test_text_cnn_architecture", "test_cifar_architecture")


@pytest.mark.parametrize("models", [
    lambda: {"text_cnn": text_cnn(), "cifar_cnn": cifar_cnn()},
    lambda: {"text_cnn": text_cnn(functional=True, conv=keras.layers.Convolution1D, mask_zero=True,
                                  deck_activations=True),
             "cifar_cnn": cifar_cnn(functional=False, leaky=lambda: layers.ReLU(negative_slope=0.3),
                                    softmax_layer=True)},
    lambda: {"text_cnn": text_cnn(mask_zero=True), "cifar_cnn": cifar_cnn(leaky=lambda: layers.Activation("leaky_relu"))},
], ids=["as-the-solution", "deck-style-functional-text-sequential-images", "mask-zero-activation-layers"])
def test_worksheet_06_models_in_every_valid_style_pass_its_hidden_checks(models):
    """Exported by the kernel, loaded and checked in the grader's process, as at grading."""
    block = "\n".join(hidden_block("06_text_cnn", cell) for cell in ARCHITECTURE_CELLS)
    assert check_in_clean_process(block, models()) == []


@pytest.mark.parametrize("cell, model, message", [
    ("test_text_cnn_architecture", lambda: text_cnn(pooling=False), r"^Expected 6 layers, found 5"),
    ("test_text_cnn_architecture", lambda: text_cnn(padding="same"),
     r"^Layer 2 \(Conv1D\): expected output shape \(None, 198, 250\), found \(None, 200, 250\)"),
    ("test_cifar_architecture", lambda: cifar_cnn(padding="valid"), r"^Expected 592,554 parameters"),
    # LeakyReLU before BatchNormalization: the activation is the convolution's own.
    ("test_cifar_architecture", lambda: cifar_cnn(normalize_first=False), r"^Expected 18 layers, found 14"),
    ("test_cifar_architecture", lambda: cifar_cnn(leaky=layers.ReLU),
     r"^Layer 3 \(ReLU\): expected activation 'leaky_relu', found 'relu'"),
])
def test_worksheet_06_common_mistakes_fail_its_architecture_checks(cell, model, message):
    name = "text_cnn" if "text" in cell else "cifar_cnn"
    with pytest.raises(CheckFailed, match=message):
        exec(hidden_block("06_text_cnn", cell), {"hidden": hidden, name: model()})


# --- worksheet 5: the CNN with its augmentation inside, as Chollet writes it ---------------------

def deck_cnn(augmentation=()):
    return keras.Sequential([keras.Input(shape=(28, 28, 1)), *augmentation,
                             layers.Conv2D(32, 3, activation="relu"), layers.Conv2D(64, 3, activation="relu"),
                             layers.MaxPooling2D(4), layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
                             layers.Dense(10, activation="softmax")])


@pytest.mark.parametrize("cnn", [
    lambda: deck_cnn(),
    lambda: deck_cnn([keras.Sequential([layers.RandomRotation(0.04), layers.RandomZoom(0.1),
                                        layers.RandomTranslation(0.08, 0.08)], name="data_augmentation")]),
    lambda: deck_cnn([layers.RandomTranslation(0.1, 0.1), layers.RandomRotation(0.05, fill_mode="constant")]),
], ids=["as-the-solution", "chollet-augmentation-block-inside", "augmentation-layers-inside"])
def test_worksheet_05_cnn_with_its_augmentation_inside_passes_its_hidden_architecture_checks(cnn):
    """The solution augments in a model around `cnn`; a student who puts the layers inside `cnn`, as Chollet
    does, has the same network: exported by the kernel, loaded and checked in the grader's process."""
    assert check_in_clean_process(hidden_block("05_cnn", "test_cnn_architecture"), {"cnn": cnn()}) == []
