"""JupyterLab's Validate button, speaking like `autograder check`.

nbgrader's Validate runs a fixed list of steps (its Execute, with its own
kernel settings) and shows each failed cell's raw traceback, in which the
message a student needs comes after the kit's own frames. Here:

- `CheckValidator` is nbgrader's `Validator` whose run is the course's check
  run (`visible_tests.run_check`: the configuration, the jail where it works,
  the check steps) and whose error for a failed test is check's one message:
  which test, which cell, what to do, never a traceback;
- a Jupyter server extension answers Validate's request
  (``/assignments/validate``) with the validator class the course names in
  nbgrader_config.py (`ValidateAssignment.validator_class`), in place of
  nbgrader's own `validate_assignment` extension, which the kit's
  server configuration disables (`autograder lab`, and the student kit's
  ``jupyter_server_config.d/nbgrader_autograder.json``).
"""

import json
import os
from pathlib import Path

from nbgrader.validator import Validator
from traitlets import Type
from traitlets.config import LoggingConfigurable

from .run import safe_files
from .run.record import cell_messages, wrap

# What each Validate that runs now is doing: {notebook path: visible_tests.Progress}, for the dialog.
RUNNING = {}


class CheckValidator(Validator):
    """nbgrader's Validator, running the course's check steps and giving check's messages."""

    _path = None
    _messages = None

    def validate(self, filename):
        self._path = Path(filename).resolve()
        return super().validate(filename)

    def _preprocess(self, nb):
        from .visible_tests import Progress, check_config, run_check

        config = check_config(self._path)
        config.merge(self.config)  # what the server's own configuration adds
        RUNNING[str(self._path)] = progress = Progress(nb, stream=None)
        try:
            nb = run_check(nb, self._path.parent, self._path.stem, config, progress)
        finally:
            RUNNING.pop(str(self._path), None)
        self._messages = cell_messages(nb)
        return nb

    def _extract_error(self, cell):
        name = cell.metadata.get("nbgrader", {}).get("grade_id")
        message = (self._messages or {}).get(name)
        if not message:
            return super()._extract_error(cell)
        return wrap(f"{name}: {message}", self.width)


class ValidateAssignment(LoggingConfigurable):
    """The Validate button's settings, read from nbgrader_config.py."""

    validator_class = Type(Validator, klass=Validator,
                           help="The Validator that JupyterLab's Validate button runs.").tag(config=True)


def _handler_classes():
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.base.handlers import JupyterHandler
    from nbgrader.apps import NbGrader
    from tornado import web

    class ValidateHandler(JupyterHandler):
        """``POST /assignments/validate?path=...``, answered as nbgrader's own handler answers it."""

        def initialize(self, root_dir):
            self.root_dir = root_dir

        def load_config(self):
            app = NbGrader()
            app.config_file_paths.append([os.getcwd(), *jupyter_config_path()])
            app.load_config_file()
            return app.config

        def validate_notebook(self, path):
            root = Path(self.root_dir).resolve()
            target = (root / path).resolve()
            if not target.is_relative_to(root):
                raise web.HTTPError(403, "Access denied: path outside allowed directory")
            try:
                config = self.load_config()
                validator = ValidateAssignment(config=config).validator_class(config=config)
                return {"success": True, "value": validator.validate(str(target))}
            except safe_files.Refused as e:
                return {"success": False, "value": f"{target.name} is not a notebook the grader can run: {e}."}
            except Exception as e:  # one sentence for the student; the traceback goes to the server's log
                self.log.exception("Validate failed on %s", target)
                return {"success": False, "value": f"Validate could not run {target.name}: "
                                                   f"{type(e).__name__}: {str(e).strip()[:300]}"}

        @web.authenticated
        async def post(self):
            import asyncio

            try:
                path = self.get_argument("path")
            except web.MissingArgumentError:
                path = self.get_json_body()["path"]
            # In a thread: the server answers meanwhile (the dialog's progress, the student's other tabs).
            result = await asyncio.get_running_loop().run_in_executor(None, self.validate_notebook, path)
            self.finish(json.dumps(result))

    class ProgressHandler(JupyterHandler):
        """``GET /autograder/validate/progress?path=...``: what the Validate of that notebook runs now
        (``{}`` when none runs), for the dialog the kit's JupyterLab extension fills in."""

        def initialize(self, root_dir):
            self.root_dir = root_dir

        @web.authenticated
        def get(self):
            target = (Path(self.root_dir).resolve() / self.get_argument("path")).resolve()
            progress = RUNNING.get(str(target))
            self.finish(json.dumps({} if progress is None else {"line": progress.line,
                                                                "seconds": round(progress.seconds)}))

    return ValidateHandler, ProgressHandler


def _jupyter_server_extension_points():
    return [{"module": "autograder.validate"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    base = serverapp.web_app.settings["base_url"]
    validate, progress = _handler_classes()
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, r"/assignments/validate"), validate, {"root_dir": serverapp.root_dir}),
        (url_path_join(base, r"/autograder/validate/progress"), progress, {"root_dir": serverapp.root_dir})])
