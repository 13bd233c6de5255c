"""The README's two commands do the system's set-up too: where they may not install bubblewrap, they
stop before anything else with the one command to run (issue 15: the demo stopped after 75 s)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a user without sudo and a PATH without bubblewrap")
def test_setup_without_bubblewrap_or_the_right_to_install_it_says_the_one_command():
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="autograder-setup-test-"))  # pytest's own is closed to other users
    user = "autograder-setup"
    if subprocess.run(["id", user], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", user], check=True)
    bin_dir = tmp_path / "bin"  # the commands setup.sh needs, and no bwrap
    bin_dir.mkdir()
    for name in ("bash", "id", "sha256sum", "cut", "env", "dirname"):
        (bin_dir / name).symlink_to(shutil.which(name))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    os.chmod(tmp_path / "scripts" / "setup.sh", 0o755)
    os.chmod(tmp_path, 0o755)
    done = subprocess.run(["runuser", "-u", user, "--", str(bin_dir / "env"), f"PATH={bin_dir}",
                           str(bin_dir / "bash"), str(tmp_path / "scripts" / "setup.sh")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == ("autograder: this needs bubblewrap; install it first, e.g. "
                           "`sudo apt-get install bubblewrap`, then run this again.\n")
    assert done.stdout == ""  # nothing else ran: no virtualenv, no download
    shutil.rmtree(tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a Python as nobody to see who may run it")
def test_setup_builds_the_venv_on_a_python_every_user_can_run(tmp_path):
    """Issue 22: with root's default python3 in a private folder (pyenv's under /root), the README's test
    command built .venv on it, and every hub test stopped: the instructors' servers could not run it."""
    private = tmp_path / "pyenv" / "bin"
    private.mkdir(parents=True)
    os.chmod(tmp_path / "pyenv", 0o700)
    shutil.copy("/usr/bin/python3", private / "python3")  # a real binary there, as pyenv has
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", checkout / "scripts" / "setup.sh")
    # A .venv an earlier set-up built on the private Python is rebuilt too.
    subprocess.run([str(private / "python3"), "-m", "venv", "--without-pip", str(checkout / ".venv")], check=True)
    # No pyproject.toml here: the script stops right after making .venv, before installing anything.
    done = subprocess.run(["bash", str(checkout / "scripts" / "setup.sh")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PATH": f"{private}:{os.environ['PATH']}", "PYTHON": ""})
    assert f"== {private / 'python3'} is closed to other users; .venv is built on /usr/bin/python3" in done.stdout
    assert "== .venv stands on a Python other users cannot run; rebuilding it on /usr/bin/python3" in done.stdout
    base = subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-c", "import sys; print(sys._base_executable)"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert not base.startswith(str(tmp_path)), base
    assert subprocess.run(["runuser", "-u", "nobody", "--", base, "-c", ""]).returncode == 0
