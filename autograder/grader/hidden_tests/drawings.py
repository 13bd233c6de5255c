"""Synthetic hand-drawn digits, and the instructor's hidden set.

The example sets committed with the project are drawn by `draw_example_set`
from stroke skeletons, with random pen, slant, jitter, paper, grid lines,
lighting, ink colour, show-through, blur and file format, so that they look
like what students hand in (phone photos of pen on paper, tablet drawings,
RGBA and white-on-black canvases) and can be shipped under the project's
licence. See `autograder/grader/data/handdrawn/README.md`.

The hidden test of worksheet 1 scores the instructor's own drawings, in the
folder `PlanHiddenTests.drawings` names in nbgrader_config.py (grade-all
ships it to the workers); without it, the synthetic set in `data/handdrawn/`,
which is public wherever this repository is.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, UnidentifiedImageError

HIDDEN_SET = Path(__file__).parents[1] / "data" / "handdrawn"


# One drawing, at most: what a worksheet's files may hold (safe_files.MAX_FILE_BYTES), and a 48-megapixel
# phone photo; a small file that declares more pixels is a decompression bomb to the grader's own process.
MAX_DRAWING_BYTES = 64 * 2**20
MAX_DRAWING_PIXELS = 50_000_000
HANDDRAWN_CHECK = "expect_handdrawn_accuracy"  # the hidden check that reads the instructor's drawings


def grading_set(configured=""):
    """The instructor's folder, as configured, else the committed example set."""
    return Path(configured or HIDDEN_SET)


def reads_course_drawings(notebook):
    """Whether the hidden tests of the source ``notebook`` (a path) read the instructor's drawings."""
    return HANDDRAWN_CHECK in Path(notebook).read_text(errors="replace")


def drawing_problems(folder):
    """What keeps the drawings in ``folder`` from being graded with, one line per file (none: all good).

    Every file named as a drawing must be a plain, readable image: one that is not (a link, a folder, a text
    file, a truncated photo, a bomb) would stop every grading of the worksheets that read the set.
    """
    import io

    from ...handdrawn import labelled_images
    from ...run import safe_files

    try:
        pairs = labelled_images(folder)
    except FileNotFoundError as e:
        return [str(e)]
    if not pairs:
        return [f"no drawings in {folder}: name each one after its digit, e.g. 7_1.png is a 7"]
    problems = []
    for path, _ in pairs:
        try:
            data = safe_files.read_bytes(path, MAX_DRAWING_BYTES)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_DRAWING_PIXELS:
                    problems.append(f"{path.name} has {img.width * img.height:,} pixels, over the "
                                    f"{MAX_DRAWING_PIXELS:,} the grader reads")
                    continue
                img.load()
        except safe_files.Refused as e:  # a folder, a pipe, a file over the cap
            problems.append(str(e))
        except UnidentifiedImageError:
            problems.append(f"{path.name} is not an image")
        except OSError as e:
            why = "a link" if path.is_symlink() else e.strerror or str(e) or "a broken image"
            problems.append(f"{path.name} cannot be read ({why})")
        except Exception as e:  # Pillow's own errors for a broken image (SyntaxError, DecompressionBombError)
            problems.append(f"{path.name} is not an image Pillow reads ({type(e).__name__})")
    return problems


# --- drawing example digits -------------------------------------------------

def _arc(cx, cy, rx, ry, start, end, steps=24):
    angles = np.radians(np.linspace(start, end, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Strokes in a unit box, y pointing down; each digit is a list of polylines.
SKELETONS = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, -90, 270)],
    1: [[(0.35, 0.22), (0.55, 0.05), (0.52, 0.95)]],
    2: [_arc(0.5, 0.3, 0.3, 0.25, 190, 360) + [(0.75, 0.45), (0.2, 0.95), (0.85, 0.95)]],
    3: [_arc(0.5, 0.28, 0.27, 0.23, 200, 450) + _arc(0.5, 0.73, 0.3, 0.23, -90, 160)],
    4: [[(0.6, 0.95), (0.6, 0.05), (0.12, 0.65), (0.85, 0.65)]],
    5: [[(0.8, 0.05), (0.32, 0.05), (0.28, 0.45)] + _arc(0.5, 0.68, 0.3, 0.27, -130, 150)],
    6: [[(0.7, 0.05), (0.4, 0.3)] + _arc(0.5, 0.7, 0.28, 0.25, 200, 560)],
    7: [[(0.15, 0.06), (0.85, 0.06), (0.4, 0.95)]],
    8: [_arc(0.5, 0.27, 0.22, 0.21, 90, 450), _arc(0.5, 0.71, 0.28, 0.24, -90, 270)],
    9: [_arc(0.5, 0.3, 0.25, 0.23, 0, 360), [(0.75, 0.3), (0.68, 0.95)]],
}
STYLES = ("tablet", "photo", "photo-grid", "blue-ballpoint", "white-on-black", "rgba", "big-canvas")


