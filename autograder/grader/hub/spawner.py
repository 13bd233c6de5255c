"""The hub's spawner: JupyterHub's own, with an instructor's server started inside the course's control groups.

cgroup v2 lets a process move another only between groups whose common
ancestor it may write. An instructor's grading (`grade-all` in her terminal,
Formgrader's Autograde) moves each jail's launcher from where her server runs
into a group under the subtree the hub delegated to the course
(`hub.grading_control_groups`), so her server must start inside that
subtree; only root can put it there, here, before JupyterHub's own pre-exec
function drops to her user. With cgroup v1 there is no such rule, and
`server_group` is left empty.
"""

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Set, Unicode


class CourseSpawner(LocalProcessSpawner):
    """`LocalProcessSpawner` whose instructors' servers start in the course's delegated control group."""

    server_group = Unicode("", help="The cgroup.procs file of the group the instructors' servers start in "
                                    "('': none, as with cgroup v1).").tag(config=True)
    members = Set(Unicode(), help="The users whose servers start there: the course's instructors.").tag(config=True)

    def make_preexec_fn(self, name):
        drop = super().make_preexec_fn(name)
        target = self.server_group if name in self.members else ""

        def preexec():
            if target:
                with open(target, "w") as procs:
                    procs.write("0")  # "0": the writing process, which becomes the server
            drop()

        return preexec
