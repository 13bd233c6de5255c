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
