"""What a grade was computed on: device, library versions, seeds."""

import functools
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess

PACKAGES = ("tensorflow", "keras", "nbgrader", "numpy", "torch", "jax")
# [ \t], not \s: \s* also eats newlines, and on a cell of a million blank lines the search went quadratic.
SEED_LINE = re.compile(r"^[ \t]*SEED[ \t]*=[ \t]*(\d{1,30})", re.M)


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
    """For kernels this process starts outside a grading run (`publish`, the benchmarks): quiet TF,
    GPU memory grown on demand, as `SandboxedExecute.kernel_env` gives graded kernels."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the same for JAX
