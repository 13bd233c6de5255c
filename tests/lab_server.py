"""`autograder lab` as a test runs it: a real JupyterLab server on localhost, on a free port.

The server gets a known token (the browser logs in with ``?token=``; API calls
send it as a header, which also spares them the xsrf check) and its own
Jupyter config, data, runtime and settings folders, so that nothing of the
user's Jupyter set-up is read or written. It is stopped with SIGTERM, which
lets it shut its kernels down (they run in their own sessions, so SIGKILL
would leave them behind).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

TOKEN = "autograder-test-token"
# No network here, and nothing to ask the user: no news, no update checks, no toasts.
QUIET_LAB = [
    "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
    "--ServerApp.password=", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
    "--FileContentsManager.delete_to_trash=False",
]
NOTIFICATIONS = "@jupyterlab/apputils-extension/notification.jupyterlab-settings"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    def __init__(self, course, scratch):
        self.course = Path(course)
        self.scratch = Path(scratch)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.scratch / "jupyter-lab.log"
        self.process = None

    def environment(self):
        env = dict(os.environ)
        env.pop("JUPYTER_PATH", None)
        env.pop("PYTEST_CURRENT_TEST", None)  # else ipykernel leaves the kernels' stderr uncaptured
        config = self.scratch / "jupyter-config"
        env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(self.scratch / "jupyter-data"),
                   JUPYTER_RUNTIME_DIR=str(self.scratch / "jupyter-runtime"), IPYTHONDIR=str(self.scratch / "ipython"),
                   JUPYTERLAB_SETTINGS_DIR=str(config / "lab" / "user-settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(config / "lab" / "workspaces"), JUPYTER_PLATFORM_DIRS="1")
        settings = config / "lab" / "user-settings" / NOTIFICATIONS
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
        return env

    def start(self, timeout=120):
        command = [sys.executable, "-m", "autograder", "lab", "--root", str(self.course), "--port", str(self.port),
                   "--no-browser", "--", *QUIET_LAB]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"`autograder lab` exited with status {self.process.returncode}:\n{self.log()}")
            try:
                self.api("GET", "/api/status")
                return self
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log()}") from None
                time.sleep(0.3)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log(self):
        return self.log_path.read_text()[-4000:] if self.log_path.is_file() else ""

    def url(self, path="/lab", **query):
        """A URL the browser can open directly: ``?token=`` logs it in."""
        return f"{self.base}{path}?{urllib.parse.urlencode({'token': TOKEN, **query})}"

    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None
