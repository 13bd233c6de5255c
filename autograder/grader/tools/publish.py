"""Executed copies of the solutions, plots included, for readers who will not run them.

`autograder publish` runs each ``solutions/<id>/<id>.ipynb`` top to bottom
and writes ``docs/worksheets/<id>.html``: the worksheet as a reader on the web
should see it, with every output and figure. Hidden tests are taken out first
(nbgrader's own `ClearHiddenTests`), so the page shows the worked solution and
its visible checks only. A test keeps the pages in sync with the solutions.
"""

import re
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import ExecutePreprocessor
from nbgrader.preprocessors import ClearHiddenTests

from ..course import PROJECT_ROOT, SOLUTIONS, check_ids, course_of
from ..pages.offline import DropSolutionMarkers, RenderMath, WrapErrors

DOCS = PROJECT_ROOT / "docs" / "worksheets"
STYLE = re.compile(r"<style[^>]*>\n?(.*?)</style>\n?", re.S)


def executed(assignment_id, solutions=SOLUTIONS, timeout=1800):
    """The solution notebook without hidden tests, run top to bottom in its own folder."""
    folder = Path(solutions) / assignment_id
    nb = nbformat.read(folder / f"{assignment_id}.ipynb", as_version=4)
    nb, resources = ClearHiddenTests(config=course_of(solutions)).preprocess(nb, {})
    # C-level log lines (TensorFlow's) stay in the terminal, as when grading.
    ExecutePreprocessor(timeout=timeout, kernel_name="python3",
                        extra_arguments=["--IPKernelApp.capture_fd_output=False"]
                        ).preprocess(nb, {"metadata": {"path": str(folder)}})
    return nb


def to_html(nb):
    """The page: solution marker lines out, math drawn as MathML (no CDN needed), errors as messages."""
    exporter = HTMLExporter(template_name="lab")
    for step in (DropSolutionMarkers, WrapErrors, RenderMath):
        exporter.register_preprocessor(step)
    html, _ = exporter.from_notebook_node(nb)
    return html


def linked_style(html):
    """``(page, css)``: nbconvert's inline styles, the same 260 KB on every page, moved to one ``style.css``."""
    css = "".join(STYLE.findall(html))
    page = STYLE.sub("", html).replace("</head>", '<link rel="stylesheet" href="style.css">\n</head>', 1)
    return page, css


def publish(ids=(), solutions=SOLUTIONS, out=DOCS):
    """Write ``<out>/<id>.html`` for each worksheet and their ``style.css``; returns the pages."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for assignment_id in check_ids(ids, solutions):
        page, css = linked_style(to_html(executed(assignment_id, solutions)))
        (out / "style.css").write_text(css)
        pages.append(out / f"{assignment_id}.html")
        pages[-1].write_text(page)
    return pages


def published_code(html):
    """The code cells' sources as a page shows them, in order."""
    import html as html_lib

    inputs = re.findall(r'<div class="highlight hl-ipython3"><pre>(.*?)</pre>', html, re.S)
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", block)).rstrip() for block in inputs]
