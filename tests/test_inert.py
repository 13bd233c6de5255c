"""What a student wrote is inert wherever someone else views it (autograder/grader/pages/inert.py and
autograder/grader/hub/formgrader_csp.py), on a hand-built hostile notebook: every vector of the red team's
"Class trust" item 1 and more is gone, a plot, a pandas table and ordinary markdown still show, and an
unchanged instructor cell keeps its bytes and its checksum. (tests/test_hub.py opens such a submission
in Formgrader and feedback in a real browser.)"""

import base64
import io
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
    new_raw_cell,
)

from autograder.grader.hub import formgrader_csp
from autograder.grader.pages import inert

JS = "fetch('/api/contents/pwned.txt',{method:'PUT'})"
HOSTILE_MARKDOWN = f"""## My answer

A **readable** answer, with `code` and a [fine link](https://example.org/docs).

<img src=x onerror="{JS}">
[click me](javascript:{JS}) [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [vb](vbscript:msgbox)
<a href=" JaVa&#x09;ScRiPt:{JS}">encoded</a>
<iframe src="https://evil.example/"></iframe><iframe srcdoc="<script>{JS}</script>"></iframe>
<form action="https://evil.example/"><input name=q><button formaction="javascript:{JS}">go</button></form>
<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">
<meta http-equiv="refresh" content="0;url=javascript:{JS}"><base href="https://evil.example/">
<svg onload="{JS}"><script>{JS}</script><foreignObject><img src=x onerror="{JS}"></foreignObject>
<use href="https://evil.example/sprite.svg#a"/><a href="javascript:{JS}"><text>svg link</text></a></svg>
<math><mi href="javascript:{JS}">x</mi></math>
<details open ontoggle="{JS}"><summary>more</summary></details>
<style>body {{ display: none }}</style><p style="position:fixed;top:0;color:red">overlay</p>
<b id="statusmessage">clobber</b>
[files link](files/javascript:alert(1)) <a href="/files/javascript:alert(2)">raw files link</a>
![files image](files/javascript:alert(3)) [entity](files/javascript&#58;alert(4)) [space](files/ javascript:alert(5))
"""
INSTRUCTOR_MARKDOWN = """# Worksheet

## 1. The answer

Fill in `answer` below; the hidden test checks that $x^2 < 1$ and

$$\\frac{a}{b} = \\sum_{i=1}^{n} w_i$$

- a list item with a [link](https://keras.io/)
- a second item

1. first
2. second

```python
model = keras.Sequential([keras.layers.Dense(10)])
```

![a figure](figures/diagram.png)
"""
RELEASED_ANSWER = "YOUR ANSWER HERE<br>(two lines at most)"
TABLE = ('<div>\n<style scoped>\n    .dataframe tbody tr th:only-of-type {\n        vertical-align: middle;\n    }\n'
         '</style>\n<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n'
         '      <th></th>\n      <th>loss</th>\n      <th>accuracy</th>\n    </tr>\n  </thead>\n  <tbody>\n'
         '    <tr>\n      <th>0</th>\n      <td>0.31</td>\n      <td>0.91</td>\n    </tr>\n  </tbody>\n</table>\n</div>')
RICH_SUMMARY = ('<pre style="white-space:pre;overflow-x:auto;line-height:normal;font-family:Menlo,monospace">'
                '<span style="font-weight: bold">Model: "sequential"</span>\n</pre>')
SVG_FIGURE = ('<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="72pt" height="72pt" viewBox="0 0 72 72" '
              'xmlns="http://www.w3.org/2000/svg" version="1.1"><defs><path id="m1" d="M 0 0 L 1 1"/></defs>'
              '<g id="figure_1"><path d="M 0 72 L 72 72 L 72 0 z" style="fill: #ffffff"/>'
              '<use xlink:href="#m1" x="3" y="4" style="stroke: #1f77b4"/></g></svg>')
HOSTILE_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
               '<foreignObject><div onmouseover="alert(3)">x</div></foreignObject>'
               '<use href="https://evil.example/x.svg#a"/><a href="javascript:alert(4)"><rect width="5" height="5"/></a>'
               '<set attributeName="onload" to="alert(5)"/><animate attributeName="href" values="javascript:alert(6)"/>'
               '<image href="https://evil.example/beacon.png"/><rect width="9" height="9" fill="red"/></svg>')


