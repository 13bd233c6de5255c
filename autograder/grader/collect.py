"""Collecting from nbgrader's exchange without trusting what a student left there.

nbgrader's collect copies ``inbound/<student>+<assignment>+<timestamp>+<random>/``
into ``submitted/<student>/<assignment>/`` with `shutil.copytree`, as the
instructor. In a submission folder a student controls, that follows links
(to the instructor's gradebook, to the course's solutions: their contents land
in ``submitted/``, where the graded notebook can print them into its
feedback), blocks for ever on a named pipe, copies device files and files of
any size, and takes the student's own ``timestamp.txt`` and folder name as the
time of submission. One malformed folder name stops the whole collection.

`SafeCollect` is that collect with the copy replaced, set in the course's
exchange configuration (`autograder hub` writes it):

    c.ExchangeFactory.collect = "autograder.grader.collect.SafeCollect"

- only plain files and folders are copied, each opened without following
  links and checked after opening; links, pipes, sockets and devices are
  refused, and so are files owned by anyone but the submission's owner (a
  hard link to someone else's file);
- names must be printable text (no control characters, no invalid UTF-8, no
  right-to-left tricks) of at most 255 bytes;
- a file over ``CourseDirectory.max_file_size``, files past
  ``CourseDirectory.max_dir_size`` in total, past `max_files` or deeper than
  `max_depth` are refused, one by one: the rest of the submission is kept;
- a submission folder that is not a folder, or is not owned by the student it
  names (someone submitting in a classmate's name), or whose name is not
  nbgrader's, is refused whole, and never hides that student's real one;
- a submission without nbgrader's ``submission_secret.txt`` gets one, as
  release_feedback stops for the whole class at the first that lacks it;
- the time of a submission is the exchange's: the last change the file system
  recorded in the folder (its ctime, which no user can set back), not the
  time the student's own process wrote in ``timestamp.txt``. That is the
  time nbgrader compares with the due date for the late penalty, and the one
  that decides which of a student's submissions is the latest.

Every refusal is one line with its reason in nbgrader's log (which Formgrader
shows after Collect) and in ``collect.log`` in the course folder.
"""

import datetime
import errno
import fnmatch
import os
import pwd
import secrets
import stat
from pathlib import Path

from nbgrader.exchange.default import ExchangeCollect
from nbgrader.utils import parse_utc
from traitlets import Integer, Unicode

REFUSED_USER = "\0refused:"  # a group of its own in nbgrader's grouping by student; never a user name
MAX_NAME_BYTES = 255
CHUNK = 1 << 20


