"""Reading what a student or a student's code wrote, without following anything they planted.

Every file the grader takes from a student (a submission folder, a notebook,
the files a jailed kernel wrote back) is opened through a folder descriptor
with ``O_NOFOLLOW`` at every step, must be a regular file, and is read up to
a size cap. Links, devices, pipes and sockets are refused with a reason, as
are names a terminal or a log would show wrongly. Flatpak's portals read
files from sandboxes the same way.
"""

import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_NAME = 255
MAX_DEPTH = 16  # folders within folders a submission or an export may hold
MAX_PATH = 1024  # characters of a path inside it
# Names a submission may not carry: configuration that nbgrader, Jupyter or IPython would execute as
# whoever opens the folder (an instructor running `check` or Validate on a submitted notebook).
CONFIG_NAMES = ("nbgrader_config.py", "nbgrader_config.json", "ipython_config.py", "jupyter_config.py",
                "jupyter_server_config.py", "jupyter_notebook_config.py", "jupyter_lab_config.py")


class Refused(ValueError):
    """A file the grader will not read; the message says why, in one sentence."""


def _bad_name(name):
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME or not name.isprintable() or name in (".", ".."):
        return "its name is not a plain file name"
    return ""


def _open_beneath(base, relative, flags):
    """An fd for ``base/relative``, every component opened without following links."""
    parts = Path(relative).parts
    if not parts or any(p in ("..", "/") for p in parts):
        raise Refused(f"{relative} is not a path inside {base}")
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:
                raise Refused(f"{relative}: {part} is not a folder ({os.strerror(e.errno)})") from None
            os.close(fd)
            fd = child
        try:
            return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
        except OSError as e:
            raise Refused(f"{relative} cannot be opened ({os.strerror(e.errno)}; links are not followed)") from None
    finally:
        os.close(fd)


def read_bytes(path, max_bytes, base=None):
    """The bytes of the regular file ``path`` (relative to ``base`` when given), at most ``max_bytes``.

    Raises FileNotFoundError when there is nothing there, Refused for a link,
    a special file or one over the cap.
    """
    path = Path(path)
    if base is None:
        base, path = path.parent, Path(path.name)
    if not os.path.lexists(Path(base) / path):
        raise FileNotFoundError(str(Path(base) / path))
    fd = _open_beneath(base, path, os.O_RDONLY)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise Refused(f"{path} is {info.st_size:,} bytes, over the {max_bytes:,} the grader reads")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise Refused(f"{path} grew past the {max_bytes:,} bytes the grader reads")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path, max_bytes, base=None):
    return read_bytes(path, max_bytes, base).decode("utf-8", "replace")


@dataclass
class CopyReport:
    """What a safe copy took and what it refused, with reasons."""

    copied: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (relative path, reason)
    bytes: int = 0  # of the files copied

    def reasons(self):
        return [f"{name}: {reason}" for name, reason in self.refused]


# What a submission folder may hold: data files and drawings, not datasets or models of a gigabyte.
MAX_FILE_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 256 * 2**20


