"""nbgrader configuration for the course: read by every `nbgrader` and `autograder` command.

Loading it has no side effect: it writes no file and changes no environment
variable. The whole of it travels to grade-all's workers, `autograder check`
and Validate read it too, and the student kit carries a copy: it is public to
the students, so it holds no secret (the kit refuses one that sets
`PlanHiddenTests.secret` or a gradebook URL with a password).
"""

from pathlib import Path

from autograder.run import pipeline

c = get_config()  # noqa: F821  (nbgrader injects get_config)

# --- Course layout -------------------------------------------------------------
# solutions/<id>/<id>.ipynb  ->  nbgrader generate_assignment  ->  assignments/<id>/<id>.ipynb
c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.course_id = "deep-learning-worksheets"
# The gradebook stays at nbgrader's default, sqlite:///<root>/gradebook.db.

# --- Autograding: nbgrader's converter, with our steps (autograder/run/pipeline.py) --
c.Autograde.sanitize_preprocessors = pipeline.SANITIZE
c.Autograde.autograde_preprocessors = pipeline.AUTOGRADE
c.GradingRun.steps = pipeline.EXECUTION
# A test cell a student deleted comes back from the gradebook (and scores what it scores).
c.OverwriteCells.add_missing_cells = True
# Hidden-test regions, for nbgrader and for the kit alike (autograder/run/hidden_regions.py).
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# The student's kernel and the grader's scoring process run in one bubblewrap
# jail (autograder/run/jail.py); grading refuses to start without one
# (`autograder grade --no-sandbox` is the deliberate exception).
c.SandboxedExecute.sandbox = "bwrap"
c.SandboxedExecute.memory_limit = 8 * 2**30
c.SandboxedExecute.max_processes = 512
c.SandboxedExecute.disk_quota = 4 * 2**30
c.ScoreHiddenTests.memory_limit = 4 * 2**30
# On a GPU that several workers share, grade-all gives each grading 1 / its host's
# workers of each GPU's memory (stopped past it: "out of GPU memory"); a course
# whose notebooks need more on a host of many workers sets its own fraction here:
# c.SandboxedExecute.gpu_memory_share = 0.25
# Per cell: the slowest solution cell takes about a minute on 2 CPU cores.
# Per notebook: the most one submission may hold a grading worker. On each
# grading host the budget is lower: about 3x the time of the reference
# solution there, plus the kernel's start-up (ReferenceRun, below).
c.Execute.timeout = 600
c.SandboxedExecute.notebook_timeout = 1200
c.SandboxedExecute.interrupt_grace = 10
c.SandboxedExecute.max_cell_output = 1_000_000
c.SandboxedExecute.max_notebook_output = 20_000_000
c.ReferenceRun.budget_factor = 3.0
c.ReferenceRun.startup_allowance = 30

# Kernels get these (and nothing else of the grader's environment): TensorFlow's
# C++ logging off, and GPU memory grown on demand so that parallel grading
# workers can share one GPU.
c.SandboxedExecute.kernel_env = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
}

# The seeds of the hidden tests' inputs come from a secret key: by default the
# course's own, in <course root>/.autograder-secret (made the first time the
# course grades, never at loading). Students cannot predict the inputs; a
# regrade picks the same ones. The instructor's hand-drawn digits for
# worksheet 1's hidden test (grade-all ships them to the workers):
# c.PlanHiddenTests.drawings = "/path/to/drawings"

# nbgrader scores a test cell 0 when it has *any* stderr output, even when every
# assert passed (nbgrader/utils.py determine_grade, measured with 0.9.6). TF 2.21
# still prints absl lines ("I0000 ...", "E0000 ... cuInit") from whichever cell
# first touches a device, and Keras emits Python warnings, so a correct answer
# could score 0. FilterStderr, our line-by-line IgnorePattern (jupyter/nbgrader#1904),
# drops those lines in linear time; anything else on stderr still costs the points.
c.FilterStderr.enabled = True
# Most of those lines are TensorFlow's C++ writing to the kernel process's stderr,
# which ipykernel copies into the running cell. Kernels started by nbgrader
# and by `autograder check` leave it in the kernel's own log instead.
c.Execute.extra_arguments = ["--IPKernelApp.capture_fd_output=False"]

# --- Validate ------------------------------------------------------------------
# JupyterLab's Validate button runs the check steps above and speaks like
# `autograder check` (the kit's server extension, autograder/validate.py).
c.ValidateAssignment.validator_class = "autograder.validate.CheckValidator"

# --- Feedback ------------------------------------------------------------------
# nbgrader's feedback HTML shows the hidden test source (jupyter/nbgrader#917 and
# #1363, open): one more step in its pipeline removes it. Every error shows its
# message, wrapped, not a traceback; math is drawn as MathML, with no CDN.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "autograder.grader.pages.feedback.StripHiddenTests",
    "autograder.grader.pages.offline.WrapErrors",
    "autograder.grader.pages.offline.RenderMath",
    "autograder.grader.pages.inert.MakeInert",
]
# What a student wrote never runs in whoever reads it (autograder/grader/pages/inert.py): the notebook is made
# inert when it is graded and again here, last; the page itself is made with nbconvert's sanitize_html,
# whose filters are the kit's nh3 ones: nbconvert's clean_html (bleach) would print a pandas table's
# <thead> as text, and nbgrader's feedback and Formgrader templates render markdown cells without it.
# Formgrader reads these too (it builds its HTMLExporter from this configuration and the server's).
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"markdown2html": "autograder.grader.pages.inert.SafeMarkdown",
                          "clean_html": "autograder.grader.pages.inert.sanitize_html"}

# --- Export ----------------------------------------------------------------------
# grades.csv with a status and a reason per row, and no score where none was saved: nbgrader's export writes
# 0.0 for a student whose submission the host failed on, or the grader could not process
# (autograder/grader/classroom/grades_export.py; grade-all writes it too).
c.ExportApp.plugin_class = "autograder.grader.classroom.grades_export.GradesCsvExport"
