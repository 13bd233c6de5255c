"""The students' side of nbgrader's exchange on the course's JupyterHub: submitting privately.

nbgrader's own submit leaves the copy it puts in the exchange's ``inbound/``
open to every user of the machine (the submission's folder 0777, its files
0644) and relies on its name, which ends in a random string and cannot be
listed, to keep it from other students. `PrivateSubmit` is that submit, then
the submission's folder closed to everyone but its owner and its group. The
folder is made in ``inbound/``, which is set-group-id to the instructors'
group (`autograder hub` makes it so), so it belongs to that group: the
instructors enter it and read what is inside, classmates cannot enter it,
even knowing its name. (The files inside keep nbgrader's modes: a student,
not being in the instructors' group, cannot give them that group, and the
folder alone is enough.) The hub's configuration for students sets it:

    c.ExchangeFactory.submit = "autograder.course_exchange.PrivateSubmit"
"""

import os

from nbgrader.exchange.default import ExchangeSubmit

FILE_MODE = 0o644
FOLDER_MODE = 0o755
SUBMISSION_MODE = 0o770  # the owner and the instructors' group; the group may also remove it


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, with the copy in the exchange open only to its owner and the instructors."""

    def copy_files(self):
        super().copy_files()
        submission = os.path.join(self.inbound_path, self.assignment_filename)
        self.set_perms(submission, fileperms=FILE_MODE, dirperms=FOLDER_MODE)
        os.chmod(submission, SUBMISSION_MODE)
