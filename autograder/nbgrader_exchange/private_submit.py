"""nbgrader's exchange on the course's JupyterHub: submitting privately, into an ``inbound/`` kept sticky.

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

    c.ExchangeFactory.submit = "autograder.nbgrader_exchange.private_submit.PrivateSubmit"

``inbound/`` is also sticky (mode 3733, like ``/tmp``): every student may
write in it, so without the sticky bit one who learns a classmate's folder
name could rename it away, or rename it and back to make it look late.
`StickyInboundRelease` is nbgrader's release that keeps it so, for the
instructors (`autograder hub` makes the folder 3733 and sets it):

    c.ExchangeFactory.release_assignment = "autograder.nbgrader_exchange.private_submit.StickyInboundRelease"
"""

import os
import stat

from nbgrader.exchange.default import ExchangeReleaseAssignment, ExchangeSubmit

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


class StickyInboundRelease(ExchangeReleaseAssignment):
    """nbgrader's release, then ``inbound/`` sticky, so no student renames or removes another's submission.

    The upstream change (a pull request to nbgrader) is one flag: in
    ``ExchangeReleaseAssignment.init_dest``, ``inbound/`` is made with
    ``S_ISGID|S_ISVTX|0733`` instead of ``S_ISGID|0733``. Until nbgrader has
    it, this adds the bit, also to an ``inbound/`` made before, when the
    releasing user owns it (no one else may change its mode).
    """

    def init_dest(self):
        super().init_dest()
        self.make_inbound_sticky()

    def make_inbound_sticky(self):
        info = os.lstat(self.inbound_path)  # nbgrader has just checked, or made, the folder
        if not stat.S_ISDIR(info.st_mode) or info.st_mode & stat.S_ISVTX:
            return
        if info.st_uid != os.geteuid():
            self.log.warning("%s is not sticky, and only its owner can make it so (chmod +t): until then a "
                             "student may rename another's submission in it", self.inbound_path)
            return
        os.chmod(self.inbound_path, stat.S_IMODE(info.st_mode) | stat.S_ISVTX)
