"""nbgrader configuration for the course: read by every `nbgrader` and `autograder` command."""

import os
from pathlib import Path

from autograder import pipeline
from autograder.grader.course import course_secret

c = get_config()  # noqa: F821  (nbgrader injects get_config)

# --- Course layout -------------------------------------------------------------
# solutions/<id>/<id>.ipynb  ->  nbgrader generate_assignment  ->  assignments/<id>/<id>.ipynb
c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.course_id = "deep-learning-worksheets"
# The gradebook stays at nbgrader's default, sqlite:///<root>/gradebook.db.

# --- Autograding: nbgrader's converter, with our steps (autograder/pipeline.py) --
c.Autograde.sanitize_preprocessors = pipeline.SANITIZE
c.Autograde.autograde_preprocessors = pipeline.AUTOGRADE
# A test cell a student deleted comes back from the gradebook (and scores what it scores).
c.OverwriteCells.add_missing_cells = True

# The student's kernel runs in a bubblewrap jail; grading refuses to start
# without one (`autograder grade --no-sandbox` is the deliberate exception).
c.SandboxedExecute.sandbox = "bwrap"
c.SandboxedExecute.memory_limit = 8 * 2**30
c.SandboxedExecute.max_processes = 512
# Per cell: the slowest solution cell takes about a minute on 2 CPU cores.
# Per notebook: the most one submission may hold a grading worker.
c.Execute.timeout = 600
c.SandboxedExecute.notebook_timeout = 1200
c.SandboxedExecute.interrupt_grace = 10
c.SandboxedExecute.max_cell_output = 1_000_000
c.SandboxedExecute.max_notebook_output = 20_000_000

# The seeds of the hidden tests' inputs: secret, so students cannot predict
# them; fixed per course, so a regrade picks the same inputs.
c.PlanHiddenTests.secret = course_secret(c.CourseDirectory.root)

# Kernels inherit these: TensorFlow's C++ logging off, and GPU memory grown on
# demand so that parallel grading workers can share one GPU.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# nbgrader scores a test cell 0 when it has *any* stderr output, even when every
# assert passed (nbgrader/utils.py determine_grade, measured with 0.9.6). TF 2.21
# still prints absl lines ("I0000 ...", "E0000 ... cuInit") from whichever cell
# first touches a device, and Keras emits Python warnings, so a correct answer
# could score 0. FilterStderr, our line-by-line IgnorePattern (jupyter/nbgrader#1904),
# drops those lines in linear time; anything else on stderr still costs the points.
c.FilterStderr.enabled = True
# Most of those lines are TensorFlow's C++ writing to the kernel process's stderr,
# which ipykernel copies into the running cell. Kernels started by nbgrader
# (autograde, and Validate, whose steps are fixed) and by `autograder check` leave
# it in the kernel's own log instead, so Validate's verdicts are check's.
c.Execute.extra_arguments = ["--IPKernelApp.capture_fd_output=False"]

# --- Feedback ------------------------------------------------------------------
# nbgrader's feedback HTML shows the hidden test source (jupyter/nbgrader#917 and
# #1363, open): one more step in its pipeline removes it, and the tracebacks that
# quote it, keeping each test's result and message.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "autograder.grader.feedback.StripHiddenTests",
]