def png():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (255, 0, 0)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def checksum(cell):
    from nbgrader.utils import compute_checksum

    return compute_checksum(cell)


def display(data, metadata=None):
    return new_output("display_data", data=data, metadata=metadata or {})


def hostile_notebook():
    instructor = new_markdown_cell(INSTRUCTOR_MARKDOWN)
    released = new_markdown_cell(RELEASED_ANSWER)
    released.metadata["nbgrader"] = {"schema_version": 3, "grade_id": "essay", "solution": True, "grade": True,
                                     "locked": False, "points": 2}
    released.metadata.nbgrader["checksum"] = checksum(released)  # as OverwriteCells leaves it, from the gradebook
    edited = new_markdown_cell(HOSTILE_MARKDOWN)
    edited.metadata["nbgrader"] = {"schema_version": 3, "grade_id": "essay2", "solution": True, "grade": True,
                                   "locked": False, "points": 2, "checksum": checksum(released)}
    attached = new_markdown_cell("![plot](attachment:plot.png) ![page](attachment:page.html)")
    attached["attachments"] = {"plot.png": {"image/png": png()},
                               "page.html": {"text/html": base64.b64encode(b"<script>alert(1)</script>").decode()}}
    code = new_code_cell("display(...)")
    code.outputs = [
        display({"text/html": f"<script>{JS}</script><b onclick=\"{JS}\">bold</b>", "text/plain": "<HTML>"}),
        display({"application/javascript": JS, "text/plain": "<IPython.core.display.Javascript object>"}),
        display({"application/javascript": JS}),
        display({"text/html": TABLE, "text/plain": "   loss  accuracy\n0  0.31  0.91"}),
        display({"text/html": RICH_SUMMARY, "text/plain": 'Model: "sequential"'}),
        display({"image/png": png(), "image/svg+xml": HOSTILE_SVG, "text/plain": "<Figure>"},
                {"image/png": {"width": 400, "height": "1 onerror=alert(1)", "needs_background": "light"}}),
        display({"image/svg+xml": SVG_FIGURE, "text/plain": "<Figure size 72x72>"}),
        display({"image/svg+xml": HOSTILE_SVG, "text/plain": "<Figure>"}),
        display({"image/png": 'x"><script>alert(1)</script>', "text/plain": "broken"}),
        display({"text/html": "<p>isolated</p>"}, {"text/html": {"isolated": True}}),
        display({"text/markdown": f"[md link](javascript:{JS}) and *emphasis*"}),
        display({"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "IntSlider"}),
        display({"text/latex": "$\\alpha$", "text/plain": "alpha"}),
        new_output("stream", name="stdout", text="<script>stdout stays text</script>\n"),
        new_output("error", ename="ValueError", evalue="<img src=x onerror=alert(1)>", traceback=["tb"]),
        # nbconvert writes width={{ width }} unquoted (red team, round 4: <img onerror=... width='1"'>)
        display({"image/png": png(), "text/plain": "<Figure>"},
                {"image/png": {"width": '1" onerror=alert(1) x="', "height": "2' onerror=alert(2) y='"}}),
    ]
    raw = new_raw_cell(f"<script>{JS}</script><p>raw paragraph</p>")
    latex_raw = new_raw_cell("\\section{<not html>}")
    latex_raw.metadata["raw_mimetype"] = "text/latex"
    nb = new_notebook(cells=[instructor, released, edited, attached, code, raw, latex_raw],
                      metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.reads(nbformat.writes(nb), as_version=4)


class ActiveParts(HTMLParser):
    """What in an HTML page could run or navigate somewhere active, as a browser parses it."""

    # (Formgrader's own score inputs and buttons sit among the cells: a button acts only in a form.)
    TAGS = {"script", "iframe", "frame", "object", "embed", "form", "meta", "base", "link", "foreignobject", "set",
            "animate", "applet", "template", "style"}

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in self.TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = "".join((value or "").split()).lower()
            if name.startswith("on"):
                self.found.append(f"{tag} {name}")
            if name in ("href", "src", "xlink:href", "action", "formaction", "data", "srcdoc", "content") and (
                    value.startswith(("javascript:", "vbscript:", "data:text", "http://evil", "https://evil"))
                    or "url=javascript" in value):
                self.found.append(f"{tag} {name}={value[:40]}")


def active_parts(html):
    parser = ActiveParts()
    parser.feed(html)
    parser.close()
    return parser.found


def made_inert(nb=None):
    nb = nb or hostile_notebook()
    nb, _ = inert.MakeInert().preprocess(nb, {})
    return nb


# --- the step -------------------------------------------------------------------------------------------

def test_every_vector_leaves_the_notebook():
    nb = made_inert()
    instructor, released, edited, attached, code, raw, latex_raw = nb.cells
    # The edited answer cell is now its sanitized rendering, with nothing active, and still readable.
    assert edited.source.startswith('<div class="autograder-inert">') and "\n" not in edited.source
    html, _ = inert.render_markdown(edited.source)
    assert active_parts(html) == []
    for text in ("<h2>My answer", "<strong>readable</strong>", "<code>code</code>",
                 'href="https://example.org/docs"', "click me", "<summary>more</summary>", "overlay"):
        assert text in html, text
    assert 'id="statusmessage"' not in html and "position" not in html
    # Markdown attachments: images only.
    assert set(attached.attachments) == {"plot.png", "page.html"}
    assert list(attached.attachments["page.html"]) == ["image/gif"]  # a blank image where the page was
    assert attached.attachments["plot.png"] == {"image/png": png()}
    html, _ = inert.render_markdown(attached.source, attached.attachments)
    assert active_parts(html) == [] and f'src="data:image/png;base64,{png()}"' in html
    # Outputs: allowlisted, sanitized, valid.
    outputs = code.outputs
    assert outputs[0].data["text/html"] == "<b>bold</b>"
    assert outputs[1].data == {"text/plain": "<IPython.core.display.Javascript object>"}
    assert outputs[2].data == {"text/plain": "[output not shown: application/javascript]"}
    assert outputs[5].data.keys() == {"image/png", "text/plain"}  # the SVG goes where a PNG shows the figure
    assert outputs[5].metadata == {"image/png": {"width": 400}}
    assert outputs[7].data["image/svg+xml"] == (
        '<svg xmlns="http://www.w3.org/2000/svg"><use></use><rect width="5" height="5"></rect><image></image>'
        '<rect width="9" height="9" fill="red"></rect></svg>')
    assert outputs[8].data == {"text/plain": "broken"}
    assert outputs[9].metadata == {}  # no isolated iframe
    assert outputs[10].data["text/markdown"].startswith('<div class="autograder-inert">')
    assert "javascript" not in outputs[10].data["text/markdown"] and "<em>emphasis</em>" in outputs[10].data[
        "text/markdown"]
    assert outputs[11].data == {"text/plain": "IntSlider"}
    assert outputs[12].data == {"text/latex": "$\\alpha$", "text/plain": "alpha"}
    assert outputs[13].text == "<script>stdout stays text</script>\n"  # text outputs are escaped by every renderer
    for output in outputs:
        for mimetype in ("text/html", "image/svg+xml"):
            assert active_parts(output.get("data", {}).get(mimetype, "")) == [], (mimetype, output)
    assert raw.source == "<p>raw paragraph</p>"
    assert latex_raw.source == "\\section{<not html>}"  # not rendered as HTML: left alone
    assert "widgets" not in nb.metadata


def test_plots_tables_and_text_still_show():
    nb = made_inert()
    outputs = nb.cells[4].outputs
    assert outputs[5].data["image/png"] == png()
    table = outputs[3].data["text/html"]
    for text in ('<table border="1" class="dataframe">', "<thead>", '<tr style="text-align:right">', "<th>loss</th>",
                 "<td>0.91</td>"):
        assert text in table, (text, table)
    assert "<style" not in table
    assert outputs[4].data["text/html"].startswith('<pre style="white-space:pre;overflow-x:auto;line-height:normal;')
    assert '<span style="font-weight:bold">' in outputs[4].data["text/html"]
    figure = outputs[6].data["image/svg+xml"]
    ElementTree.fromstring(figure)  # still an SVG document that an <img> can draw
    assert 'xmlns:xlink="http://www.w3.org/1999/xlink"' in figure and 'xlink:href="#m1"' in figure
    assert 'style="fill:#ffffff"' in figure


def test_an_unchanged_instructor_cell_keeps_its_bytes_and_its_checksum():
    before = hostile_notebook()
    nb = made_inert()
    assert nb.cells[0].source == INSTRUCTOR_MARKDOWN  # plain markdown: math, code, lists, links, an image
    assert nb.cells[1].source == RELEASED_ANSWER  # raw HTML, but the instructor's released text
    assert nb.cells[1].metadata == before.cells[1].metadata
    assert nb.cells[1].metadata.nbgrader.checksum == checksum(nb.cells[1])  # nbgrader still sees it unanswered
    # A student's answer that merely claims the checksum is judged by what it holds.
    assert nb.cells[2].source != HOSTILE_MARKDOWN
    # Running the step again changes nothing more.
    again = made_inert(nbformat.reads(nbformat.writes(nb), as_version=4))
    assert [c.source for c in again.cells] == [c.source for c in nb.cells]


@pytest.mark.parametrize("url, image, allowed", [
    ("https://example.org/x", False, True), ("mailto:a@b.c", False, True), ("figures/a.png", True, True),
    ("#section", False, True), ("//cdn.example/x", False, True), ("a/b:c", False, True),
    ("javascript:alert(1)", False, False), (" JaVa\tScRiPt:alert(1)", False, False), ("\x01javascript:x", False, False),
    ("vbscript:x", False, False), ("data:text/html,<script>", False, False), ("data:image/png;base64,AA", False, False),
    ("data:image/png;base64,AA", True, True), ("data:image/svg+xml;base64,AA", True, False),
    ("file:///etc/passwd", False, False),
    # nbgrader's templates strip a "files/" prefix after rendering (red team: these came out javascript:)
    ("files/javascript:alert(1)", False, False), ("/files/javascript:x", False, False),
    ("files/ javascript:x", False, False), ("files/figures/a.png", True, True), ("files/files/javascript:x", False, True),
])
def test_urls(url, image, allowed):
    assert inert.url_allowed(url, image) is allowed


# --- the pages: feedback and Formgrader's manual grading view --------------------------------------------------

def exporter(template):
    from nbconvert import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    from autograder.grader.hub.lab import INERT_EXPORTER

    config = Config()
    config.HTMLExporter.template_name = template
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    config.HTMLExporter.update(INERT_EXPORTER)
    if template == "feedback":  # as nbgrader's GenerateFeedback sets it
        config.HTMLExporter.extra_template_paths = [str(Path(handlers.static_path, "node_modules", "bootstrap", "dist",
                                                             "css"))]
    return HTMLExporter(config=config)


FORMGRADE = {"assignment_id": "tiny", "notebook_id": "tiny", "submission_id": "abc123", "index": 0, "total": 1,
             "base_url": "/user/instructor", "student": "cy", "last_name": "Carter", "first_name": "Cy",
             "notebook_path": "autograded/cy/tiny/tiny.ipynb"}


@pytest.mark.parametrize("step", [True, False], ids=["after the step", "a notebook graded before the step"])
def test_formgrader_renders_nothing_active(step):
    """Formgrader's exporter runs MakeInert itself (`lab.INERT_EXPORTER`): a notebook graded before the step
    existed renders inert too (red team, round 4: an image's width broke out of nbconvert's attribute)."""
    nb = made_inert() if step else hostile_notebook()
    html, _ = exporter("formgrade").from_notebook_node(nb, resources=dict(FORMGRADE))
    cells = html[html.index('id="notebook-container"'):]
    assert active_parts(cells) == []
    for text in ("<strong>readable</strong>", '<table border="1" class="dataframe">', "<th>loss</th>",
                 'src="data:image/png;base64,', "<math", "<li>a second item</li>", 'href="https://keras.io/"',
                 'src="figures/diagram.png"', "<h2"):
        assert text in cells, text


def test_feedback_renders_nothing_active(tmp_path):
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    from autograder.grader.pages.offline import RenderMath, WrapErrors

    nb = hostile_notebook()
    resources = {"nbgrader": {"notebook": "tiny", "score": 1, "max_score": 4, "late_penalty": 0},
                 "config_dir": str(tmp_path)}
    for cell in nb.cells:  # what nbgrader's GetGrades adds
        if "nbgrader" in cell.metadata:
            cell.metadata.nbgrader.update(score=0, comment="**Well** argued <img src=x onerror=alert(1)>")
    for step in (CSSHTMLHeaderPreprocessor(), WrapErrors(), RenderMath(), inert.MakeInert()):
        nb, resources = step.preprocess(nb, resources)
    html, _ = exporter("feedback").from_notebook_node(nb, resources=resources)
    assert active_parts(html[html.index("<body"):]) == []
    for text in ("<strong>readable</strong>", "<th>loss</th>", "<math", "<mfrac>", 'src="data:image/png;base64,',
                 "ValueError: &lt;img src=x onerror=alert(1)&gt;"):
        assert text in html, text


# --- the second layer: Formgrader's Content-Security-Policy -------------------------------------------------

def test_formgrader_pages_allow_their_own_scripts_only():
    page, _ = exporter("formgrade").from_notebook_node(made_inert(), resources=dict(FORMGRADE))
    # A script that got into the cells anyway is not among the page's own.
    body = page.replace('id="notebook-container">', 'id="notebook-container"><script>alert(1)</script>'
                                                   '<b onclick="alert(2)">x</b>', 1).encode()
    policy = formgrader_csp.page_policy(body, "http://127.0.0.1:8000/user/instructor/formgrader/static/")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    sources = directives["script-src"].split()
    assert sources[:2] == ["http://127.0.0.1:8000/user/instructor/formgrader/static/", "'unsafe-hashes'"]
    own = ["toggle_name(true);", "toggle_name(false);", 'var submission_id = "abc123";']
    hashed = {formgrader_csp._hash(text) for text in ("toggle_name(true);", "toggle_name(false);")}
    assert hashed <= set(sources)
    assert formgrader_csp._hash("alert(1)") not in sources and formgrader_csp._hash("alert(2)") not in sources
    assert "'unsafe-inline'" not in sources and "'self'" not in sources and "https:" not in sources
    assert len(sources) == 2 + 2 + 3  # the static folder, unsafe-hashes, two handlers, three inline scripts
    assert any(own[2] in script for script in page.split("<script")), "the page's values are in its own scripts"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"


@pytest.mark.parametrize("path, kind", [
    ("/user/i/formgrader", "page"), ("/user/i/formgrader/manage_assignments", "page"),
    ("/user/i/formgrader/submissions/abc123/", "page"), ("/user/i/formgrader/submissions/abc123/next", "page"),
    ("/user/i/formgrader/api/grade/xyz", "page"), ("/user/i/formgrader/submissions/abc123/notes.html", "file"),
    ("/user/i/formgrader/submissions/abc123/sub/x.svg", "file"), ("/user/i/formgrader/static/js/formgrade.js", "file"),
    ("/user/i/formgrader/nothing/here", "file"), ("/user/i/lab", None), ("/user/i/files/feedback/x.html", None),
    ("/user/i/formgraderx", None),
])
def test_which_policy_each_formgrader_route_gets(path, kind):
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    transform = formgrader_csp.transform_class("/user/i/")(HTTPServerRequest(
        start_line=RequestStartLine("GET", path, "HTTP/1.1"), headers=HTTPHeaders({"Host": "127.0.0.1:8000"})))
    assert transform.kind == kind
    headers = HTTPHeaders({"Content-Security-Policy": "frame-ancestors 'self'"})
    transform.transform_first_chunk(200, headers, b"<html><head><script>var a = 1;</script></head></html>", True)
    policies = headers.get_list("Content-Security-Policy")
    assert policies[0] == "frame-ancestors 'self'"  # the server's own stays in force
    if kind == "file":
        assert policies[1].startswith("sandbox; default-src 'none'")
    elif kind == "page":
        assert policies[1].startswith("script-src http://127.0.0.1:8000/user/i/formgrader/static/ ")
        assert formgrader_csp._hash("var a = 1;") in policies[1]
    else:
        assert len(policies) == 1
