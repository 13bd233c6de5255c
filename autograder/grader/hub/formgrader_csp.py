"""Formgrader's pages refuse every script but their own: a Content-Security-Policy per response.

Formgrader renders a student's graded notebook in the instructor's Jupyter
origin (the manual grading view), so a script that survived in it would act
as the instructor: read the ``_xsrf`` cookie, the gradebook through
``/api/contents``, set scores through Formgrader's API, start a kernel.
`autograder.grader.pages.inert` removes what is active from the notebook before
anyone sees it; this server extension is the second layer, for whatever a
sanitizer might miss. jupyter_server's own policy on these pages is
``frame-ancestors 'self'`` only (jupyter_server/base/handlers.py,
`JupyterHandler.content_security_policy`), and nbgrader's templates put
inline scripts, with values of the page in them, in ``<head>`` and in the
navigation bar, and two ``onclick`` attributes there: a fixed
``script-src 'self'`` would break Formgrader and still let any same-origin
file run (a student's ``.js`` served by ``/files/``).

So every response under ``<base_url>formgrader/`` gets one more
``Content-Security-Policy`` header (browsers enforce every policy they are
sent, so the server's own stays in force):

- nbgrader's pages (handlers that render its templates, and its API):
  ``script-src <origin><base_url>formgrader/static/ 'unsafe-hashes' 'sha256-…'``
  with one hash for each inline script and event attribute of the page's own
  part, the part before the notebook's cells (``id="notebook-container"``;
  the whole page on pages without one), and ``object-src 'none'; base-uri
  'none'; form-action 'self'; frame-src 'none'``. Nothing else runs: no
  script a student's cell holds, no other file of the origin, no MathJax from
  its CDN (`inert.SafeMarkdown` draws the math as MathML instead);
- the files Formgrader serves as they are (a submission's own files, its
  static folders): ``sandbox`` and ``default-src 'none'`` with images and
  styles, as jupyter_server's ``/files/`` handler sandboxes what it serves
  (jupyter/notebook#3341). A student's ``notes.html`` linked from their
  markdown opens without script, in an origin of its own.

The hook is a tornado output transform (`Application.transforms`), run on
each response's first chunk with its headers (nbgrader's handlers write a
page in one chunk): no handler or function of nbgrader's or jupyter_server's
is replaced or patched. Behind JupyterHub's proxy the two policies arrive as
one header, comma-separated, which is CSP's own syntax for two policies.

Upstream: no issue was found in nbgrader's tracker for scripts in a
submission running in Formgrader (searched for formgrader XSS, sanitize_html,
Content-Security-Policy). jupyter_server fixed the same class of bug in its
nbconvert handlers by adding ``sandbox`` to their policy (advisory "Stored
XSS in NbconvertFileHandler / NbconvertPostHandler via missing sandbox CSP",
https://advisories.gitlab.io/pkg/pypi/jupyter-server/; the setting
``nbconvert_csp_sandbox``), as it had for ``/files/`` (jupyter/notebook#3341);
nbconvert's ``sanitize_html`` is discussed as limited in jupyter/nbconvert#2016
and #1014.
"""

import base64
import hashlib
import re
from html.parser import HTMLParser

from tornado.web import OutputTransform, StaticFileHandler

HEADER = "Content-Security-Policy"
BOUNDARY = b'id="notebook-container"'
FILE_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self'"
PAGE_DIRECTIVES = "object-src 'none'; base-uri 'none'; form-action 'self'; frame-src 'none'"
JAVASCRIPT_TYPES = {"", "text/javascript", "application/javascript", "module", "text/ecmascript",
                    "application/ecmascript"}


class _OwnScripts(HTMLParser):
    """The inline scripts and event-handler attributes of a page, as the browser hashes them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts, self.handlers = [], []
        self._script = None

    def handle_starttag(self, tag, attrs):
        self.handlers += [value or "" for name, value in attrs if name.startswith("on")]
        if tag == "script":
            attributes = dict(attrs)
            kind = (attributes.get("type") or "").strip().lower()
            self._script = [] if "src" not in attributes and kind in JAVASCRIPT_TYPES else None

    def handle_data(self, data):
        if self._script is not None and self.lasttag == "script":
            self._script.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            if self._script is not None:
                self.scripts.append("".join(self._script))
            self._script = None


def _hash(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def page_policy(body, static_source):
    """The policy for one of nbgrader's pages: its own inline scripts and handlers by hash, files from
    ``static_source`` only."""
    own = body[:body.find(BOUNDARY)] if BOUNDARY in body else body
    parser = _OwnScripts()
    parser.feed(own.decode("utf-8", "replace"))
    parser.close()
    sources = [static_source]
    if parser.handlers:
        sources.append("'unsafe-hashes'")
    sources += sorted({_hash(text) for text in parser.scripts + parser.handlers})
    return f"script-src {' '.join(sources)}; {PAGE_DIRECTIVES}"


def formgrader_routes(base_url):
    """``(pattern, serves files as they are)`` for nbgrader's Formgrader routes, in its order."""
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.formgrader import apihandlers, handlers

    routes = []
    for route in [*handlers.default_handlers, *apihandlers.default_handlers]:
        pattern = url_path_join(base_url, route[0].lstrip("/"))
        routes.append((re.compile(pattern if pattern.endswith("$") else pattern + "$"),
                       issubclass(route[1], StaticFileHandler)))
    return routes


def transform_class(base_url):
    """The output transform for a server whose base URL is ``base_url``."""
    from jupyter_server.utils import url_path_join

    prefix = url_path_join(base_url, "formgrader")
    routes = formgrader_routes(base_url)

    class FormgraderPolicy(OutputTransform):
        def __init__(self, request):
            super().__init__(request)
            self.kind = None
            path = request.path
            if path == prefix or path.startswith(prefix + "/"):
                # nbgrader's static folder and its catch-all 404 are added outside its tables: files, sandboxed.
                self.kind = next(("file" if files else "page" for pattern, files in routes if pattern.match(path)),
                                 "file")
            self.static_source = f"{request.protocol}://{request.host}{url_path_join(prefix, 'static')}/"

        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            if self.kind == "file":
                headers.add(HEADER, FILE_POLICY)
            elif self.kind == "page":
                headers.add(HEADER, page_policy(chunk, self.static_source))
            return status_code, headers, chunk

    return FormgraderPolicy


def _jupyter_server_extension_points():
    return [{"module": "autograder.grader.hub.formgrader_csp"}]


def _load_jupyter_server_extension(serverapp):
    web_app = serverapp.web_app
    # First, so that it reads the page before any other transform (tornado's gzip) rewrites it.
    web_app.transforms.insert(0, transform_class(web_app.settings["base_url"]))
    serverapp.log.info("autograder: Formgrader's pages refuse scripts but their own (Content-Security-Policy)")
