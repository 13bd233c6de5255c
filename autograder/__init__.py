"""Autograded deep-learning worksheets: offline datasets, named checks, nbgrader workflows."""

import os

# TensorFlow's C++ logging writes to stderr, and nbgrader scores a test cell
# with any stderr output as 0 (see nbgrader_config.py). Set before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.2.0"


class UserError(Exception):
    """A problem the user can fix, said in one sentence (the CLI exits with status 2)."""
