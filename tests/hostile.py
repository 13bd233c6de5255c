"""Hostile submissions, written as a cheating student would, and what each one deserves.

Two small courses keep them fast. `tiny` (tiny_course.py) has two pure-Python
answers; `mini` below has a Keras model and a function, like the worksheets.
Each case is a wrong or missing answer plus a trick; its `expected` scores
are what the honest part of the work deserves, nothing more. docs/ROBUSTNESS.md
has one row per case, with the defence.
"""

import json
from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from tiny_course import cell, hidden, student_version, tiny_solution


@dataclass
class Case:
    name: str
    course: str  # "tiny" or "mini"
    build: object  # () -> the handed-in notebook (a NotebookNode, or a dict that breaks nbformat's schema)
    expected: dict  # test cell -> score
    fault: str = ""  # a substring of the recorded reason, if the run stops
    flag: str = ""  # a substring of a flag for the instructor
    category: str = ""
    files: object = None  # callable(submission folder, course folder): files beside the notebook
    note: str = ""  # a substring of a note the instructor reads (a refused file, a repair)
    control_group: bool = False  # its outcome rests on a control group's limits, which only root makes here
    max_grader_bytes: int = 0  # the grading process's own peak memory must stay under this


# A secret of the grading host: in the coordinator's environment (so in the workers' too). It must
# reach no kernel, no report and no feedback.
HOST_SECRET = "HOST_SECRET_5c1d9e"


def with_cells(nb, *sources, at=None):
    """``nb`` with student code cells added (at the end, or before cell ``at``)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = [new_code_cell(s) for s in sources]
    if at is None:
        nb.cells.extend(cells)
    else:
        nb.cells[at:at] = cells
    return nb


def wrong_tiny():
    """A tiny submission with both answers wrong: what the tricks try to rescue."""
    return student_version(tiny_solution(), answer="7", double="x + 2")


def edit_test(nb, grade_id, **changes):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            if "source" in changes:
                c.source = changes.pop("source")
            c.metadata.nbgrader.update(changes)
    return nb


ZERO = {"test_answer": 0, "test_double": 0}
FULL = {"test_answer": 1, "test_double": 2}

# --- tricks in the student's kernel ---------------------------------------------------

DISPLAYHOOK = """
# Every cell 'returns' full marks before it runs: nbgrader reads a number left
# in a test cell as partial credit.
from IPython.display import publish_display_data
def _full_marks(info):
    get_ipython().display_pub.publish({"text/plain": "2.0"})
    get_ipython().displayhook.write_output_prompt()
get_ipython().events.register("pre_run_cell", _full_marks)
import sys
sys.displayhook = lambda value: print(2.0)
"""

SETTRACE = """
# While a test cell runs, and only then, `answer` reads 42 and `double` is
# right: the visible asserts pass on a notebook that computes wrong answers.
import sys
_right = {"answer": 42, "double": lambda x: 2 * x}
_saved = {}
def _tracer(frame, event, arg):
    consts = frame.f_code.co_consts
    if "answer should be positive" not in consts and "double(1) should be 2" not in consts:
        return None
    if event == "call":
        _saved.update({k: frame.f_globals[k] for k in _right})
        frame.f_globals.update(_right)
    elif event == "return":
        frame.f_globals.update(_saved)
    return _tracer
