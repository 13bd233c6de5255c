"""nbgrader configuration for the course: read by every `nbgrader` and `autograder` command."""

import os
from pathlib import Path

c = get_config()  # noqa: F821  (nbgrader injects get_config)

# --- Course layout -------------------------------------------------------------
# solutions/<id>/<id>.ipynb  ->  nbgrader generate_assignment  ->  assignments/<id>/<id>.ipynb
c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.course_id = "deep-learning-worksheets"
# The gradebook stays at nbgrader's default, sqlite:///<root>/gradebook.db.

# --- Executing notebooks ---------------------------------------------------------
# Per-cell timeout. The slowest cell (LSTM training) takes about a minute on
# 2 CPU cores; 15 minutes leaves room for slow laptops and busy graders.
c.Execute.timeout = 900
c.Execute.interrupt_on_timeout = True

# Kernels inherit these: TensorFlow's C++ logging off, and GPU memory grown on
# demand so that parallel grading workers can share one GPU.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

# nbgrader scores a test cell 0 when it has *any* stderr output, even when every
# assert passed (nbgrader/utils.py determine_grade, measured with 0.9.6). TF 2.21
# still prints absl lines ("I0000 ...", "E0000 ... cuInit") from whichever cell
# first touches a device, and Keras emits Python warnings, so a correct answer
# could score 0. IgnorePattern (jupyter/nbgrader#1904) drops such stderr outputs
# after execution; anything else on stderr still costs the points.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(^|\n)[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.]+:\d+\]"  # absl / glog lines
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] tensorflow/"  # older TF C++ format
    r"|\w*Warning: "  # Python warnings: UserWarning, DeprecationWarning, ...
)

# --- Feedback ------------------------------------------------------------------
# nbgrader's feedback HTML shows the hidden test source (jupyter/nbgrader#917 and
# #1363, open): one more step in its pipeline removes it, and the tracebacks that
# quote it, keeping each test's result and message.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "autograder.feedback.StripHiddenTests",
]
