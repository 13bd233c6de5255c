"""Feedback without hidden tests.

nbgrader's generate_feedback renders the autograded notebook, in which the
hidden tests were restored, so students would read them (jupyter/nbgrader#917,
#1363, open in 0.9.6). `StripHiddenTests` is one more step in its pipeline
(set in nbgrader_config.py): it replaces each hidden region of a test cell
(nbgrader's own markers, found line by line in linear time) with a line
saying the hidden tests ran there. The steps of `offline` then show
every error as its message, wrapped, and draw the math as MathML.
"""

from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from ... import UserError
from ...run.hidden_regions import Markers


class StripHiddenTests(NbGraderPreprocessor):
    """Replace hidden-test source in test cells with a placeholder; keep results and messages."""

    placeholder = Unicode(
        "# Hidden tests ran here; their results are below.\n",
        help="What replaces a hidden-test block in the feedback.",
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        markers = Markers.from_config(self.config)
        if cell.cell_type == "code" and markers.present(cell.source):
            cell.source = markers.replace(cell.source, self.placeholder)
        return cell, resources


def generate_all(root, **course_directory):
    """nbgrader generate_feedback for every autograded submission; return the HTML paths."""
    from ..course import nbgrader_api, run_nbgrader

    root = Path(root)
    api = nbgrader_api(root, **course_directory)
    autograded = root / "autograded"
    assignments = sorted({p.name for p in autograded.glob("*/*") if p.is_dir()}) if autograded.is_dir() else []
    if not assignments:
        raise UserError(f"nothing to give feedback on: no autograded submissions in {autograded}; run grade-all first.")
    for assignment_id in assignments:
        run_nbgrader(api.generate_feedback(assignment_id, force=True), f"generate_feedback {assignment_id}")
    return sorted((root / "feedback").glob("*/*/*.html"))
