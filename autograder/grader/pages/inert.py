"""Student content made inert: nothing a student wrote runs in anyone else's browser.

A submission's markdown and outputs are shown to others: Formgrader's
manual grading view renders the autograded notebook in the instructor's
Jupyter origin, the feedback page is opened by the student, a TA or the
instructor, and a notebook opened in JupyterLab renders its outputs. nbgrader
0.9.6 renders them as they are (its `formgrade` and `feedback` templates pass
markdown through `markdown2html` without sanitizing, even with
``HTMLExporter.sanitize_html``), so a student's ``<img onerror>``, a
``text/html`` output with ``<script>`` or an ``application/javascript``
output ran as the instructor: it could read the gradebook through
``/api/contents``, start a kernel, and set scores through Formgrader's API.

`MakeInert` is one step of nbgrader's Autograde, after execution, and of
GenerateFeedback, so that the notebook stored in ``autograded/`` (which
Formgrader and feedback read) and the feedback page are inert, sanitized by
nh3 (ammonia, the maintained successor of bleach), never by regular
expressions:

- outputs keep only ``text/plain``, ``text/html`` (sanitized), ``text/markdown``
  (as markdown cells), ``text/latex``, ``image/png`` and ``image/jpeg`` (valid
  base64, else dropped) and ``image/svg+xml`` (dropped where a PNG or JPEG
  shows the same figure, else sanitized); ``application/javascript``, widgets
  and every other mimetype go, and output metadata keeps numeric image sizes
  only (no ``isolated`` iframe);
- a markdown cell whose markdown holds no raw HTML and only safe links is
  left byte for byte, as is a cell that still carries the gradebook's
  checksum (the instructor's released text: an unchanged answer cell keeps
  its checksum, so nbgrader still scores it as unanswered); any other markdown
  cell becomes its sanitized rendering, one HTML block that renders the same;
  attachments keep PNG, JPEG and GIF images;
- raw cells that nbconvert renders as HTML are sanitized.

The pages are made with ``HTMLExporter.sanitize_html`` and two filters of the
kit's (``HTMLExporter.filters``, in nbgrader_config.py and the instructors'
server configuration, `lab.INERT_EXPORTER`): `sanitize_html` replaces
nbconvert's ``clean_html``, whose bleach allowlist prints a pandas table's
``<thead>``, ``<p>`` and ``<h2>`` as text (jupyter/nbconvert#2016), and
`SafeMarkdown` replaces ``markdown2html`` so that nbgrader's formgrade and
feedback templates, which render markdown cells without ``clean_html``
whatever ``sanitize_html`` says, sanitize them too; it draws their math as
MathML (Formgrader's pages refuse the MathJax CDN, see
`autograder.grader.hub.formgrader_csp`). These also hold for notebooks graded
before this step existed.
"""

import base64
import binascii
from html import escape

import nh3
from jinja2 import pass_context
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool
from traitlets.config import LoggingConfigurable

# --- the policy ---------------------------------------------------------------------------------------

SCHEMES = {"http", "https", "mailto"}
IMAGE_DATA = ("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,",
              "data:image/webp;base64,")
URL_ATTRIBUTES = {"href", "src", "cite", "xlink:href", "action", "formaction", "background", "poster", "data"}
MATHML_TAGS = {"math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot", "msub", "msup",
               "msubsup", "munder", "mover", "munderover", "mmultiscripts", "mprescripts", "none", "mtable", "mtr",
               "mtd", "mstyle", "mpadded", "mphantom", "menclose", "merror", "semantics", "annotation"}
MATHML_ATTRIBUTES = {"display", "displaystyle", "mathvariant", "scriptlevel", "stretchy", "fence", "separator",
                     "lspace", "rspace", "accent", "accentunder", "movablelimits", "largeop", "symmetric", "minsize",
                     "maxsize", "linethickness", "columnalign", "rowalign", "columnspacing", "rowspacing",
                     "columnlines", "rowlines", "frame", "framespacing", "notation", "depth", "voffset", "encoding",
                     "xmlns"}
