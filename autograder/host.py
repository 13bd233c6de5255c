"""What a grade was computed on: device, library versions, seeds."""

import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys

PACKAGES = ("tensorflow", "keras", "nbgrader", "numpy", "torch", "jax")
SEED_LINE = re.compile(r"^\s*SEED\s*=\s*(\d+)", re.M)


@functools.lru_cache(maxsize=1)
def device():
    """The GPU names from nvidia-smi, or "CPU": backend-neutral, no framework import."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20).stdout
            names = [line.strip() for line in out.splitlines() if line.strip()]
            if names:
                return ", ".join(names)
        except (OSError, subprocess.SubprocessError):
            pass
    return "CPU"


def cpu_notice():
    """One line for the grader's log when no GPU is there."""
    if device() == "CPU":
        print("autograder: no GPU found; grading on the CPU.", file=sys.stderr)


def versions():
    found = {"python": platform.python_version(), "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow")}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def seeds(nb):
    """The `SEED = n` values a notebook sets."""
    return [int(s) for cell in nb.cells if cell.cell_type == "code" for s in SEED_LINE.findall(cell.source)]


def configure_kernels():
    """Environment the notebook kernels inherit: quiet TF, GPU memory grown on demand.

    Memory growth lets several grading workers share one GPU instead of the
    first kernel reserving all of it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the same for JAX
