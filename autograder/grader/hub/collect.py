"""Collecting from nbgrader's exchange without trusting what a student left there.

nbgrader's collect copies ``inbound/<student>+<assignment>+<timestamp>+<random>/``
into ``submitted/<student>/<assignment>/`` with `shutil.copytree`, as the
instructor. In a submission folder a student controls, that follows links
(to the instructor's gradebook, to the course's solutions: their contents land
in ``submitted/``, where the graded notebook can print them into its
feedback), blocks for ever on a named pipe, copies device files and files of
any size, and takes the student's own ``timestamp.txt`` and folder name as the
time of submission. One malformed folder name, or one file that cannot be
copied, stops the whole collection.

`SafeCollect` is that collect with the copy replaced, set in the course's
exchange configuration (`autograder hub` writes it):

    c.ExchangeFactory.collect = "autograder.grader.hub.collect.SafeCollect"

- one walk of each submission folder plans its copy, when nbgrader lists the
  submissions: what it will copy, what it refuses and why, and the
  submission's time. The copy then copies exactly the planned entries, so
  what is timed and what is collected are the same files;
- only plain files and folders are planned, each seen without following
  links and checked again after opening; links, pipes, sockets and devices
  are refused, and so are entries owned by anyone but the submission's owner
  (a hard link to someone else's file), and entries that cannot be read;
- names must be printable text (no control characters, no invalid UTF-8, no
  right-to-left tricks) of at most 255 bytes;
- a file over ``CourseDirectory.max_file_size``, files past
  ``CourseDirectory.max_dir_size`` in total, past `max_files` or deeper than
  `max_depth` are refused, one by one: the rest of the submission is kept.
  Names on nbgrader's ignore list (``*.pyc``, checkpoints) are skipped and
  count for nothing;
- ``timestamp.txt`` and ``submission_secret.txt`` at the top must be files, as
  nbgrader's submit writes them; anything else in their place is refused;
- a submission folder that is not a folder, is not owned by the student it
  names (someone submitting in a classmate's name), or whose name is not
  nbgrader's, is refused whole, and never hides that student's real one;
- a submission without nbgrader's ``submission_secret.txt`` gets one, as
  release_feedback stops for the whole class at the first that lacks it;
- the time of a submission is the exchange's: the latest change the file
  system recorded (ctime, which no user can set back) on the folder and on
  every entry the copy will hold, folders included, not the time the
  student's own process wrote in ``timestamp.txt``. Entries the copy skips
  or refuses do not count, and an entry that changes after the plan is
  refused, so no byte collected is later than that time. It is the time
  nbgrader compares with the due date for the late penalty, and the one that
  decides which of a student's submissions is the latest;
- each submission is copied on its own, into a hidden folder beside its
  place in ``submitted/``, and moved there once whole: whatever stops one
  copy (a folder removed half-way, a file that cannot be read, any error)
  refuses that submission whole, removes its partial copy and keeps the
  student's earlier collected one; the rest of the class is collected.

Every refusal is one line with its reason in nbgrader's log (which Formgrader
shows after Collect) and in ``collect.log`` in the course folder.
"""

import datetime
import errno
import fnmatch
import os
import pwd
import re
import secrets
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.exchange.default import ExchangeCollect
from nbgrader.utils import parse_utc
from traitlets import Integer, Unicode

REFUSED_USER = "\0refused:"  # a group of its own in nbgrader's grouping by student; never a user name
MAX_NAME_BYTES = 255
CHUNK = 1 << 20
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")  # nbgrader's submit writes both, as files
EPOCH = datetime.datetime(1970, 1, 1)


class Refused(Exception):
    """A whole submission refused; the message is the one-sentence reason."""


@dataclass
class Entry:
    """A file or a folder the copy will make, as the plan saw it."""

    name: str
    shown: str  # its path in the submission, for the log
    info: os.stat_result
    children: list = None  # a folder's planned entries; None for a file

    @property
    def is_folder(self):
        return self.children is not None


