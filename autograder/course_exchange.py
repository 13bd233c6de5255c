"""The students' side of nbgrader's exchange on the course's JupyterHub: submitting privately.

nbgrader's own submit leaves the copy it puts in the exchange's ``inbound/``
readable by every user of the machine (files 0644, folders 0755, the
submission's folder 0777) and relies on its name, which ends in a random
string and cannot be listed, to keep it from other students. `PrivateSubmit`
is that submit, then the copy closed to everyone but its owner and the
course's group: ``inbound/`` is set-group-id to the instructors' group
(`autograder hub` makes it so), so the instructors read it and classmates
cannot, even knowing its name. The hub's configuration for students sets it:

    c.ExchangeFactory.submit = "autograder.course_exchange.PrivateSubmit"
"""

import os

from nbgrader.exchange.default import ExchangeSubmit

FILE_MODE = 0o640  # the student writes, the course's group reads, others nothing
FOLDER_MODE = 0o2750
SUBMISSION_MODE = 0o2770  # the course's group may also remove the whole submission


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, with the copy in the exchange readable only by its owner and the instructors."""

    def copy_files(self):
        super().copy_files()
        submission = os.path.join(self.inbound_path, self.assignment_filename)
        self.set_perms(submission, fileperms=FILE_MODE, dirperms=FOLDER_MODE)
        os.chmod(submission, SUBMISSION_MODE)
