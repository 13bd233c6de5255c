"""What a student's kernel may send the grader, checked before nbclient reads a field of it.

The kernel chooses every byte of its messages: a cell can call
``session.send(iopub, "stream", {"name": "stdout", "text": 12345})``.
jupyter_client decodes what arrives and nbclient uses each field as the
messaging protocol describes it, so a number where text belongs, a traceback
that is not a list or an ``execution_count`` that is a string ended the
grading process with a TypeError, which counted as the host's fault, for that
student and for the whole class after her (red team). Two bounds stand
between the kernel and the grader:

- size, before anything is decoded: every socket of the grader's side of
  the kernel connection refuses a frame over ``max_bytes`` (ZeroMQ's
  ``ZMQ_MAXMSGSIZE``, set on the context the sockets come from, so the
  oversized frame never reaches the grader's memory or its JSON decoder);
- shape, as each message is decoded: `GuardedSession` is jupyter_client's
  Session, whose ``deserialize`` is the one place where every channel's
  messages are decoded. A message that does not have the shape the
  messaging protocol gives its type becomes an error output of the cell it
  answers (the student's cell fails, with the reason), and one that names
  no cell, or that the grader has no use for (widgets' comm messages, input
  requests), is dropped.
"""

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.session import Session
from traitlets import Integer, default

from .safe_files import json_depth_ok

DROPPED = "autograder_dropped"  # a msg_type nbclient matches to no cell and ignores
MALFORMED = "MalformedKernelMessage"
MAX_JSON_DEPTH = 64  # application/json outputs: deeper ones would overflow the notebook's writer
MAX_NAME = 255
# A frame: what ipykernel may send of a loop's prints in one flush (200 prints of 1 MB made one of over
# 32 MB), far under what the grading process may hold (`GradingRun.grader_memory_limit`).
MAX_MESSAGE_BYTES = 256 * 2**20
STREAM_NAMES = ("stdout", "stderr")
REPLY_STATUSES = ("ok", "error", "aborted")
# The iopub messages nbclient turns into outputs, and the fields each must have (name -> check).
OUTPUT_TYPES = ("stream", "display_data", "update_display_data", "execute_result", "error")


def bounded_context(max_bytes):
    """A ZeroMQ context whose sockets refuse any frame over ``max_bytes`` before it is read."""
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, int(max_bytes))
    return context


# --- the shape of each message ------------------------------------------------------------

def _is_text(value):
    return isinstance(value, str)


def _is_count(value):
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _json_depth_ok(value, limit=MAX_JSON_DEPTH):
    return json_depth_ok(value, limit)


def _bundle_problem(data, metadata):
    """Why an output's mime bundle is not one, or ''."""
    if not isinstance(data, dict):
        return "its data is not a mapping of types to values"
    for key, value in data.items():
        if not isinstance(key, str) or not key or len(key) > MAX_NAME:
            return "its data has a type that is not a name"
        is_json = key == "application/json" or key.endswith("+json")
        if not (_is_text(value) or (is_json and isinstance(value, (dict, list)))):
            return f"its {key[:40]} value is not text"
        if is_json and not _json_depth_ok(value):
            return f"its {key[:40]} value is nested too deeply"
    if not isinstance(metadata, dict) or not _json_depth_ok(metadata):
        return "its metadata is not a plain mapping"
    return ""


def content_problem(msg_type, content):
    """Why ``content`` is not what the protocol gives a ``msg_type`` message, or ''."""
    if not isinstance(content, dict):
        return "its content is not a mapping"
    if "execution_count" in content and not _is_count(content["execution_count"]):
        return "its execution_count is not a number"  # nbclient copies it into the cell
    transient = content.get("transient")
    if transient is not None and (not isinstance(transient, dict) or
                                  not _is_text(transient.get("display_id", ""))):
        return "its display id is not text"
    if msg_type == "stream":
        if content.get("name") not in STREAM_NAMES:
            return "its stream is neither stdout nor stderr"
        if not _is_text(content.get("text")):
            return "its text is not text"
    elif msg_type in ("display_data", "update_display_data", "execute_result"):
        return _bundle_problem(content.get("data"), content.get("metadata", {}))
    elif msg_type == "error":
        if not (_is_text(content.get("ename")) and _is_text(content.get("evalue"))):
            return "its error name or value is not text"
        traceback = content.get("traceback", [])
        if not isinstance(traceback, list) or not all(_is_text(line) for line in traceback):
            return "its traceback is not a list of lines"
    elif msg_type == "status":
        if not _is_text(content.get("execution_state")):
            return "its state is not text"
    elif msg_type == "clear_output":
        if not isinstance(content.get("wait", False), bool):
            return "its wait flag is not true or false"
    elif msg_type == "execute_input":
        if not _is_text(content.get("code", "")):
            return "its code is not text"
    elif msg_type == "execute_reply":
        if content.get("status") not in REPLY_STATUSES:
            return "its status is not ok, error or aborted"
        if content["status"] == "error":
            return content_problem("error", {k: content.get(k) for k in ("ename", "evalue", "traceback")})
        payload = content.get("payload", [])
        if not isinstance(payload, list) or not all(isinstance(p, dict) for p in payload):
            return "its payload is not a list of mappings"
    return ""


