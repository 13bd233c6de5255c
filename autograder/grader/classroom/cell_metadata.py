"""A sanitize step of our own: each cell's nbgrader metadata as the instructor wrote it.

nbgrader's OverwriteCells restores a locked cell's source, lock and points
from the gradebook, then verifies the cell's checksum, which also covers
metadata a student can change: the grade, solution and task flags. A flipped
flag made it raise "Inconsistent checksums" and lose the whole submission,
honest work included. `RestoreCellMetadata` runs before it and puts back
every flag from the gradebook; a cell whose grade_id the gradebook does not
know (one the student added, worth 100 points) becomes a plain cell.
"""

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor


class RestoreCellMetadata(NbGraderPreprocessor):
    """nbgrader metadata of known cells from the gradebook; none on cells it does not know."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            sources = {c.name: c for c in notebook.source_cells}
            points = {c.name: c.max_score for c in notebook.grade_cells}
            points |= {c.name: c.max_score for c in notebook.task_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name for c in notebook.task_cells}
            for cell in nb.cells:
                metadata = cell.metadata.get("nbgrader")
                if metadata is None:
                    continue
                grade_id = metadata.get("grade_id")
                if grade_id not in sources:
                    del cell.metadata["nbgrader"]
                    continue
                metadata.update(grade=grade_id in points and grade_id not in tasks, solution=grade_id in solutions,
                                task=grade_id in tasks, locked=sources[grade_id].locked)
                if grade_id in points:
                    metadata["points"] = points[grade_id]
                else:
                    metadata.pop("points", None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return cell, resources