class FolderSink:
    """Where `copy_tree` writes: a folder (the default)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def mkdir(self, name):
        (self.folder / name).mkdir(exist_ok=True)

    def write(self, name, data):
        (self.folder / name).write_bytes(data)


class ZipSink:
    """Where `copy_tree` writes: a zip archive, each member stamped alike, so that the same files give the same
    bytes (a payload is part of a cache key)."""

    def __init__(self, archive):
        self.archive = archive

    def mkdir(self, name):
        pass

    def write(self, name, data):
        import zipfile

        member = zipfile.ZipInfo(name.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
        member.compress_type, member.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
        self.archive.writestr(member, data)


def copy_tree(source, dest, max_file_bytes=MAX_FILE_BYTES, max_total_bytes=MAX_TOTAL_BYTES, max_files=10_000,
              skip=()):
    """Copy the regular files and folders of ``source`` into ``dest`` (a folder, or a `ZipSink`); refuse
    everything else.

    Links are never followed (a link is refused, as are devices, pipes and
    sockets), names must be plain, and each file and the whole copy are
    capped. ``skip`` names (at any depth) are left out without a reason.
    """
    source = Path(source)
    sink = dest if isinstance(dest, (FolderSink, ZipSink)) else FolderSink(dest)
    report = CopyReport()
    total = 0
    pending = [Path()]
    while pending:  # a stack, not recursion: a folder 1,500 deep is refused, not a RecursionError
        relative = pending.pop()
        try:
            fd = _open_beneath(source, relative, os.O_RDONLY | os.O_DIRECTORY) if relative.parts else \
                os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (Refused, OSError) as e:
            report.refused.append((str(relative), str(e)))
            continue
        try:
            with os.scandir(fd) as entries:
                listing = sorted((e.name, e.stat(follow_symlinks=False).st_mode) for e in entries)
        finally:
            os.close(fd)
        for entry_name, mode in listing:
            name = relative / entry_name
            if entry_name in skip:
                continue
            why = _bad_name(entry_name)
            if not why and entry_name in CONFIG_NAMES:
                why = "configuration files are not taken from a submission"
            if not why and (len(name.parts) > MAX_DEPTH or len(name.as_posix()) > MAX_PATH):
                why = f"it lies deeper than {MAX_DEPTH} folders or {MAX_PATH} characters"
            if not why:
                if stat.S_ISDIR(mode):
                    try:
                        sink.mkdir(name)
                    except OSError as e:
                        why = os.strerror(e.errno) if e.errno else type(e).__name__
                    else:
                        pending.append(name)
                        continue
                why = "" if stat.S_ISREG(mode) else ("it is a link, which the grader does not follow"
                                                      if stat.S_ISLNK(mode) else "it is not a regular file")
            if not why and len(report.copied) >= max_files:
                why = f"the submission has more than {max_files:,} files"
            if not why:
                try:
                    data = read_bytes(name, min(max_file_bytes, max_total_bytes - total), base=source)
                except Refused as e:
                    why = str(e).split(": ", 1)[-1] if str(e).startswith(str(name)) else str(e)
                except OSError as e:
                    why = os.strerror(e.errno) if e.errno else type(e).__name__
            if not why:
                try:
                    sink.write(name, data)
                except OSError as e:
                    why = os.strerror(e.errno) if e.errno else type(e).__name__
            if why:
                report.refused.append((name.as_posix()[:MAX_PATH], why))
                continue
            total += len(data)
            report.copied.append(name.as_posix())
    report.bytes = total
    return report


def tree_usage(folder, max_entries):
    """``(bytes, entries)`` under ``folder``, never following a link; entries past ``max_entries`` where
    part of it cannot be read. The bytes are the larger of those allocated and the files' apparent
    sizes: a sparse file of 6 GB takes no room in the jail, but every copy the grader makes of it
    (an export it keeps) would.

    coreutils' du walks any depth and any width with a bounded number of descriptors (fts), so no
    depth, name length or thousands of sibling folders hide anything or exhaust the grader's
    descriptors."""
    import subprocess

    if not os.path.isdir(folder):
        return 0, 0
    du = shutil.which("du", path="/usr/bin:/bin")
    measured = []
    for unit in (["-B1"], ["--apparent-size", "-B1"], ["--inodes"]):
        for attempt in range(2):
            try:
                done = subprocess.run([du, "-s", "-x", "-P", *unit, "--", str(folder)], capture_output=True,
                                      text=True, timeout=60, env={**os.environ, "LC_ALL": "C"}) if du else None
            except subprocess.TimeoutExpired:
                done = None
            # A file removed while du walked (the kernel's temporary files as a cell ran: an honest reference run
            # was stopped for "folders the grader cannot read") is looked at once more; files that keep vanishing
            # (renamed over and over, to slip past the count) are as unreadable as before.
            if done is None or done.returncode == 0 or attempt or not _vanished(done):
                break
        if done is None or done.returncode != 0 or not done.stdout.split("\t")[0].isdigit():
            return max(measured, default=0), max_entries + 1
        measured.append(int(done.stdout.split("\t")[0]))
    allocated, apparent, entries = measured
    return max(allocated, apparent), entries - 1  # du counts the folder itself


def _vanished(done):
    """Whether du failed only on files removed while it walked."""
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    return bool(errors) and all(line.startswith("du: cannot access ") and line.endswith(": No such file or directory")
                                for line in errors)


def remove_tree(folder, settle=0.0):
    """Remove ``folder`` whatever its depth, path lengths or modes (coreutils' rm walks with descriptors); with
    ``settle``, again for up to that many seconds while it is still there: processes of a jail killed a moment
    ago may still be writing in it as they end (CI, under load: a kernel killed for its time left its run
    folder behind)."""
    import time

    deadline = time.monotonic() + settle
    _remove_tree(folder)
    while os.path.lexists(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
        _remove_tree(folder)


def _remove_tree(folder):
    import subprocess

    if not os.path.lexists(folder):
        return
    # The system's own tools, whatever PATH the grader was started with (a bare virtualenv's, say).
    chmod, rm = (shutil.which(name, path="/usr/bin:/bin") for name in ("chmod", "rm"))
    if chmod and rm:
        subprocess.run([chmod, "-R", "u+rwx", str(folder)], capture_output=True)
        subprocess.run([rm, "-rf", "--one-file-system", "--", str(folder)], capture_output=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def regular_files(folder):
    """Sorted ``(relative path, path)`` of the regular files under ``folder`` (links never followed),
    without recursion."""
    found, pending = [], [Path(folder)]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        found.append((Path(entry.path).relative_to(folder), Path(entry.path)))
        except OSError:
            continue
    return sorted(found)


# --- notebooks --------------------------------------------------------------------------

MAX_NOTEBOOK_BYTES = 256 * 2**20  # read, then repaired: outputs and big attachments go
MAX_CELLS = 2_000
MAX_ATTACHMENT_BYTES = 2 * 2**20  # per cell; larger attachments are replaced by a blank pixel
MAX_SOURCE_BYTES = 256 * 2**10  # per cell: ten times the longest cell of any worksheet
CELL_TYPES = ("code", "markdown", "raw")
# A 1x1 transparent PNG: what an oversized attachment becomes, so that links to it still render.
BLANK_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


MAX_METADATA_DEPTH = 32  # nbformat's own fields are 3 deep; Jupyter's extensions a few more


def json_depth_ok(value, limit):
    """Whether a parsed JSON ``value`` nests no deeper than ``limit`` (walked without recursion: the
    grader's other readers, nbformat's validator among them, recurse and would overflow)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            pending.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in item)
    return True


