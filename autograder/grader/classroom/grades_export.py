"""grades.csv: nbgrader's export, where a missing score is never written as a zero.

nbgrader's `CsvExportPlugin` writes 0.0 for every student of the gradebook
without a submission, and its rows are not quoted. After a grading run that
saved no score (a host fault, or a notebook the grader could not process)
an instructor who uploaded that file gave honest students zero.
`GradesCsvExport` is that plugin with two more columns, ``status`` and
``reason``, and empty score cells wherever no score was saved:

| status | scores | when |
|---|---|---|
| graded | the gradebook's | grade-all saved a score (a fault in the notebook keeps the points of the cells that ran) |
| malformed | the gradebook's zero | no notebook, not a notebook, a renamed one: the student's, with its reason |
| could not process | empty | the grader failed on this submission and the host then passed its own check (flagged) |
| host fault | empty | the grading host failed; the next run grades it again |
| not submitted | empty | the student has no submission for the assignment |
| no score saved | empty | nbgrader made the submission's row and saved no score (its autograde failed, outside grade-all) |

The outcomes come from grade-all's record (``grade-all.json`` in the
course). It is set for `nbgrader export` too (``c.ExportApp.plugin_class``
in nbgrader_config.py). Text cells that a spreadsheet would read as a
formula (a student's file name in a reason, say) are prefixed with an
apostrophe, as OWASP advises for CSV files.
"""

import csv
import json
from pathlib import Path

from nbgrader.api import MissingEntry
from nbgrader.plugins import CsvExportPlugin
from traitlets import Unicode

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
           "late_submission_penalty", "score", "max_score", "status", "reason"]
STATUS = {"graded": "graded", "malformed": "malformed", "unprocessable": "could not process",
          "host-fault": "host fault"}
NO_SCORE = ("could not process", "host fault", "not submitted", "no score saved")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def saved_any_score(submission):
    """Whether a score was saved for any cell of ``submission`` (by the autograder or by hand)."""
    grades = [g for notebook in submission.notebooks for g in notebook.grades]
    return not grades or any(g.auto_score is not None or g.manual_score is not None for g in grades)


def spreadsheet_safe(value):
    """``value`` as a CSV cell no spreadsheet runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class GradesCsvExport(CsvExportPlugin):
    """nbgrader's CSV export with a status and a reason per row, and no score where none was saved."""

    outcomes_file = Unicode("grade-all.json", help="grade-all's record of outcomes, relative to the course "
                                                   "folder.").tag(config=True)
    course_root = Unicode("", help="The course folder (default: the exporting app's).").tag(config=True)

    def _outcomes(self):
        root = self.course_root or getattr(getattr(self.parent, "coursedir", None), "root", ".")
        path = Path(root) / self.outcomes_file
        try:
            return json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            return {}

    def rows(self, gradebook):
        """One dict per student and assignment, as the CSV holds them."""
        outcomes = self._outcomes()
        for assignment in gradebook.assignments:
            if self.assignment and assignment.name not in map(str, self.assignment):
                continue
            for student in gradebook.students:
                if self.student and student.id not in map(str, self.student):
                    continue
                row = {"assignment": assignment.name, "duedate": assignment.duedate, "student_id": student.id,
                       "last_name": student.last_name, "first_name": student.first_name, "email": student.email,
                       "max_score": assignment.max_score, "timestamp": ""}
                outcome = outcomes.get(f"{student.id}/{assignment.name}", {})
                try:
                    submission = gradebook.find_submission(assignment.name, student.id)
                except MissingEntry:
                    submission = None
                status = STATUS.get(outcome.get("status"), "graded" if submission else "not submitted")
                reason = outcome.get("reason", "")
                if submission is None and status not in NO_SCORE:
                    status = "not submitted"
                elif submission is not None and status not in NO_SCORE and not saved_any_score(submission):
                    # nbgrader made the row, then saved nothing (its autograde failed on the notebook)
                    status, reason = "no score saved", reason or "nbgrader saved no score for it; see its log"
                row.update(status=status, reason=reason)
                if status in NO_SCORE:
                    row.update(raw_score="", late_submission_penalty="", score="")
                else:
                    penalty = submission.late_submission_penalty or 0.0
                    row.update(timestamp=submission.timestamp or "", raw_score=submission.score,
                               late_submission_penalty=penalty, score=max(0.0, submission.score - penalty))
                yield row

    def export(self, gradebook):
        dest = self.to or "grades.csv"
        self.log.info("Exporting grades to %s", dest)
        with open(dest, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            for row in self.rows(gradebook):
                writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