@dataclass
class Plan:
    """What one submission's copy will hold, decided by one walk: the entries, the refusals, the time."""

    folder: os.stat_result
    files_left: int
    bytes_left: int
    entries: list = field(default_factory=list)
    refusals: list = field(default_factory=list)  # (shown, reason), told when the submission is collected
    past_limit: list = field(default_factory=list)  # entries past max_files, told in one line
    latest_ns: int = 0

    def __post_init__(self):
        self.latest_ns = self.folder.st_ctime_ns

    def refuse(self, shown, reason):
        self.refusals.append((shown, reason))

    def take(self, entry):
        """Count a planned entry against the limits and the time."""
        self.files_left -= 1
        if not entry.is_folder:
            self.bytes_left -= entry.info.st_size
        self.latest_ns = max(self.latest_ns, entry.info.st_ctime_ns)
        return entry

    @property
    def time(self):
        return utc_time(self.latest_ns)


class SafeCollect(ExchangeCollect):
    """nbgrader's collect, copying only plain files and folders the student owns, timed by the exchange."""

    max_files = Integer(1000, help="Files and folders collected per submission; the rest are refused.").tag(config=True)
    max_depth = Integer(8, help="Folders deeper than this in a submission are refused.").tag(config=True)
    report_file = Unicode("collect.log", help="Where refusals are written, relative to the course folder.").tag(
        config=True)

    # --- which submissions, and when they were made -------------------------------------

    def _path_to_record(self, path):
        """nbgrader's record of an inbound folder, with its plan and the exchange's time, or a refusal
        that groups alone. nbgrader picks each student's latest submission by this time, before copying."""
        if not hasattr(self, "_records"):
            self._records = {}
        filename = os.path.basename(path)
        parts = filename.rsplit("+", 3)
        record = {"username": parts[0], "filename": filename, "timestamp": None, "problem": "", "plan": None}
        try:
            record["claimed"] = parse_utc(parts[2]) if len(parts) >= 3 else None
        except Exception:  # a name is the student's choice: whatever dateutil makes of it, it is refused alone
            record["claimed"] = None
        if len(parts) < 3 or record["claimed"] is None:
            record["problem"] = "its name is not nbgrader's <student>+<assignment>+<timestamp>+<random>"
        else:
            record["problem"], record["plan"] = self._plan_or_refusal(path, parts[0])
        if record["problem"]:
            record["username"], record["timestamp"] = REFUSED_USER + filename, datetime.datetime.min
        else:
            record["timestamp"] = record["plan"].time
        self._records[os.path.abspath(path)] = record
        return record

    def _plan_or_refusal(self, path, student):
        """('', the plan) or (why the whole folder is refused, None)."""
        try:
            return "", self._plan(path, student)
        except Refused as e:
            return str(e), None
        except Exception as e:  # one folder never stops the listing of the class
            self.log.debug("Planning %s failed", path, exc_info=True)
            return f"it could not be read ({error_text(e)})", None

    def _plan(self, path, student):
        """The one walk that decides what the copy of ``path`` holds and how late it is."""
        try:
            info = os.lstat(path)
        except OSError as e:
            raise Refused(f"it cannot be read ({e.strerror})")
        if not stat.S_ISDIR(info.st_mode):
            raise Refused(f"it is {describe(info)}, not a folder")
        if self.check_owner and user_name(info.st_uid) != student:
            raise Refused(f"it names {student!r} but belongs to {user_name(info.st_uid)!r}")
        try:
            fd = open_folder(path)
        except OSError as e:
            raise Refused(f"it cannot be opened ({e.strerror})")
        try:
            opened = os.fstat(fd)
            if not same_inode(opened, info):
                raise Refused("it was replaced while it was being listed")
            try:
                names = list_names(fd)
            except OSError as e:
                raise Refused(f"its contents cannot be listed ({e.strerror})")
            plan = Plan(opened, files_left=self.max_files, bytes_left=1000 * self.coursedir.max_dir_size)
            plan.entries = self._plan_folder(fd, names, "", 0, plan)
            return plan
        finally:
            os.close(fd)

    def _plan_folder(self, fd, names, relative, depth, plan):
        """The planned entries among ``names``, in the folder open as ``fd``, in order."""
        planned = []
        for name in names:
            entry = self._plan_entry(fd, name, os.path.join(relative, os.fsdecode(name)), depth, plan)
            if entry is not None:
                planned.append(entry)
        return planned

    def _plan_entry(self, fd, name, shown, depth, plan):
        """The entry the copy will make for ``name``, or None (refused, with its reason, or skipped)."""
        if any(fnmatch.fnmatch(name, glob) for glob in self.coursedir.ignore):
            return None  # nbgrader's ignore list (checkpoints, caches, feedback): neither copied nor timed
        problem = odd_name(name)
        if problem:
            return plan.refuse(shown, problem)
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as e:
            return plan.refuse(shown, f"it cannot be read ({e.strerror})")
        if depth == 0 and name in EXCHANGE_FILES:
            if not stat.S_ISREG(info.st_mode):
                return plan.refuse(shown, f"it is {what_it_is(info, name, fd)}, not the file nbgrader's submit writes")
            if name == "timestamp.txt":
                return None  # the exchange writes its own time
        if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
            return plan.refuse(shown, f"it is {what_it_is(info, name, fd)}; only files and folders are collected")
        if info.st_uid != plan.folder.st_uid:
            return plan.refuse(shown, f"it belongs to {user_name(info.st_uid)!r}, not to the submission's owner")
        if plan.files_left <= 0:
            plan.past_limit.append(shown)  # neither copied nor timed
            return None
        if stat.S_ISDIR(info.st_mode):
            return self._plan_subfolder(fd, name, info, shown, depth, plan)
        return self._plan_file(name, info, shown, plan)

    def _plan_subfolder(self, fd, name, info, shown, depth, plan):
        if depth + 1 > self.max_depth:
            return plan.refuse(shown, f"folders deeper than {self.max_depth} levels are not collected")
        try:
            child = open_folder(name, dir_fd=fd)
        except OSError as e:
            return plan.refuse(shown, f"it cannot be opened ({e.strerror})")
        try:
            opened = os.fstat(child)
            if not same_inode(opened, info):
                return plan.refuse(shown, "it was replaced while it was being listed")
            try:
                names = list_names(child)
            except OSError as e:
                return plan.refuse(shown, f"its contents cannot be listed ({e.strerror})")
            entry = plan.take(Entry(name, shown, opened, children=[]))  # the folder counts before its contents
            entry.children = self._plan_folder(child, names, shown, depth + 1, plan)
            return entry
        finally:
            os.close(child)

    def _plan_file(self, name, info, shown, plan):
        limit = 1000 * self.coursedir.max_file_size
        if info.st_size > limit:
            return plan.refuse(shown, f"it is {info.st_size:,} bytes, over the course's limit of {limit:,} "
                                      "(CourseDirectory.max_file_size)")
        if info.st_size > plan.bytes_left:
            return plan.refuse(shown, "the submission's files are over the course's limit of "
                                      f"{1000 * self.coursedir.max_dir_size:,} bytes in total "
                                      "(CourseDirectory.max_dir_size)")
        return plan.take(Entry(name, shown, info))

    # --- collecting each submission on its own -------------------------------------------

    def copy_files(self):
        """nbgrader 0.9.6's ExchangeCollect.copy_files, each submission collected on its own.

        nbgrader removes a student's collected submission before copying the
        newer one, and stops the whole loop at the first error; here a newer
        one replaces it only once it is copied whole, and an error refuses
        only the submission it happened in.
        """
        refused = [r for r in self.src_records if r["problem"]]
        self.src_records = [r for r in self.src_records if not r["problem"]]
        for record in refused:
            self.refuse(record["filename"], "", f"the whole submission was refused: {record['problem']}")
        for record in self.src_records:
            claimed = record.get("claimed")
            if claimed and (record["timestamp"] - claimed).total_seconds() > 60:
                self.note(record["filename"], f"its own timestamp says {claimed} UTC, the exchange saw it last "
                                              f"changed at {record['timestamp']} UTC; the exchange's time counts")
        if not self.src_records:
            self.log.warning("No submissions of '%s' for course '%s' to collect", self.coursedir.assignment_id,
                             self.coursedir.course_id)
        else:
            self.log.info("Processing %d submissions of '%s' for course '%s'", len(self.src_records),
                          self.coursedir.assignment_id, self.coursedir.course_id)
        for record in self.src_records:
            self._collect_alone(record)
        self._tell_by_student()

    def _collect_alone(self, record):
        """Collect one submission; whatever goes wrong refuses it alone, and the class goes on."""
        try:
            self._collect(record)
        except Refused as e:
            self.refuse(record["filename"], "", f"the whole submission was refused: {e}")
        except Exception as e:
            self.log.debug("Collecting %s failed", record["filename"], exc_info=True)
            self.refuse(record["filename"], "", f"the whole submission was refused: copying it failed "
                                                f"({error_text(e)})")

    def _collect(self, record):
        student, assignment = record["username"], self.coursedir.assignment_id
        source = os.path.join(self.inbound_path, record["filename"])
        dest = self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        copy, updating = self._should_collect(record, dest)
        if not copy:
            if self.update:
                self.log.info("No newer submission to collect: %s %s", student, assignment)
            else:
                self.log.info("Submission already exists, use --update to update: %s %s", student, assignment)
            return
        self.log.info("%s submission: %s %s", "Updating" if updating else "Collecting", student, assignment)
        staging = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.collecting-{secrets.token_hex(4)}")
        try:
            self.do_copy(source, staging)
            put_in_place(staging, dest)
        finally:
            remove_quietly(staging)  # what is left of a copy that did not finish

    def _should_collect(self, record, dest):
        """(copy, updating), decided as nbgrader 0.9.6 decides them."""
        if not os.path.isdir(dest):
            return True, False
        existing = self.coursedir.get_existing_timestamp(dest)
        if self.update and (existing is None or record["timestamp"] > existing):
            return True, True
        if self.before_duedate and existing != record["timestamp"]:
            return True, True
        return False, False

    # --- the copy: exactly what was planned ----------------------------------------------
    #
    # An entry that changed between the plan and the copy (another inode, or a
    # later ctime) is refused, not re-timed: nbgrader has already chosen this
    # submission over the student's others, and against her collected one,
    # by the planned time, and a new time would not undo those choices. So
    # every byte collected is from an entry unchanged since the plan, no later
    # than the time recorded; and a student who changes files during the
    # collection only loses them.

    def do_copy(self, src, dest, log=None):
        """Copy the entries planned for ``src`` into ``dest``, a new folder; raises what stops the copy."""
        record = self._records[os.path.abspath(src)]
        plan = record["plan"]
        self._tell_refusals(record["filename"], plan)
        try:
            fd = open_folder(src)
        except OSError as e:  # removed, or replaced by a link, since it was planned
            raise Refused(f"it cannot be opened any more ({e.strerror})")
        try:
            if not same_inode(os.fstat(fd), plan.folder):
                raise Refused("it was replaced while it was being collected")
            os.mkdir(dest)
            self._copy_entries(fd, Path(dest), plan.entries, record["filename"])
        finally:
            os.close(fd)
        self._write_exchange_files(Path(dest), record)

    def _tell_refusals(self, submission, plan):
        for shown, reason in plan.refusals:
            self.refuse(submission, shown, reason)
        if plan.past_limit:
            which = f"it and the {len(plan.past_limit) - 1:,} after it are" if len(plan.past_limit) > 1 else "it is"
            self.refuse(submission, plan.past_limit[0], f"{which} past the course's limit of {self.max_files} files "
                                                        "and folders in a submission")

    def _copy_entries(self, fd, dest, entries, submission):
        for entry in entries:
            if entry.is_folder:
                self._copy_folder(fd, entry, dest / entry.name, submission)
            else:
                self._copy_file(fd, entry, dest / entry.name, submission)

    def _copy_folder(self, fd, entry, target, submission):
        try:
            child = open_folder(entry.name, dir_fd=fd)
        except OSError as e:
            return self.refuse(submission, entry.shown, f"it cannot be opened any more ({e.strerror})")
        try:
            if not same_inode(os.fstat(child), entry.info):
                return self.refuse(submission, entry.shown, "it was replaced while it was being collected")
            # Its own ctime may have moved (an entry added or removed in it): only its planned entries,
            # each checked below, are copied, so that changes nothing collected.
            target.mkdir()
            self._copy_entries(child, target, entry.children, submission)
        finally:
            os.close(child)

    def _copy_file(self, fd, entry, target, submission):
        try:
            source = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as e:
            reason = "it became a link" if e.errno == errno.ELOOP else "it cannot be opened any more"
            return self.refuse(submission, entry.shown, f"{reason} ({e.strerror})")
        try:
            if unchanged(os.fstat(source), entry.info):
                with open(target, "xb") as out:
                    copied = copy_at_most(source, out, entry.info.st_size + 1)
                if copied == entry.info.st_size and unchanged(os.fstat(source), entry.info):
                    return  # read whole, and nothing wrote to it meanwhile
                target.unlink()
        finally:
            os.close(source)
        self.refuse(submission, entry.shown, "it changed after the collection had timed the submission")

    def _write_exchange_files(self, dest, record):
        timestamp = record["timestamp"].replace(tzinfo=datetime.timezone.utc)
        (dest / "timestamp.txt").write_text(timestamp.strftime(self.timestamp_format))
        secret = dest / "submission_secret.txt"
        if not secret.exists():  # release_feedback needs one for every submission, or it stops for all
            secret.write_text(secrets.token_hex(64))
            self.note(record["filename"], "it had no submission_secret.txt (not sent by nbgrader's submit); the "
                                          "student cannot fetch its feedback from the Assignment List")

    # --- telling the instructor ----------------------------------------------------------

    def refuse(self, submission, path, reason):
        where = f"{submission}/{path}" if path else submission
        self._report(f"refused {where!r}: {reason}", submission,
                     f"{path!r} refused: {reason}" if path else f"{submission!r}: {reason}")

    def note(self, submission, message):
        self._report(f"note on {submission!r}: {message}", submission, f"note: {message}")

    def _report(self, line, submission, short):
        """``line`` into the course's collect.log now; ``short`` to the instructor, with the rest of that
        student's, when the collection ends (Formgrader's Collect dialog shows the log)."""
        record = {r["filename"]: r for r in getattr(self, "_records", {}).values()}.get(submission)
        if record is None or record.get("claimed") is None:  # not nbgrader's name: no student to file it under
            student = "folders not named as nbgrader names submissions"
        else:  # the name's student, quoted unless it looks like a user name (a name is the student's choice)
            student = record["username"]
            student = student if re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", student) else repr(student)
        self.__dict__.setdefault("_told", {}).setdefault(student, []).append(short)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        report = Path(self.coursedir.root) / self.report_file
        with open(report, "a") as f:
            f.write(f"{stamp}  {self.coursedir.assignment_id}  {line}\n")

    def _tell_by_student(self):
        report = Path(self.coursedir.root) / self.report_file
        for student, lines in sorted(self.__dict__.get("_told", {}).items()):
            self.log.warning("%s (%s): %d %s; each is also in %s", student, self.coursedir.assignment_id, len(lines),
                             "thing to know" if len(lines) == 1 else "things to know", report)
            for line in lines:
                self.log.warning("    %s", line)


