"""Formgrader's dialogs show nbgrader's log at the server's own level, not every DEBUG line of the server.

Formgrader's API handlers hand the server's logger level to nbgrader (nbgrader 0.9.6,
formgrader/base.py: ``api.log_level = self.log.level``) and its dialogs show all that the
server logged meanwhile (utils.capture_log). A traitlets application keeps its level on
its handler, not on its logger, so the logger's level is 0 and the Generate dialog filled
with the language servers' DEBUG probes, and Collect's with the tracebacks it logs for
debugging. This extension sets the logger's own level to the server's ``log_level``: with
``--debug`` the dialogs still show everything.
"""


def _jupyter_server_extension_points():
    return [{"module": "autograder.grader.hub.formgrader_log"}]


def _load_jupyter_server_extension(serverapp):
    serverapp.log.setLevel(serverapp.log_level)