class SafeCollect(ExchangeCollect):
    """nbgrader's collect, copying only plain files and folders the student owns, timed by the exchange."""

    max_files = Integer(1000, help="Files and folders collected per submission; the rest are refused.").tag(config=True)
    max_depth = Integer(8, help="Folders deeper than this in a submission are refused.").tag(config=True)
    report_file = Unicode("collect.log", help="Where refusals are written, relative to the course folder.").tag(
        config=True)

    # --- which submissions, and when they were made -------------------------------------

    def _path_to_record(self, path):
        """nbgrader's record of an inbound folder, with the exchange's time, or a refusal that groups alone."""
        if not hasattr(self, "_records"):
            self._records = {}
        filename = os.path.basename(path)
        parts = filename.rsplit("+", 3)
        record = {"username": parts[0], "filename": filename, "timestamp": None, "problem": ""}
        try:
            record["claimed"] = parse_utc(parts[2]) if len(parts) >= 3 else None
        except (ValueError, OverflowError):
            record["claimed"] = None
        if len(parts) < 3 or record["claimed"] is None:
            record["problem"] = "its name is not nbgrader's <student>+<assignment>+<timestamp>+<random>"
        else:
            record["problem"], record["timestamp"] = self._inspect(path, parts[0])
        if record["problem"]:
            record["username"], record["timestamp"] = REFUSED_USER + filename, datetime.datetime.min
        self._records[os.path.abspath(path)] = record
        return record

    def _inspect(self, path, student):
        """(why the folder is refused or '', the latest change in it as a naive UTC time)."""
        try:
            info = os.lstat(path)
        except OSError as e:
            return f"it cannot be read ({e.strerror})", None
        if not stat.S_ISDIR(info.st_mode):
            return f"it is {describe(info)}, not a folder", None
        if self.check_owner:
            owner = user_name(info.st_uid)
            if owner != student:
                return f"it names {student!r} but belongs to {owner!r}", None
        latest = info.st_ctime
        stack, seen = [path], 0
        while stack and seen <= self.max_files:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                seen += 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                latest = max(latest, st.st_ctime)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
        when = datetime.datetime.fromtimestamp(latest, datetime.timezone.utc).replace(tzinfo=None)
        return "", when

    def copy_files(self):
        records = getattr(self, "_records", {})
        refused = [r for r in self.src_records if r["problem"]]
        self.src_records = [r for r in self.src_records if not r["problem"]]
        for record in refused:
            self.refuse(record["filename"], "", f"the whole submission was refused: {record['problem']}")
        for record in self.src_records:
            claimed = record.get("claimed")
            if claimed and (record["timestamp"] - claimed).total_seconds() > 60:
                self.note(record["filename"], f"its own timestamp says {claimed} UTC, the exchange saw it last "
                                              f"changed at {record['timestamp']} UTC; the exchange's time counts")
        self._by_source = {path: r for path, r in records.items() if not r["problem"]}
        super().copy_files()

    # --- the copy ------------------------------------------------------------------------

    def do_copy(self, src, dest, log=None):
        record = self._by_source[os.path.abspath(src)]
        self._limits = {"files": self.max_files, "bytes": 1000 * self.coursedir.max_dir_size}
        os.makedirs(dest)
        try:
            fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as e:  # replaced by a link or removed since it was listed
            self.refuse(record["filename"], "", f"the whole submission was refused: it cannot be opened ({e.strerror})")
            return
        try:
            self._owner = os.fstat(fd).st_uid
            self._copy_folder(fd, Path(dest), record["filename"], "", 0)
        finally:
            os.close(fd)
        timestamp = record["timestamp"].replace(tzinfo=datetime.timezone.utc)
        Path(dest, "timestamp.txt").write_text(timestamp.strftime(self.timestamp_format))
        secret = Path(dest, "submission_secret.txt")
        if not secret.is_file():  # release_feedback needs one for every submission, or it stops for all
            secret.write_text(secrets.token_hex(64))
            self.note(record["filename"], "it had no submission_secret.txt (not sent by nbgrader's submit); the "
                                          "student cannot fetch its feedback from the Assignment List")

    def _copy_folder(self, fd, dest, submission, relative, depth):
        for name in sorted(os.listdir(fd)):
            shown = os.path.join(relative, os.fsdecode(name))
            if depth == 0 and name == "timestamp.txt":
                continue  # the exchange writes its own time
            if any(fnmatch.fnmatch(name, glob) for glob in self.coursedir.ignore):
                continue  # nbgrader's ignore list: checkpoints, caches, feedback
            problem = odd_name(name)
            if problem:
                self.refuse(submission, shown, problem)
                continue
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as e:
                self.refuse(submission, shown, f"it cannot be read ({e.strerror})")
                continue
            if self._limits["files"] <= 0:
                self.refuse(submission, shown, f"the submission has more than {self.max_files} files and folders")
                continue
            self._limits["files"] -= 1
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 > self.max_depth:
                    self.refuse(submission, shown, f"folders deeper than {self.max_depth} levels are not collected")
                    continue
                try:
                    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as e:
                    self.refuse(submission, shown, f"it cannot be opened ({e.strerror})")
                    continue
                try:
                    (dest / name).mkdir()
                    self._copy_folder(child, dest / name, submission, shown, depth + 1)
                finally:
                    os.close(child)
            elif not stat.S_ISREG(info.st_mode):
                target = f" to {readlink(name, fd)!r}" if stat.S_ISLNK(info.st_mode) else ""
                self.refuse(submission, shown, f"it is {describe(info)}{target}; only files and folders are collected")
            else:
                self._copy_file(fd, name, info, dest / name, submission, shown)

    def _copy_file(self, fd, name, info, target, submission, shown):
        limit = 1000 * self.coursedir.max_file_size
        if info.st_uid != self._owner:
            self.refuse(submission, shown, f"it belongs to {user_name(info.st_uid)!r}, not to the submission's owner")
            return
        if info.st_size > limit:
            self.refuse(submission, shown, f"it is {info.st_size:,} bytes, over the course's limit of {limit:,} "
                                           "(CourseDirectory.max_file_size)")
            return
        if info.st_size > self._limits["bytes"]:
            self.refuse(submission, shown, "the submission's files are over the course's limit of "
                                           f"{1000 * self.coursedir.max_dir_size:,} bytes in total "
                                           "(CourseDirectory.max_dir_size)")
            return
        try:
            source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as e:
            reason = "it cannot be opened" if e.errno != errno.ELOOP else "it became a link"
            self.refuse(submission, shown, f"{reason} ({e.strerror})")
            return
        try:
            opened = os.fstat(source)
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(opened.st_mode):
                self.refuse(submission, shown, "it was replaced while it was being collected")
                return
            data, size = [], 0
            while size <= limit:
                chunk = os.read(source, min(CHUNK, limit + 1 - size))
                if not chunk:
                    break
                data.append(chunk)
                size += len(chunk)
        finally:
            os.close(source)
        if size > limit or size > self._limits["bytes"]:
            self.refuse(submission, shown, "it grew past the course's size limit while it was being collected")
            return
        self._limits["bytes"] -= size
        with open(target, "xb") as out:
            out.write(b"".join(data))

    # --- telling the instructor ----------------------------------------------------------

    def refuse(self, submission, path, reason):
        where = f"{submission}/{path}" if path else submission
        self._report(f"refused {where!r}: {reason}")

    def note(self, submission, message):
        self._report(f"note on {submission!r}: {message}")

    def _report(self, line):
        self.log.warning("Collect %s: %s", self.coursedir.assignment_id, line)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        report = Path(self.coursedir.root) / self.report_file
        with open(report, "a") as f:
            f.write(f"{stamp}  {self.coursedir.assignment_id}  {line}\n")


def odd_name(name):
    """Why a file name is refused, or ''."""
    size = len(os.fsencode(name))
    if size > MAX_NAME_BYTES:
        return f"its name is {size} bytes long (at most {MAX_NAME_BYTES})"
    text = os.fsdecode(name) if isinstance(name, bytes) else name
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if not text.isprintable():
        return "its name holds control or invisible characters"
    return ""


def describe(info):
    mode = info.st_mode
    for test, what in ((stat.S_ISLNK, "a link"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a file")):
        if test(mode):
            return what
    return "a special file"


def readlink(name, fd):
    try:
        return os.readlink(name, dir_fd=fd)
    except OSError:
        return "?"


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"

