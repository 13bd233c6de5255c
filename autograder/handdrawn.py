"""Folders of hand-drawn digits: a file name starts with its label, `7_2.jpg` is a 7."""

import re
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
LABELLED = re.compile(r"^(\d)_")


def labelled_images(folder):
    """Sorted ``(path, label)`` pairs of the images in ``folder`` named ``<digit>_*``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder of drawings at {folder}.")
    pairs = []
    for path in sorted(folder.iterdir()):
        match = LABELLED.match(path.name)
        if match and path.suffix.lower() in IMAGE_SUFFIXES:
            pairs.append((path, int(match.group(1))))
    return pairs
