"""Every parse of student text runs in linear time: a megabyte of the worst text for each, in seconds.

Before: a cell of a million newlines and a cell of 40,000 hidden-test markers each kept `grade` past
300 s (quadratic regular expressions in host.py, execute.py and feedback.py)."""

import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.grader.course import nbgrader_failure
from autograder.run import host, safe_files
from autograder.run.hidden_regions import Markers

MEGABYTE_TEXTS = {
    "newlines": "\n" * 1_000_000,
    "begin markers": "### BEGIN HIDDEN TESTS\n" * 45_000,
    "blank lines and SEED": " \n" * 500_000 + "SEED",
    "one long word": "a" * 1_000_000,
    "spaces": " " * 1_000_000,
}


def seconds(call, *args):
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


@pytest.mark.parametrize("text", list(MEGABYTE_TEXTS), ids=list(MEGABYTE_TEXTS))
def test_hidden_regions_seeds_and_causes_take_seconds(text):
    source = MEGABYTE_TEXTS[text]
    markers = Markers()
    nb = new_notebook(cells=[new_code_cell(source)])
    for call, args in ((markers.split, (source,)), (markers.replace, (source, "# hidden")),
                       (host.seeds, (nb,)), (nbgrader_failure, ({"log": source, "error": ""},))):
        assert seconds(call, *args) < 3, call


def test_a_megabyte_notebook_is_repaired_in_seconds(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1\n" + "\n" * 1_000_000)] * 3)
    path = tmp_path / "big.ipynb"
    nbformat.write(nb, path)
    assert seconds(safe_files.read_notebook, path) < 10