HTML_TAGS = (set(nh3.ALLOWED_TAGS) | {"tfoot", "caption"} | MATHML_TAGS) - {"area", "map"}
HTML_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    # No id or name: a student's element must not stand in for one of Formgrader's (DOM clobbering).
    "*": {"class", "style", "title", "lang", "dir", "align", "valign", "width", "height"} | MATHML_ATTRIBUTES,
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height", "align"},
    "table": set(nh3.ALLOWED_ATTRIBUTES.get("table", ())) | {"border", "cellpadding", "cellspacing"},
    "ol": {"start", "type"},
    "li": {"value"},
}
# CSS properties that style text and tables (pandas, Keras' rich summaries, SVG fills), none that
# places an element over the page or loads anything.
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight", "font-variant",
    "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align", "white-space", "word-wrap",
    "word-break", "overflow-wrap", "overflow", "overflow-x", "overflow-y", "line-height", "letter-spacing",
    "width", "height", "max-width", "min-width", "max-height", "min-height", "border", "border-top",
    "border-bottom", "border-left", "border-right", "border-color", "border-style", "border-width",
    "border-collapse", "border-spacing", "border-radius", "padding", "padding-top", "padding-bottom",
    "padding-left", "padding-right", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "display", "table-layout", "caption-side", "empty-cells", "list-style-type", "opacity",
    "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
    "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset", "clip-rule",
    "text-anchor", "dominant-baseline", "alignment-baseline", "font-stretch",
}
# What an SVG figure needs (matplotlib's, seaborn's): shapes, paths, gradients, clip paths and
# references within the figure; no script, foreignObject, animation, event attribute or external link.
SVG_TAGS = {"svg", "g", "defs", "symbol", "use", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
            "text", "tspan", "textPath", "title", "desc", "clipPath", "mask", "pattern", "marker",
            "linearGradient", "radialGradient", "stop", "image", "filter", "feGaussianBlur", "feOffset", "feBlend",
            "feFlood", "feComposite", "feMerge", "feMergeNode", "feColorMatrix"}
SVG_ATTRIBUTES = {
    "*": {"id", "class", "style", "transform", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
          "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
          "stroke-dashoffset", "opacity", "clip-path", "clip-rule", "mask", "filter", "font-family", "font-size",
          "font-weight", "font-style", "text-anchor", "dominant-baseline", "alignment-baseline", "display",
          "visibility", "color", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "dx", "dy",
          "width", "height", "d", "points", "viewBox", "preserveAspectRatio", "version", "xmlns",
          "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "spreadMethod", "fx", "fy",
          "clipPathUnits", "maskUnits", "maskContentUnits", "patternUnits", "patternContentUnits",
          "patternTransform", "markerWidth", "markerHeight", "markerUnits", "refX", "refY", "orient",
          "stdDeviation", "in", "in2", "result", "mode", "operator", "values", "type", "flood-color",
          "flood-opacity", "filterUnits", "primitiveUnits", "textLength", "lengthAdjust", "startOffset",
          "baseline-shift", "letter-spacing", "word-spacing", "writing-mode"},
    "svg": {"xlink"},  # xmlns:xlink, by its local name: the figure's links need the namespace to parse
    "use": {"href"},  # nh3 names xlink:href by its local name too
    "image": {"href"},
    "textPath": {"href"},
}
# Content that goes with its tag (nh3 keeps the text of a tag it drops; these hold no readable text).
DROPPED_WITH_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "noembed",
                        "noframes", "xmp", "plaintext", "textarea", "select", "title", "metadata",
                        "foreignObject"}
OUTPUT_MIMETYPES = {"text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg",
                    "image/svg+xml"}
IMAGE_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
ATTACHMENT_MIMETYPES = {"image/png", "image/jpeg", "image/gif"}
BLANK_GIF = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"  # 1x1, transparent
# The raw cells nbconvert's HTML exporter writes into the page as they are.
HTML_RAW_MIMETYPES = {"", "text/html", "text/markdown", "text/x-markdown", "image/svg+xml"}


def _as_a_browser_reads(url):
    """What a browser does first to a URL: C0 controls and spaces off the ends, tabs and newlines out."""
    return "".join(ch for ch in str(url) if ch not in "\t\n\r").strip("".join(map(chr, range(0x21))))


def url_allowed(url, image=False, fragment_only=False):
    """Whether a URL may stay: relative, a fragment, http(s) or mailto; for images also inline PNG/JPEG/GIF/WebP."""
    url = _as_a_browser_reads(url)
    # nbgrader's formgrade and feedback templates strip one "files/" or "/files/" off every link after the
    # markdown is rendered (nbconvert's strip_files_prefix): judge the link as it stands then (red team:
    # "files/javascript:..." passed as relative and came out "javascript:...").
    for prefix in ("/files/", "files/"):
        if url.startswith(prefix):
            url = _as_a_browser_reads(url[len(prefix):])
            break
    if fragment_only:
        return url.startswith("#")
    lowered = url.lower()
    if image and lowered.startswith(IMAGE_DATA):
        return True
    if image and lowered.startswith("attachment:"):  # nbconvert inlines the cell's own (filtered) attachment
        return True
    scheme, colon, _ = lowered.partition(":")
    if not colon or any(ch in scheme for ch in "/?#"):
        return True  # relative: no scheme before the first of / ? #
    return scheme in SCHEMES