def envelope_problem(msg):
    """Why ``msg`` has no usable header, parent or content, or ''."""
    header, parent = msg.get("header"), msg.get("parent_header")
    if not isinstance(header, dict) or not _is_text(header.get("msg_type")) or not _is_text(header.get("msg_id")):
        return "its header is not a message header"
    if not isinstance(parent, dict) or not _is_text(parent.get("msg_id", "")):
        return "its parent is not a message header"
    if not isinstance(msg.get("metadata"), dict):
        return "its metadata is not a mapping"
    return ""


# Messages nbclient reads, by type; anything else the grader drops unread.
KNOWN = {*OUTPUT_TYPES, "status", "clear_output", "execute_input", "execute_reply", "kernel_info_reply",
         "shutdown_reply", "interrupt_reply", "is_complete_reply", "complete_reply", "inspect_reply",
         "history_reply", "comm_info_reply"}


def dropped(why):
    """A message nbclient matches to no cell, standing for one the grader would not read."""
    return {"header": {"msg_id": "", "msg_type": DROPPED}, "msg_id": "", "msg_type": DROPPED,
            "parent_header": {}, "metadata": {}, "content": {"reason": why}, "buffers": []}


def failed_cell(msg, why):
    """The cell ``msg`` answers gets an error with ``why``: a reply says so, an output becomes that error."""
    msg_type = msg["msg_type"]
    evalue = f"the notebook's kernel sent the grader a malformed {msg_type[:40]} message ({why}); it was not kept"
    error = {"ename": MALFORMED, "evalue": evalue, "traceback": [f"{MALFORMED}: {evalue}"]}
    if msg_type.endswith("_reply"):
        content = {"status": "error", "execution_count": None, **error}
    else:
        msg_type, content = "error", error
    header = {**msg["header"], "msg_type": msg_type}
    return {**msg, "header": header, "msg_type": msg_type, "content": content, "metadata": {}, "buffers": []}


def checked(msg):
    """``msg`` as decoded, if it has its protocol shape; else what stands for it (see the module's doc)."""
    why = envelope_problem(msg)
    if why:
        return dropped(why)
    msg_type = msg["header"]["msg_type"]
    if msg_type not in KNOWN:
        return dropped(f"the grader does not read {msg_type[:40]} messages")
    why = content_problem(msg_type, msg.get("content"))
    if not why:
        return msg
    return failed_cell(msg, why) if msg["parent_header"].get("msg_id") else dropped(why)


class GuardedSession(Session):
    """jupyter_client's Session that hands on only messages of the protocol's shape (see `checked`)."""

    def feed_identities(self, msg_list, copy=True):
        try:
            return super().feed_identities(msg_list, copy=copy)
        except (ValueError, TypeError):  # no delimiter: nothing jupyter_client could read
            return [], None

    def deserialize(self, msg_list, content=True, copy=True):
        if msg_list is None:
            return dropped("it had no message delimiter")
        try:
            msg = super().deserialize(msg_list, content=content, copy=copy)
        except Exception as e:  # bad JSON, nesting past the decoder's depth, a bad signature, a bad version
            return dropped(f"it could not be decoded ({type(e).__name__})")
        return checked(msg) if content else msg


class GuardedKernelClient(AsyncKernelClient):
    """nbclient's kernel client, with sockets that refuse oversized frames (`bounded_context`).

    ZeroMQ refuses an oversized frame by closing the link it came on, and the
    iopub link did not come back (measured: every later output of the
    notebook was lost, a failing test cell among them, which then showed no
    error). So the links to the kernel are watched: `broken_links` names
    those that broke while the kernel was still there, and the grader stops
    the run as the student's fault (`SandboxedExecute`).
    """

    max_message_bytes = Integer(MAX_MESSAGE_BYTES, help="Largest frame a kernel may send the grader.").tag(config=True)

    @default("context")
    def _context_default(self):
        self._created_context = True
        return bounded_context(self.max_message_bytes)

    def start_channels(self, *args, **kwargs):
        super().start_channels(*args, **kwargs)
        # A plain context over the same ZeroMQ context: the events are read without an event loop.
        self._events_context = zmq.Context.shadow(self.context.underlying)
        self._watched = {}
        for name in ("iopub", "shell"):
            address = f"inproc://autograder-links-{id(self)}-{name}"
            getattr(self, f"{name}_channel").socket.monitor(address, zmq.EVENT_DISCONNECTED)
            events = self._events_context.socket(zmq.PAIR)
            events.connect(address)
            self._watched[name] = events

    def broken_links(self):
        """The channels whose link to the kernel broke since the channels started."""
        broken = []
        for name, events in getattr(self, "_watched", {}).items():
            while events.poll(0):
                events.recv_multipart()
                if name not in broken:
                    broken.append(name)
        return broken

    def stop_channels(self):
        for name, events in getattr(self, "_watched", {}).items():
            try:
                getattr(self, f"{name}_channel").socket.disable_monitor()
            except (zmq.ZMQError, AttributeError):
                pass
            events.close(linger=0)
        self._watched = {}
        super().stop_channels()