def _shallow_metadata(metadata, where, notes):
    """``metadata`` without the entries nested deeper than `MAX_METADATA_DEPTH`, each dropped with a note."""
    kept = {}
    for key, value in metadata.items():
        if json_depth_ok(value, MAX_METADATA_DEPTH):
            kept[key] = value
        else:
            notes.append(f"{where} metadata {str(key)[:40]!r} was nested too deeply and was removed")
    return kept


def _text(value):
    """A cell's source or an output's text as nbformat allows it: a string or a list of strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def repair_notebook(data):
    """``(notebook dict, notes)``: ``data`` made a valid nbformat 4 notebook, or Refused.

    Outputs are dropped (grading runs the notebook anew), sources must be
    text, oversized attachments and unknown cell types go, with a note each.
    """
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise Refused("it has no list of cells")
    if data.get("nbformat") != 4:
        raise Refused(f"it is not an nbformat 4 notebook (nbformat {data.get('nbformat')!r})")
    if len(data["cells"]) > MAX_CELLS:
        raise Refused(f"it has {len(data['cells']):,} cells, more than the {MAX_CELLS:,} the grader reads")
    notes, cells = [], []
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in CELL_TYPES:
            notes.append(f"cell {number} is not a code, markdown or raw cell and was left out")
            continue
        source = _text(cell.get("source", ""))
        if source is None:
            notes.append(f"cell {number}'s source was not text and was emptied")
            source = ""
        if len(source) > MAX_SOURCE_BYTES:
            source = source.strip("\n")  # blank lines around a cell change nothing it computes
        if len(source) > MAX_SOURCE_BYTES:
            notes.append(f"cell {number} is over {MAX_SOURCE_BYTES // 2**10} KB of source and was not run")
            source = f"raise RuntimeError('this cell is over {MAX_SOURCE_BYTES // 2**10} KB and was not run')" \
                if cell["cell_type"] == "code" else f"(this cell was over {MAX_SOURCE_BYTES // 2**10} KB)"
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        metadata = _shallow_metadata(metadata, f"cell {number}'s", notes)
        if not isinstance(metadata.get("nbgrader", {}), dict):
            metadata = {k: v for k, v in metadata.items() if k != "nbgrader"}
        fixed = {"cell_type": cell["cell_type"], "metadata": metadata, "source": source}
        if isinstance(cell.get("id"), str) and 1 <= len(cell["id"]) <= 64:
            fixed["id"] = cell["id"]
        if cell["cell_type"] == "code":
            fixed.update(outputs=[], execution_count=None)
        attachments = cell.get("attachments")
        if isinstance(attachments, dict) and not json_depth_ok(attachments, MAX_METADATA_DEPTH):
            notes.append(f"cell {number}'s attachments were nested too deeply and were removed")
            attachments = None
        if cell["cell_type"] != "code" and isinstance(attachments, dict) and attachments:
            if len(json.dumps(attachments)) <= MAX_ATTACHMENT_BYTES:
                fixed["attachments"] = attachments
            else:
                notes.append(f"cell {number}'s attachments are over {MAX_ATTACHMENT_BYTES // 2**20} MB and "
                             "were replaced by a blank pixel")
                fixed["attachments"] = {str(name)[:255]: {"image/png": BLANK_PNG} for name in attachments}
        cells.append(fixed)
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    metadata = _shallow_metadata(metadata, "the notebook's", notes)
    minor = data.get("nbformat_minor") if isinstance(data.get("nbformat_minor"), int) else 4
    notebook = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": min(max(minor, 4), 5)}
    if minor >= 5 and not all("id" in c for c in cells):
        notebook["nbformat_minor"] = 4
        for c in cells:
            c.pop("id", None)
    return notebook, notes


def read_notebook(path, max_bytes=MAX_NOTEBOOK_BYTES, base=None):
    """``(NotebookNode, notes)`` of the notebook file at ``path``: read safely, repaired, validated.

    Raises Refused, with one sentence, for anything that is not a notebook
    the grader can run; FileNotFoundError when there is no file.
    """
    import nbformat

    data = read_bytes(path, max_bytes, base)
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refused("it is not UTF-8 text") from None
    except RecursionError:
        raise Refused("its JSON is nested too deeply") from None
    except ValueError as e:
        raise Refused(f"it is not valid JSON ({str(e).splitlines()[0][:120]})") from None
    fixed, notes = repair_notebook(parsed)
    nb = nbformat.from_dict(fixed)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as e:
        raise Refused(f"it does not follow the notebook format ({str(e.message)[:160]})") from None
    return nb, notes