def _html_attribute(element, attribute, value):
    if attribute in URL_ATTRIBUTES and not url_allowed(value, image=element == "img" and attribute == "src"):
        return None
    return value


def _svg_attribute(element, attribute, value):
    if attribute == "xlink":
        return value if value == "http://www.w3.org/1999/xlink" else None
    if attribute in ("href", "xlink:href"):
        if element == "image":  # matplotlib's imshow: an inline PNG
            return value if url_allowed(value, image=True) and value.strip().lower().startswith(IMAGE_DATA) \
                else None
        return value if url_allowed(value, fragment_only=True) else None  # use, textPath: within the figure
    if attribute in URL_ATTRIBUTES:
        return None
    return value


HTML = nh3.Cleaner(tags=HTML_TAGS, clean_content_tags=DROPPED_WITH_CONTENT - HTML_TAGS, attributes=HTML_ATTRIBUTES,
                   attribute_filter=_html_attribute, url_schemes=SCHEMES | {"data", "attachment"},
                   filter_style_properties=STYLE_PROPERTIES, link_rel="noopener noreferrer")
SVG = nh3.Cleaner(tags=SVG_TAGS, clean_content_tags=DROPPED_WITH_CONTENT - SVG_TAGS, attributes=SVG_ATTRIBUTES,
                  attribute_filter=_svg_attribute, url_schemes={"data"}, filter_style_properties=STYLE_PROPERTIES,
                  link_rel=None)


def sanitize_html(html):
    """HTML with nothing active left: the course's allowlist of tags, attributes, URLs and CSS properties."""
    return HTML.clean(str(html))


def sanitize_svg(svg):
    """An SVG figure with nothing active left, or None when no figure is left."""
    clean = SVG.clean(str(svg)).strip()
    return clean if clean.startswith("<svg") else None


INERT_BLOCK = '<div class="autograder-inert">'

# --- markdown -------------------------------------------------------------------------------------------

class _Recorder(IPythonRenderer):
    """nbconvert's renderer, noting the raw HTML and the URLs a markdown text holds."""

    def __init__(self, **kwargs):
        super().__init__(escape=False, **kwargs)
        self.raw_html = False
        self.urls = []

    def block_html(self, html):
        self.raw_html = True
        return super().block_html(html)

    def inline_html(self, html):
        self.raw_html = True
        return super().inline_html(html)

    def link(self, text, url, title=None):
        self.urls.append((url, False))
        return super().link(text, url, title)

    def image(self, text, url, title=None):
        self.urls.append((url, True))
        return super().image(text, url, title)


def render_markdown(source, attachments=None):
    """``(html, inert)``: markdown as nbconvert renders it, and whether it is inert as written (no raw HTML,
    every link and image safe)."""
    recorder = _Recorder(attachments=attachments or {})
    html = MarkdownWithMath(renderer=recorder).render(source)
    inert = not recorder.raw_html and all(url_allowed(url, image) for url, image in recorder.urls)
    return html, inert


def inert_markdown(source, attachments=None):
    """The markdown itself when it is inert; else its sanitized rendering as one HTML block.

    The block is one line (newlines become ``&#10;``) inside a ``div``, so
    that every markdown renderer passes it through as it is: it renders as
    the student's text did, less what was active.
    """
    try:
        html, inert = render_markdown(source, attachments)
    except Exception:  # markdown nbconvert cannot render (a missing attachment): shown as text
        return "<div><pre>" + escape(source).replace("\n", "&#10;") + "</pre></div>"
    if inert:
        return source
    block = sanitize_html(html).strip().replace("\r", "").replace("\n", "&#10;")
    return block if block.startswith(INERT_BLOCK) else INERT_BLOCK + block + "</div>"  # once made, kept as it is


# --- the notebook ----------------------------------------------------------------------------------------

def _text(value):
    return "".join(value) if isinstance(value, list) else str(value)


def _image(mimetype, value):
    """A base64 image that decodes and starts as its type says, without whitespace; else None."""
    data = "".join(_text(value).split())
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if raw.startswith(IMAGE_MAGIC[mimetype]) else None


