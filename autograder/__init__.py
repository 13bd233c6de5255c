"""Autograded deep-learning worksheets: offline datasets, named checks, nbgrader workflows."""

__version__ = "0.2.0"


class UserError(Exception):
    """A problem the user can fix, said in one sentence (the CLI exits with status 2)."""


from . import moved  # noqa: E402  (release 0.2's module paths, for one release)

moved.install()