# --- the file system, one call at a time ---------------------------------------------------

def open_folder(name, dir_fd=None):
    """A folder's descriptor, never through a link."""
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)


def list_names(fd):
    """The names in the folder open as ``fd``, sorted: the plan's order, so its limits fall the same each time."""
    return sorted(os.listdir(fd))


def same_inode(a, b):
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def unchanged(now, planned):
    """Whether a file is still the plain file the plan timed: a write or a chmod moves its ctime."""
    return (stat.S_ISREG(now.st_mode) and same_inode(now, planned) and now.st_ctime_ns == planned.st_ctime_ns
            and now.st_size == planned.st_size)


def copy_at_most(source, out, limit):
    """Copy up to ``limit`` bytes from the descriptor ``source`` to ``out``; the number copied."""
    copied = 0
    while copied < limit:
        chunk = os.read(source, min(CHUNK, limit - copied))
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
    return copied


def put_in_place(staging, dest):
    """Move a whole copy to ``dest``; an earlier copy there is replaced only once the new one is in place."""
    if not os.path.lexists(dest):
        os.rename(staging, dest)
        return
    earlier = f"{staging}.earlier"
    os.rename(dest, earlier)
    try:
        os.rename(staging, dest)
    except OSError:
        os.rename(earlier, dest)
        raise
    remove_quietly(earlier)


def remove_quietly(path):
    """Remove a file or folder of the collect's own, if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.unlink(path)
        except OSError:
            pass


def utc_time(ns):
    """A ctime as a naive UTC time, rounded up to the microsecond: never before the change it records."""
    return EPOCH + datetime.timedelta(microseconds=-(-ns // 1000))


def error_text(error):
    """An exception as one line."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return " ".join(f"{type(error).__name__}: {text}".split())


def what_it_is(info, name, fd):
    """``describe``, with a link's target."""
    if stat.S_ISLNK(info.st_mode):
        return f"a link to {readlink(name, fd)!r}"
    return describe(info)


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