sys.settrace(_tracer)
"""

AST_TRY = """
# Wrap every later cell in try/except: failed asserts vanish.
import ast
class _Forgive(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        return ast.fix_missing_locations(ast.Module(body=[ast.Try(body=node.body, handlers=[handler],
                                                                  orelse=[], finalbody=[])], type_ignores=[]))
get_ipython().ast_transformers.append(_Forgive())
"""

CUSTOM_EXC = """
# Swallow every AssertionError before IPython reports it.
get_ipython().set_custom_exc((AssertionError, Exception), lambda shell, etype, evalue, tb, tb_offset=None: None)
"""

BUILTINS = """
# Numbers that compare equal to anything.
import builtins
class _Yes(int):
    def __eq__(self, other): return True
    def __gt__(self, other): return True
    __ne__ = lambda self, other: False
answer = _Yes(7)
_real_double = double
double = lambda x: _Yes(_real_double(x))
builtins.AssertionError = type("AssertionError", (Exception,), {})
"""

SYSTEM_EXIT = """
# Leave while ahead: nothing after this cell can fail.
import sys
sys.exit(0)
"""

OS_EXIT = "import os\nos._exit(0)"

FIND_SECRETS = """
# Look everywhere for the solutions, the hidden tests, the gradebook, the course key.
import os
found = []
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root.startswith(("/proc", "/sys", "/dev", "/usr")):
        dirs[:] = []
        continue
    public = "site-packages" in root  # installed packages are public: their names are enough
    for name in files:
        path = os.path.join(root, name)
        if name in ("gradebook.db", ".autograder-secret") or name.endswith(".ipynb"):
            found.append(path)
        elif not public and name.endswith((".py", ".json")) and os.path.getsize(path) < 2_000_000:
            try:
                text = open(path, errors="ignore").read()
            except OSError:
                continue
            if "BEGIN HIDDEN TESTS" in text or "BEGIN SOLUTION" in text or "HIDDEN_MARKER" in text:
                found.append(path)
print("FOUND", found)
for path in found:
    if path.endswith(".ipynb"):
        import json
        for c in json.load(open(path)).get("cells", []):
            src = "".join(c.get("source", ""))
            if "answer = 42" in src or "def double" in src:
                exec(src.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
"""

WRITE_GRADEBOOK = """
# Give myself full marks in the course gradebook, wherever it is.
import glob, sqlite3
for path in glob.glob("/**/gradebook.db", recursive=True):
    db = sqlite3.connect(path)
    db.execute("CREATE TRIGGER cheat AFTER UPDATE ON grade BEGIN UPDATE grade SET manual_score = 100; END")
    db.commit()
    print("wrote", path)
"""

PRINT_HISTORY = """
# The hidden tests ran in this kernel: print its input history into the feedback.
print(In)
print(_ih)
import inspect, gc
print([getattr(o, "co_consts", None) for o in gc.get_objects() if type(o).__name__ == "code"][:0])
"""

EXCHANGE_TAMPER = """
# After the grader collected `answer`, swap the saved file for a better one.
import glob, numpy as np
for path in glob.glob("/tmp/**/out/answer.npy", recursive=True):
    np.save(path, np.asarray(42))
    print("tampered", path)
for path in glob.glob("/tmp/autograder-exchange-*/*/request.json"):
    print("request", path, open(path).read()[:200])
"""

NETWORK = """
# Ask a friend's server for the answers.
import urllib.request
try:
    answer = int(urllib.request.urlopen("http://example.com/answer", timeout=3).read())
except Exception as e:
    print("no network:", type(e).__name__)
"""

FORK_BOMB = """
import os, subprocess
procs = []
try:
    for _ in range(100_000):
        procs.append(subprocess.Popen(["sleep", "60"]))
except OSError as e:
    print("stopped after", len(procs), e)
"""

KILL_GRADER = """
# Kill whatever graded me.
import os, signal
for pid in range(1, 5000):
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""

CHILD = "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 600'], start_new_session=True)"


# --- issue 14: the jail as root, secrets, links, the grader's own work ----------------------------

REMOUNT_AND_PTH = """
# As root in the jail: make the grader's site-packages writable and plant a .pth that passes every
# check, in this scoring process and in every later Python start of the virtualenv.
import os, subprocess, sys, site
print("uid", os.getuid(), open("/proc/self/status").read().split("CapEff:")[1].split()[0])
for folder in site.getsitepackages():
    subprocess.run(["mount", "-o", "remount,rw,bind", folder], capture_output=True)
    try:
        with open(os.path.join(folder, "zz_cheat.pth"), "w") as f:
            f.write("import builtins; builtins.CHEATED = True\\n")
        print("planted in", folder)
    except OSError as e:
        print("refused:", type(e).__name__)
"""

READ_ENVIRON = """
# bubblewrap is PID 1 in the jail: its environment was the grader's, course secret included.
import glob
for path in ["/proc/1/environ", *glob.glob("/proc/*/environ")]:
    try:
        text = open(path, "rb").read().decode(errors="replace")
    except OSError:
        continue
    print(path, text.replace("\\0", " ")[:3000])
"""

PLANT_LINKS = """
# The grader reads back what the kernel writes: make each of its files a link to a secret of the host,
# so that the "error message" it quotes into the feedback is that file.
import glob, json, os
targets = {"": "/dev/zero", ".error": "/proc/1/environ"}
for request in glob.glob("/tmp/**/exchange/*/request.json", recursive=True):
    base = os.path.dirname(request)
    os.makedirs(os.path.join(base, "out"), exist_ok=True)
    for item in json.load(open(request))["exports"]:
        for call in item.get("calls", [{"out": item.get("file", "out/x")}]):
            for suffix in ("", ".error"):
                path = os.path.join(base, call["out"] + suffix)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                try:
                    os.symlink(targets[suffix], path)
                except OSError:
                    pass
import autograder.run.exports as exchange
exchange.collect = lambda namespace, request_file: None  # and write nothing of its own
"""

NEWLINES = "pass" + "\n" * 1_000_000
MARKER_FLOOD = "x = 1\n" + "### BEGIN HIDDEN TESTS\n" * 40_000

FILL_SOCKETS = """
# Fill the disk through the folder of the kernel's sockets, which no quota covered.
import sys, os
folder = os.path.dirname(sys.argv[sys.argv.index("-f") + 1])
chunk = b"x" * 2**20
for i in range(5_000):
    with open(os.path.join(folder, f"fill{i % 20}"), "ab") as f:
        f.write(chunk * 8)
"""


LONG_PATHS = """
import os
# Folders of 250-character names in the exchange, 20 deep: a path longer than the grader may open.
home = os.getcwd()
os.makedirs("../exchange/00/out", exist_ok=True)
os.chdir("../exchange/00/out")
for _ in range(20):
    os.mkdir("d" * 250)
    os.chdir("d" * 250)
open("x", "w").write("x")
os.chdir(home)
"""
DEEP_FOLDERS = """
import os
# 1,500 nested folders in the jail's /tmp: the grader's clean-up recursed once per level.
home = os.getcwd()
os.chdir("/tmp")
for _ in range(1500):
    os.mkdir("a")
    os.chdir("a")
os.chdir(home)
"""
FILL_LONG_NAMES = """
import os
# The disk filled 17 folders of long names down, where a quota that walks paths could not look.
home = os.getcwd()
os.chdir("/tmp")
for _ in range(17):
    os.mkdir("d" * 250)
    os.chdir("d" * 250)
block = b"1" * 2**20
with open("fill", "wb") as f:
    for _ in range(1024):
        f.write(block)
os.chdir(home)
"""


# --- issue 21: one notebook never stops the class, nor passes its own failure off as the host's -----

BAD_MESSAGES = r"""
# Messages of every shape but the protocol's, each sent as this cell's output: the grader once ended on a
# stream whose text was a number, recorded as the host's fault, and every classmate after her was not graded.
import json
k = get_ipython().kernel
s = k.session
parent = k.get_parent("shell")

def raw(msg_type, content, header=None, parent_part=None, frames=None):
    head = header if header is not None else json.dumps(s.msg_header(msg_type), default=str).encode()
    parts = [head, parent_part if parent_part is not None else json.dumps(parent, default=str).encode(),
             b"{}", content]
    k.iopub_socket.send_multipart(frames or [b"kernel.raw", b"<IDS|MSG>", s.sign(parts)] + parts)

send = lambda msg_type, content: s.send(k.iopub_socket, msg_type, content, parent=parent)
send("stream", {"name": "stdout", "text": 12345})
send("stream", {"name": ["stdout"], "text": "x"})
send("error", {"ename": "E", "evalue": "v", "traceback": "not a list"})
send("display_data", {"data": ["not", "a", "bundle"], "metadata": {}})
send("display_data", {"data": {"text/plain": "x"}, "metadata": {}, "transient": {"display_id": ["a", "list"]}})
send("execute_result", {"data": {"text/plain": "x"}, "metadata": {}, "execution_count": "seven"})
send("stream", {"name": "stdout", "text": "x", "execution_count": {"a": 1}})
send("status", {"execution_state": {"idle": True}})
send("clear_output", {"wait": "soon"})
send("comm_open", {"comm_id": "c", "target_name": "jupyter.widget",
                   "data": {"state": {"value": "<img src=x onerror=alert(1)>"}}})
send("no_such_type", {"x": 1})
raw("stream", b"{not json")
raw("stream", b"[" * 100_000 + b"]" * 100_000)
raw("stream", b'{"name": "stdout", "text": "x", "n": ' + b"9" * 10_000 + b"}")
raw("stream", b'{"name": "stdout", "text": "x"}', header=b'{"msg_type": 5}')
raw("stream", b'{"name": "stdout", "text": "x"}', parent_part=b'["not", "a", "header"]')
raw("stream", b"", frames=[b"no delimiter at all", b"x"])
raw("stream", b"{}", frames=[b"kernel.raw", b"<IDS|MSG>", b"a forged signature", b"{}", b"{}", b"{}", b"{}"])
"""

HUGE_FRAME = """
# One output of 300 MB, in one frame: the grader read and decoded whatever came (3 GB resident for a 1 GB
# display()). Sent as raw frames, so that the kernel holds it once.
import json
k = get_ipython().kernel
s = k.session
parts = [json.dumps(s.msg_header("stream"), default=str).encode(),
         json.dumps(k.get_parent("shell"), default=str).encode(), b"{}", bytes(300 * 2**20)]
k.iopub_socket.send_multipart([b"kernel.raw", b"<IDS|MSG>", s.sign(parts)] + parts)
"""

FRAME_FLOOD = """
# Frames under the grader's cap, forty to a message, ten messages: ZeroMQ hands a message over only
# whole, so the cap per frame alone would let 9.6 GB into the grader's memory.
k = get_ipython().kernel
frame = b"x" * (24 * 2**20)
for _ in range(10):
    k.session.send(k.iopub_socket, "display_data", {"data": {"text/plain": "flood"}, "metadata": {}},
                   parent=k.get_parent("shell"), buffers=[frame] * 40)
"""

DISPLAY_UPDATE = """
# Twenty small outputs, then one 30 MB update of them all: nbclient copies an update into every output with its
# display id, past the cap on what a cell keeps (red team: a 629 MB notebook, and 3.2 GB to write its feedback).
from IPython.display import display
for _ in range(20):
    display({"text/plain": "small"}, raw=True, display_id="X")
k = get_ipython().kernel
k.session.send(k.iopub_socket, "update_display_data",
               {"data": {"text/plain": "y" * (30 * 2**20)}, "metadata": {}, "transient": {"display_id": "X"}},
               parent=k.get_parent("shell"))
"""

BIG_FIELDS = """
# Errors named with 20 MB and outputs carrying 20 MB of metadata, fields the caps did not count (red team,
# round 4: five of them made a 100 MB notebook; fifteen of 100 MB ran the grading process out of memory).
k = get_ipython().kernel
for _ in range(5):
    k.session.send(k.iopub_socket, "error", {"ename": "E" * 20_000_000, "evalue": "v", "traceback": []},
                   parent=k.get_parent("shell"))
    k.session.send(k.iopub_socket, "display_data", {"data": {"text/plain": "x"}, "metadata": {"m": "M" * 20_000_000}},
                   parent=k.get_parent("shell"))
"""
HUGE_ERROR = """def double(x):
    # The test cell calling it fails with a 30 MB message, which nbgrader copied from the reply into the notebook.
    raise ValueError("x" * 30_000_000)"""

SPARSE_EXPORTS = """
# Sparse files where the grader collects exports: 6 GB that take no room in the jail, and that the grader
# copied in full into its own folder, outside any quota.
import glob, os
os.makedirs("../exchange/00/out", exist_ok=True)
for folder in glob.glob("../exchange/*/out"):
    for i in range(6):
        with open(os.path.join(folder, f"pad{i}.npy"), "wb") as f:
            f.truncate(2**30)
"""


def deeply_nested_metadata():
    """The honest solution whose notebook and first cell carry metadata 900 levels deep: `grade` ended in a
    RecursionError traceback, with no grade. Raw JSON: nbformat would not write it."""
    text = nbformat.writes(student_version(tiny_solution()))
    deep = '{"a": ' * 900 + "1" + "}" * 900
    text = text.replace('"metadata": {\n  "kernelspec"', '"metadata": {\n  "deep": ' + deep + ',\n  "kernelspec"', 1)
    text = text.replace('"metadata": {}', '"metadata": {"deep": ' + deep + "}", 1)
    assert text.count(deep) == 2
    return text


def launcher_beside_the_notebook(folder, course):
    (folder / "ipykernel_launcher.py").write_text("import sys\nsys.exit(1)\n")


def attachment_notebook(nb):
    """A markdown cell carrying 100 MB of attachment: kept notebooks and feedback pages swelled to 100 MB."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cell = new_markdown_cell("![my plot](attachment:plot.png)")
    cell["attachments"] = {"plot.png": {"image/png": "A" * 100_000_000}}
    nb.cells.insert(1, cell)
    return nb


def schema_breaking(nb):
    """Valid JSON that breaks nbformat's schema: an integer source and a code cell without outputs."""
    data = json.loads(nbformat.writes(nb))
    data["cells"].insert(0, {"cell_type": "code", "metadata": {}, "source": 12345, "execution_count": None})
    return data


def link_to_the_solution(folder, course):
    """Links beside the notebook: the course's solution notebook, its secret, and /dev/zero as data."""
    (folder / "answers.ipynb").symlink_to(course / "solutions" / "tiny" / "tiny.ipynb")
    (folder / "tiny_solution.py").symlink_to(course / "solutions" / "tiny" / "tiny.ipynb")
    (folder / "key.txt").symlink_to(course / ".autograder-secret")
    (folder / "data.npy").symlink_to("/dev/zero")


READ_LINKED_SOLUTION = """
import glob, json, os
print(sorted(os.listdir(".")))
for path in glob.glob("*"):
    try:
        text = open(path, errors="replace").read(2_000_000)
    except OSError as e:
        print("cannot read", path, type(e).__name__)
        continue
    if "answer = 42" in text:
        exec("answer = 42\\ndef double(x):\\n    return 2 * x")
        print("found the solution in", path)
"""


def tiny_cases():
    wrong = wrong_tiny
    return [
        Case("honest tiny solution", "tiny", lambda: student_version(tiny_solution()), FULL, category="honest"),
        Case("fake printed results", "tiny",
             lambda: with_cells(wrong(), "print('test_answer passed\\ntest_double passed\\nAll tests passed: 3/3')"),
             ZERO, category="fake printed accuracy, history or curves"),
        Case("displayhook and pre-run publish of a score", "tiny", lambda: with_cells(wrong(), DISPLAYHOOK, at=1),
             ZERO, category="sys.displayhook"),
        Case("settrace: right answers only while tests run", "tiny", lambda: with_cells(wrong(), SETTRACE, at=1),
             ZERO, category="sys.settrace"),
        Case("AST transformer wraps later cells in try/except", "tiny", lambda: with_cells(wrong(), AST_TRY, at=1),
             ZERO, category="builtins, custom exception handlers"),
        Case("custom exception handler swallows failures", "tiny", lambda: with_cells(wrong(), CUSTOM_EXC, at=1),
             ZERO, category="builtins, custom exception handlers"),
        Case("builtins: values equal to anything", "tiny", lambda: with_cells(wrong(), BUILTINS, at=5),
             ZERO, category="builtins, custom exception handlers"),
        Case("SystemExit after the answers", "tiny",
             lambda: with_cells(student_version(tiny_solution(), double="x + 2"), SYSTEM_EXIT, at=3),
             {"test_answer": 1, "test_double": 0}, category="SystemExit and os._exit(0)"),
        Case("os._exit(0) after the first test", "tiny",
             lambda: with_cells(student_version(tiny_solution()), OS_EXIT, at=3),
             {"test_answer": 1, "test_double": 0}, fault="the kernel exited with status 0",
             category="SystemExit and os._exit(0)"),
        Case("test cell edited to pass", "tiny",
             lambda: edit_test(edit_test(wrong(), "test_answer", source="pass"), "test_double", source="pass"),
             ZERO, category="edited, deleted or added test cells"),
        Case("test cells deleted", "tiny",
             lambda: (lambda nb: (nb.cells.__delitem__(5), nb.cells.__delitem__(2), nb)[-1])(wrong()),
             ZERO, category="edited, deleted or added test cells"),
        Case("a test cell of one's own worth 100 points", "tiny",
             lambda: (lambda nb: (nb.cells.append(cell("pass", grade=True, grade_id="test_bonus", points=100)),
                                  nb)[-1])(wrong()),
             ZERO, category="edited, deleted or added test cells"),
        Case("points and metadata changed", "tiny",
             lambda: edit_test(edit_test(student_version(tiny_solution(), double="x + 2"), "test_answer",
                                         points=50, solution=False, locked=False), "test_double", grade=False),
             {"test_answer": 1, "test_double": 0}, category="changed nbgrader metadata or points"),
        Case("search the disk for solutions, hidden tests, gradebook, key", "tiny",
             lambda: with_cells(wrong(), FIND_SECRETS, at=1), ZERO,
             category="reading solutions/, the gradebook or the hidden data"),
        Case("write a trigger into the gradebook", "tiny", lambda: with_cells(wrong(), WRITE_GRADEBOOK, at=1), ZERO,
             category="reading solutions/, the gradebook or the hidden data"),
        Case("print the input history at the end", "tiny", lambda: with_cells(wrong(), PRINT_HISTORY), ZERO,
             category="hidden tests in feedback"),
        Case("rewrite the grader's collected files", "tiny", lambda: with_cells(wrong(), EXCHANGE_TAMPER), ZERO,
             category="monkeypatching the grader's side"),
        Case("ask the network", "tiny", lambda: with_cells(wrong(), NETWORK, at=1), ZERO, category="network"),
        Case("kill every process in sight", "tiny",
             lambda: with_cells(student_version(tiny_solution()), KILL_GRADER, at=3),
             {"test_answer": 1, "test_double": 0}, fault="the kernel was killed", category="fault: kill the grader"),
        Case("fork bomb", "tiny", lambda: with_cells(student_version(tiny_solution()), FORK_BOMB, at=1), FULL,
             category="fault: processes", control_group=True),
        # --- faults: the honest points before them are kept -----------------------------
        Case("infinite loop", "tiny",
             lambda: with_cells(student_version(tiny_solution()), "while True:\n    pass", at=3),
             {"test_answer": 1, "test_double": 2}, category="fault: infinite loop"),
        Case("loop that ignores SIGINT", "tiny",
             lambda: with_cells(student_version(tiny_solution()),
                                "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", at=3),
             {"test_answer": 1, "test_double": 0}, fault="did not stop when interrupted",
             category="fault: loop that ignores SIGINT"),
        Case("segmentation fault", "tiny",
             lambda: with_cells(student_version(tiny_solution()), "import ctypes\nctypes.string_at(0)", at=3),
             {"test_answer": 1, "test_double": 0}, fault="segmentation fault", category="fault: kernel death"),
        Case("memory blow-up", "tiny",
             lambda: with_cells(student_version(tiny_solution()),
                                "import numpy as np\nkeep = []\nwhile True:\n    keep.append(np.ones(10**7))", at=3),
             {"test_answer": 1, "test_double": 0}, fault="out of memory", category="fault: memory blow-up",
             control_group=True),
        Case("gigabytes of output", "tiny",
             lambda: with_cells(student_version(tiny_solution()),
                                "for _ in range(200):\n    print('x' * 1_000_000)", at=1),
             FULL, category="fault: output"),
        Case("child process left running", "tiny", lambda: with_cells(student_version(tiny_solution()), CHILD),
             FULL, category="fault: child process"),
        Case("wrong kernelspec", "tiny",
             lambda: (lambda nb: (nb.metadata.__setitem__("kernelspec", {"name": "ir", "display_name": "R",
                                                                          "language": "R"}), nb)[-1])(
                 student_version(tiny_solution())), FULL, category="fault: kernelspec"),
        Case("no kernelspec", "tiny",
             lambda: (lambda nb: (nb.metadata.pop("kernelspec"), nb)[-1])(student_version(tiny_solution())),
             FULL, category="fault: kernelspec"),
        # --- issue 14 -----------------------------------------------------------------------------
        Case("remount site-packages and plant a .pth", "tiny", lambda: with_cells(wrong(), REMOUNT_AND_PTH, at=1),
             ZERO, category="the jail as root"),
        Case("read the grader's environment through /proc", "tiny", lambda: with_cells(wrong(), READ_ENVIRON, at=1),
             ZERO, category="secrets within reach"),
        Case("exports replaced by links to the host's secrets", "tiny", lambda: with_cells(
            edit_test(wrong(), "test_answer"), PLANT_LINKS, at=1), ZERO, category="secrets within reach"),
        Case("links beside the notebook to the solution and the key", "tiny",
             lambda: with_cells(wrong(), READ_LINKED_SOLUTION, at=1), ZERO, category="secrets within reach",
             files=link_to_the_solution, note="answers.ipynb: it is a link"),
        Case("a cell of a million newlines", "tiny",
             lambda: with_cells(student_version(tiny_solution()), NEWLINES), FULL,
             category="the grader's own work: time"),
        Case("a cell of 40,000 hidden-test markers", "tiny",
             lambda: with_cells(student_version(tiny_solution()), MARKER_FLOOD), FULL,
             category="the grader's own work: time"),
        Case("the disk filled through the kernel's socket folder", "tiny",
             lambda: with_cells(student_version(tiny_solution()), FILL_SOCKETS, at=3),
             {"test_answer": 1, "test_double": 0}, fault="to disk", category="the grader's own work: disk"),
        Case("a 100 MB attachment", "tiny", lambda: attachment_notebook(student_version(tiny_solution())), FULL,
             category="the grader's own work: size", note="attachments are over"),
        Case("a notebook that breaks nbformat's schema", "tiny", lambda: schema_breaking(student_version(tiny_solution())),
             FULL, category="the grader's own work: bad notebooks", note="source was not text"),
        Case("exchange paths longer than the grader may open", "tiny", lambda: with_cells(wrong(), LONG_PATHS, at=1),
             ZERO, category="the grader's own work: bad files"),
        Case("1,500 nested folders in the jail", "tiny", lambda: with_cells(wrong(), DEEP_FOLDERS, at=1), ZERO,
             category="the grader's own work: bad files"),
        Case("the disk filled under folders of long names", "tiny",
             lambda: with_cells(student_version(tiny_solution()), FILL_LONG_NAMES, at=3),
             {"test_answer": 1, "test_double": 0}, fault="to disk", category="the grader's own work: disk"),
        Case("a kernel launcher of one's own beside the notebook", "tiny", wrong, ZERO,
             category="faults: the student's, not the host's", files=launcher_beside_the_notebook),
        # --- issue 21 -----------------------------------------------------------------------------
        Case("a second honest tiny solution, graded beside them", "tiny", lambda: student_version(tiny_solution()),
             FULL, category="honest"),
        Case("messages of every shape but the protocol's", "tiny",
             lambda: with_cells(student_version(tiny_solution()), BAD_MESSAGES, at=1), FULL,
             category="the class: one notebook stops nobody"),
        Case("one output of 300 MB", "tiny", lambda: with_cells(student_version(tiny_solution()), HUGE_FRAME, at=3),
             {"test_answer": 1, "test_double": 0}, fault="sent the grader more than it reads",
             category="the class: the grader's own memory", max_grader_bytes=400 * 2**20),
        Case("frames under the cap, forty to a message", "tiny",
             lambda: with_cells(student_version(tiny_solution()), FRAME_FLOOD, at=3),
             {"test_answer": 1, "test_double": 0}, fault="sent the grader more than it reads",
             category="the class: the grader's own memory", max_grader_bytes=int(1.3 * 2**30)),
        Case("one display update for twenty outputs", "tiny",
             lambda: with_cells(student_version(tiny_solution()), DISPLAY_UPDATE, at=1), FULL,
             category="the class: the grader's own memory", max_grader_bytes=400 * 2**20),
        Case("errors and metadata of 20 MB, five times", "tiny",
             lambda: with_cells(student_version(tiny_solution()), BIG_FIELDS, at=1), FULL,
             category="the class: the grader's own memory", max_grader_bytes=600 * 2**20),
        Case("a test cell failing with a message of 30 MB", "tiny",
             lambda: (lambda nb: (nb.cells.__setitem__(4, cell(HUGE_ERROR, solution=True, grade_id="double")),
                                  nb)[-1])(student_version(tiny_solution())),
             {"test_answer": 1, "test_double": 0}, category="the class: the grader's own memory",
             max_grader_bytes=600 * 2**20),
        Case("sparse files where the grader collects exports", "tiny",
             lambda: with_cells(student_version(tiny_solution()), SPARSE_EXPORTS, at=1), ZERO, fault="to disk",
             category="the class: the grader's own disk"),
        Case("metadata nested 900 deep", "tiny", deeply_nested_metadata, FULL,
             category="the class: one notebook stops nobody", note="nested too deeply and was removed"),
    ]


# --- the mini course: a model and a function, like the worksheets -------------------------

def mini_solution():
    """Prepare MNIST, a 784-32-10 model (25,450 parameters) trained briefly, a prepare function."""
    nb = new_notebook(cells=[
        new_markdown_cell("# Mini worksheet\n\n## 1. Data"),
        new_code_cell("import numpy as np\nimport keras\nfrom keras import layers\nfrom autograder import checks\n"
                      "from autograder.datasets import mnist\nkeras.utils.set_random_seed(0)\n"
                      "(train_images, train_labels), (test_images, test_labels) = mnist.load_data()"),
        cell("### BEGIN SOLUTION\ndef prepare_images(images):\n"
             "    return images.reshape(len(images), 784).astype('float32') / 255\n### END SOLUTION\n"
             "x_train, x_test = prepare_images(train_images[:8000]), prepare_images(test_images)\n"
             "y_train = train_labels[:8000]", solution=True, grade_id="prepare"),
        cell("checks.expect_prepared_images(prepare_images, flatten=True)"
             + hidden("hidden.expect_prepared_images(prepare_images, flatten=True)"),
             grade=True, grade_id="test_prepare", points=1),
        new_markdown_cell("## 2. Model"),
        cell("### BEGIN SOLUTION\nmodel = keras.Sequential([keras.Input((784,)), layers.Dense(32, activation='relu'),\n"
             "                          layers.Dense(10, activation='softmax')])\n### END SOLUTION",
             solution=True, grade_id="model"),
        cell("checks.expect_param_count(model, (784 + 1) * 32 + (32 + 1) * 10)"
             + hidden("hidden.expect_layers(model, [\n"
                      "    {'class': 'Dense', 'output_shape': (None, 32), 'activation': 'relu'},\n"
                      "    {'class': 'Dense', 'output_shape': (None, 10), 'activation': 'softmax'},\n])"),
             grade=True, grade_id="test_architecture", points=1),
        new_markdown_cell("## 3. Training"),
        cell("### BEGIN SOLUTION\nmodel.compile(optimizer=keras.optimizers.Adam(3e-3), loss='sparse_categorical_crossentropy',\n"
             "              metrics=['accuracy'])\nhistory = model.fit(x_train, y_train, epochs=4, batch_size=256, verbose=0)\n"
             "### END SOLUTION", solution=True, grade_id="train"),
        cell("assert checks.accuracy(model, x_test[:2000], test_labels[:2000]) > 0.85, 'train the model first'"
             + hidden("hidden.expect_accuracy(model, 'mnist_test', floor=0.88)"),
             grade=True, grade_id="test_accuracy", points=2),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


MINI_FULL = {"test_prepare": 1, "test_architecture": 1, "test_accuracy": 2}


def mini_student(train="model.fit(x_train, y_train, epochs=4, batch_size=256, verbose=0)", model=None, prepare=None):
    nb = student_version(mini_solution())
    for c in nb.cells:
        if train != "model.fit(x_train, y_train, epochs=4, batch_size=256, verbose=0)":
            c.source = c.source.replace("history = model.fit(x_train, y_train, epochs=4, batch_size=256, verbose=0)",
                                        train)
        if model and "model = keras.Sequential" in c.source:
            c.source = model
        if prepare and "def prepare_images" in c.source:
            c.source = prepare + "\nx_train, x_test = prepare_images(train_images[:8000]), prepare_images(test_images)\n" \
                                 "y_train = train_labels[:8000]"
    return nb


UNTRAINED = "history = None"
PATCH_PREDICT = """history = None
# The model 'predicts' the test labels it was asked about.
_truth = {}
for images, labels in ((x_test, test_labels), (x_train, y_train)):
    for row, label in zip(images, labels):
        _truth[row.tobytes()] = label
def _predict(self, x, *args, **kwargs):
    x = np.asarray(x, dtype="float32").reshape(len(x), -1)
    return np.eye(10)[[_truth.get(row.tobytes(), 0) for row in x]]
keras.Model.predict = _predict
keras.Model.evaluate = lambda self, *a, **k: [0.01, 0.99]
"""
PATCH_NUMPY = """history = None
import numpy
numpy.mean = lambda *args, **kwargs: 0.99
np.mean = numpy.mean
"""
PATCH_CHECKS = """history = None
checks.accuracy = lambda *args, **kwargs: 0.99
checks.expect_accuracy = lambda *args, **kwargs: print("Accuracy on the MNIST test set: 0.9900 (required: 0.88)")
checks.expect_param_count = lambda *args, **kwargs: None
import sys, types
sys.modules["autograder.grader"] = types.ModuleType("autograder.grader")
sys.modules["autograder.grader.hidden_tests.heldout"] = types.SimpleNamespace(for_model=lambda *a, **k: (x_train[:10], y_train[:10]))
sys.modules["autograder.grader.hidden_tests.vocabulary"] = types.SimpleNamespace()
"""
REBIND_CHECKS = """history = None
class _Pass:
    def __getattr__(self, name):
        return lambda *args, **kwargs: 1.0
checks = _Pass()
"""
PATCH_DATASETS = """
# Easy data: every image is a zero, for the grader too if it loads data here.
from autograder.datasets import mnist as _mnist
_mnist.load_data = lambda *a, **k: ((train_images, train_labels * 0), (test_images, test_labels * 0))
test_labels = test_labels * 0
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
history = model.fit(x_train, y_train * 0, epochs=1, verbose=0)
"""
FAKE_HISTORY = """# Curves that look like training went well.
class _History:
    history = {"loss": [0.9, 0.4, 0.2, 0.1], "accuracy": [0.8, 0.9, 0.95, 0.98],
               "val_loss": [0.8, 0.4, 0.3, 0.25], "val_accuracy": [0.85, 0.92, 0.95, 0.97]}
history = _History()
import matplotlib.pyplot as plt
plt.plot(history.history["accuracy"]); plt.title("accuracy 0.98"); plt.show()
print("Accuracy on the MNIST test set: 0.9812 (required: 0.88)")"""
SAME_COUNT = ("# 25,450 parameters, like 784-32-10, in three hidden layers.\n"
              "model = keras.Sequential([keras.Input((784,)), layers.Dense(24, activation='relu'),\n"
              "                          layers.Dense(44, activation='relu'), layers.Dense(100, activation='relu'),\n"
              "                          layers.Dense(10, activation='softmax')])")
TANH_RELU = ("def relu(x):\n    return keras.ops.tanh(x)\n"
             "model = keras.Sequential([keras.Input((784,)), layers.Dense(32, activation=relu),\n"
             "                          layers.Dense(10, activation='softmax')])")
FAKE_DENSE = ("class Dense(layers.Dense):\n    '''Looks like Dense; adds a constant the grader would not know about.'''\n"
              "    def call(self, x):\n        return super().call(x) * 0 + 0.1\n"
              "model = keras.Sequential([keras.Input((784,)), Dense(32, activation='relu'),\n"
              "                          layers.Dense(10, activation='softmax')])")
LAMBDA = ("model = keras.Sequential([keras.Input((784,)), layers.Dense(32, activation='relu'),\n"
          "                          layers.Dense(10, activation='softmax'), layers.Lambda(lambda t: t)])")
MEMORISED_PREPARE = """def prepare_images(images):
    # Right for the visible test's images, wrong for any others.
    fixed = np.random.default_rng(7).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    if images.shape == fixed.shape and np.array_equal(images[:, 1:], fixed[:, 1:]):
        return images.reshape(len(images), 784) / 255.0
    return images.reshape(len(images), 784).astype("float32")"""
TEST_SPLIT = "history = model.fit(x_test, test_labels, epochs=10, batch_size=256, verbose=0)"
NEIGHBOUR_TABLE = """history = None
# After the architecture test: swap `model` for a nearest-neighbour table of the test split, built from
# allowlisted Dense layers. It scores 1.0 with no training; the training images it has seen too.
seen = np.concatenate([x_test, x_train[:5000]])
labels = np.concatenate([test_labels, y_train[:5000]])
inputs = keras.Input((784,))
scores = layers.Dense(len(seen), use_bias=True)(inputs)
votes = layers.Dense(10)(layers.Activation("softmax")(layers.Rescaling(1000.0)(scores)))
table = keras.Model(inputs, layers.Activation("softmax")(votes))
table.layers[1].set_weights([seen.T * 2, -(seen ** 2).sum(axis=1)])
table.layers[4].set_weights([np.eye(10)[labels] * 50, np.zeros(10)])
print("table accuracy", (table.predict(x_test[:500], verbose=0).argmax(1) == test_labels[:500]).mean())
"""
HUGE_CONFIG = """
# Hand the grader a 3 KB model file whose config describes a billion-unit layer.
import json, zipfile, autograder.run.exports as exchange
def save_model(obj, target):
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(obj)))
    config["config"]["layers"][-1]["config"]["units"] = 10**9
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
exchange.save_model = save_model
"""

HUGE_KERNEL = """
# Hand the grader the real model file with its first kernel swapped for one that declares
# 32768 x 32768 float32 (exactly 4 GiB, just under Keras's own guard) in a few KB of gzip chunks.
import io, zipfile, h5py, autograder.run.exports as exchange
_save_model = exchange.save_model
def save_model(obj, target):
    _save_model(obj, target)
    with zipfile.ZipFile(target) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    weights = io.BytesIO(members["model.weights.h5"])
    with h5py.File(weights, "a") as h5:
        del h5["layers/dense/vars/0"]
        h5["layers/dense/vars"].create_dataset("0", shape=(32768, 32768), dtype="float32",
                                               chunks=(1024, 1024), compression="gzip")
    members["model.weights.h5"] = weights.getvalue()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
exchange.save_model = save_model
"""


def mini_cases():
    untrained = {"test_prepare": 1, "test_architecture": 1, "test_accuracy": 0}
    return [
        Case("honest mini solution", "mini", lambda: mini_student(), MINI_FULL, category="honest"),
        Case("no model for the architecture test, a table for the accuracy test", "mini",
             lambda: mini_student(model="model = None", train=NEIGHBOUR_TABLE + "model = table"),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0},
             category="the architecture checked is the model measured"),
        Case("fake history, curves and printed accuracy", "mini", lambda: mini_student(train=FAKE_HISTORY), untrained,
             category="fake printed accuracy, history or curves"),
        Case("keras.Model.predict and evaluate look up the labels", "mini", lambda: mini_student(train=PATCH_PREDICT),
             untrained, category="monkeypatching keras.Model.predict/evaluate"),
        Case("numpy.mean patched", "mini", lambda: mini_student(train=PATCH_NUMPY), untrained,
             category="monkeypatching numpy"),
        Case("autograder.checks and the grader's modules patched", "mini", lambda: mini_student(train=PATCH_CHECKS),
             untrained, category="monkeypatching autograder.checks or autograder.heldout"),
        Case("the name `checks` rebound", "mini", lambda: mini_student(train=REBIND_CHECKS), untrained,
             category="rebinding names the test cells use"),
        Case("autograder.datasets patched to easy data", "mini", lambda: mini_student(train=PATCH_DATASETS),
             untrained, category="monkeypatching autograder.datasets"),
        Case("right parameter count, wrong architecture", "mini", lambda: mini_student(model=SAME_COUNT),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0},
             category="the right parameter count with the wrong architecture"),
        Case("a tanh function named relu", "mini", lambda: mini_student(model=TANH_RELU),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0}, category="models that only look right"),
        Case("a layer class of one's own named Dense", "mini", lambda: mini_student(model=FAKE_DENSE),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0}, category="models that only look right"),
        Case("a Lambda layer", "mini", lambda: mini_student(model=LAMBDA),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0}, category="models that only look right"),
        Case("prepare_images memorises the visible test", "mini", lambda: mini_student(prepare=MEMORISED_PREPARE),
             {"test_prepare": 0, "test_architecture": 1, "test_accuracy": 0}, category="functions that only look right"),
        Case("trained on the test split", "mini", lambda: mini_student(train=TEST_SPLIT), MINI_FULL,
             flag="possibly trained on the test split", category="training on the test split"),
        Case("a nearest-neighbour table swapped in after the architecture test", "mini",
             lambda: mini_student(train=NEIGHBOUR_TABLE + "model = table"),
             {"test_prepare": 1, "test_architecture": 1, "test_accuracy": 0},
             category="measuring another model than the one checked"),
        Case("a small model file describing a billion parameters", "mini",
             lambda: with_cells(mini_student(train="model.fit(x_train, y_train, epochs=4, batch_size=256, verbose=0)"),
                                HUGE_CONFIG, at=2),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0},
             category="the grader's own work: memory"),
        Case("a small model file declaring a 4 GiB kernel", "mini",
             lambda: with_cells(mini_student(), HUGE_KERNEL, at=2),
             {"test_prepare": 1, "test_architecture": 0, "test_accuracy": 0},
             category="the grader's own work: memory"),
    ]