def inert_output(output):
    """A display or result output with allowlisted, sanitized data; other outputs are text already."""
    if output.get("output_type") not in ("display_data", "execute_result"):
        return output
    data, kept = output.get("data"), {}
    data = data if isinstance(data, dict) else {}
    for mimetype, value in data.items():
        if mimetype not in OUTPUT_MIMETYPES:
            continue
        if mimetype in IMAGE_MAGIC:
            value = _image(mimetype, value)
        elif mimetype == "text/html":
            value = sanitize_html(_text(value))
        elif mimetype == "text/markdown":
            value = inert_markdown(_text(value))
        elif mimetype == "image/svg+xml":
            png_or_jpeg = any(_image(m, data[m]) for m in IMAGE_MAGIC if m in data)
            value = None if png_or_jpeg else sanitize_svg(_text(value))
        else:
            value = _text(value)
        if value is not None:
            kept[mimetype] = value
    if not kept:
        kept["text/plain"] = f"[output not shown: {', '.join(sorted(data)) or 'no data'}]"
    output["data"] = kept
    sizes = {}
    metadata = output.get("metadata")
    for mimetype, entry in (metadata if isinstance(metadata, dict) else {}).items():
        if mimetype in kept and mimetype.startswith("image/") and isinstance(entry, dict):
            size = {key: entry[key] for key in ("width", "height")
                    if isinstance(entry.get(key), (int, float)) and not isinstance(entry.get(key), bool)}
            if size:
                sizes[mimetype] = size
    output["metadata"] = sizes
    return output


def released_unchanged(cell):
    """Whether the cell is the instructor's text, unchanged: it carries the gradebook's checksum (nbgrader's
    OverwriteCells puts it there in Autograde's first pass) and still matches it."""
    from nbgrader.utils import compute_checksum

    checksum = (cell.metadata.get("nbgrader") or {}).get("checksum")
    try:
        return bool(checksum) and checksum == compute_checksum(cell)
    except Exception:
        return False


def inert_cell(cell):
    if isinstance(cell.get("source"), list):  # as nbformat writes it: the same text
        cell.source = _text(cell.source)
    if cell.cell_type == "code":
        for output in cell.get("outputs", []):
            inert_output(output)
    elif cell.cell_type == "markdown":
        attachments = cell.get("attachments")
        if attachments:  # images only; an attachment with none left is a blank image, so references still render
            cell.attachments = {name: {m: v for m, v in bundle.items() if m in ATTACHMENT_MIMETYPES} or
                                {"image/gif": BLANK_GIF} for name, bundle in attachments.items()
                                if isinstance(bundle, dict)}
        if not released_unchanged(cell):
            cell.source = inert_markdown(cell.source, cell.get("attachments"))
    elif cell.cell_type == "raw":
        mimetype = str(cell.metadata.get("raw_mimetype") or cell.metadata.get("format") or "").lower()
        if mimetype in HTML_RAW_MIMETYPES and "<" in cell.source:
            cell.source = sanitize_html(cell.source)
    return cell


def blank_cell(cell):
    """The fallback: a markdown or raw cell as escaped text, a code cell without its rich outputs."""
    if cell.cell_type == "code":
        for output in cell.get("outputs", []):
            if output.get("output_type") in ("display_data", "execute_result"):
                output["data"], output["metadata"] = {"text/plain": "[output not shown]"}, {}
    else:
        cell.source = "<div><pre>" + escape(_text(cell.get("source", ""))).replace("\n", "&#10;") + "</pre></div>"
        cell.pop("attachments", None)


class MakeInert(Preprocessor):
    """Every student markdown, raw cell and output inert (module docstring); the rest as it was."""

    enabled = Bool(True, help="Leave it on: without it a student's notebook runs script in whoever views it."
                   ).tag(config=True)

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)  # widget state: script the page would load
        for index, cell in enumerate(nb.cells):
            try:
                inert_cell(cell)
            except Exception as e:  # never lose a graded submission to this step: the cell shows as text
                self.log.warning("cell %d could not be made inert (%s: %s); it is shown as text", index,
                                 type(e).__name__, e)
                blank_cell(cell)
        return nb, resources


# --- nbconvert's markdown filter, sanitized ------------------------------------------------------------------

@pass_context
def _marker(context):  # pragma: no cover - only its jinja flag is used
    return context


class SafeMarkdown(LoggingConfigurable):
    """``markdown2html`` for ``HTMLExporter.filters``: the exporter's own rendering, math as MathML, sanitized.

    nbconvert builds a configurable filter with the exporter as parent; the
    exporter's `markdown2html` needs the template's context (the cell's
    attachments), which jinja passes to filters flagged as `pass_context`.
    """

    jinja_pass_arg = _marker.jinja_pass_arg  # what jinja2.pass_context sets: jinja passes the context first

    def __call__(self, context, source):
        from .offline import render_math

        render = getattr(self.parent, "markdown2html", None)
        text = render_math(source) if "$" in source else source
        html = render(context, text) if render is not None else MarkdownWithMath(
            renderer=IPythonRenderer(escape=False)).render(text)
        return sanitize_html(html)