def _strokes(digit, rng, box):
    """The skeleton, slanted, rotated, scaled into ``box`` and jittered point by point."""
    x0, y0, size = box
    angle = math.radians(rng.uniform(-12, 12))
    shear = rng.uniform(-0.25, 0.15)
    squeeze = rng.uniform(0.75, 1.05)
    out = []
    for line in SKELETONS[digit]:
        pts = []
        for x, y in line:
            x, y = (x - 0.5) * squeeze + shear * (y - 0.5), y - 0.5
            x, y = x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)
            x, y = x + rng.normal(0, 0.012), y + rng.normal(0, 0.012)
            pts.append((x0 + (x + 0.5) * size, y0 + (y + 0.5) * size))
        out.append(pts)
    return out


def _paper(rng, w, h, grid):
    """Grey, unevenly lit paper, optionally with squared-paper lines."""
    base = rng.uniform(150, 235)
    ys, xs = np.mgrid[0:h, 0:w]
    gx, gy = rng.uniform(-0.35, 0.35, size=2)
    light = base * (1 + gx * (xs / w - 0.5) + gy * (ys / h - 0.5))
    paper = np.stack([light * rng.uniform(0.96, 1.0), light * rng.uniform(0.96, 1.0), light], axis=-1)
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    if grid:
        draw = ImageDraw.Draw(img)
        step = int(rng.uniform(0.06, 0.1) * w)
        colour = (int(base * 0.75), int(base * 0.8), int(base * 0.95))
        for v in range(int(rng.uniform(0, step)), max(w, h), step):
            draw.line([(v, 0), (v, h)], fill=colour, width=max(1, w // 200))
            draw.line([(0, v), (w, v)], fill=colour, width=max(1, w // 200))
    return img


def draw_digit(digit, style, rng):
    """One synthetic drawing of ``digit`` in ``style`` (see STYLES), as a PIL image."""
    big = style == "big-canvas"
    w, h = (int(rng.uniform(900, 1300)), int(rng.uniform(700, 1000))) if big else (int(rng.uniform(220, 420)),) * 2
    size = rng.uniform(0.12, 0.25) * w if big else rng.uniform(0.55, 0.8) * w
    box = (rng.uniform(0.05 * w, w - size - 0.05 * w), rng.uniform(0.05 * h, h - size - 0.05 * h), size)
    pen = max(2, int(size * rng.uniform(0.04, 0.1)))
    if style in ("photo", "photo-grid", "blue-ballpoint"):
        img = _paper(rng, w, h, grid=style == "photo-grid" or rng.random() < 0.3)
        ink = (25, 45, 150) if style == "blue-ballpoint" else (int(rng.uniform(10, 60)),) * 3
        if rng.random() < 0.5:  # show-through of a digit from the other side of the page
            ghost = _strokes(int(rng.integers(10)), rng, (w - box[0] - size, box[1], size))
            shade = tuple(int(c * 0.85) for c in img.getpixel((w // 2, h // 2)))
            for line in ghost:
                ImageDraw.Draw(img).line([(w - x, y) for x, y in line], fill=shade, width=pen, joint="curve")
    elif style == "white-on-black":
        img, ink = Image.new("RGB", (w, h), (int(rng.uniform(0, 40)),) * 3), (255, 255, 255)
    elif style == "rgba":
        img, ink = Image.new("RGBA", (w, h), (0, 0, 0, 0)), (0, 0, 0, 255)
    else:
        img, ink = Image.new("RGB", (w, h), (255, 255, 255)), (0, 0, 0)
    draw = ImageDraw.Draw(img)
    for line in _strokes(digit, rng, box):
        draw.line(line, fill=ink, width=pen, joint="curve")
    if style.startswith("photo") or style == "blue-ballpoint":
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        noise = rng.normal(0, 6, (h, w, 1))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=float) + noise, 0, 255).astype(np.uint8))
    return img


def draw_example_set(folder, per_digit=3, seed=0):
    """Write ``per_digit`` drawings of each digit into ``folder``; return their paths."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for digit in range(10):
        for k in range(1, per_digit + 1):
            style = STYLES[(digit * per_digit + k) % len(STYLES)]
            img = draw_digit(digit, style, rng)
            jpeg = style.startswith("photo") or style == "blue-ballpoint"
            path = folder / f"{digit}_{k}.{'jpg' if jpeg else 'png'}"
            img.save(path, quality=85) if jpeg else img.save(path, optimize=True)
            paths.append(path)
    return paths
