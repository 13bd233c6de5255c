"""Shared fixtures. The data comes from the verified cache, seeded from
$AUTOGRADER_DATA_MIRROR (CI sets ../shared/datasets) or the internet."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))  # tiny_course, hostile submissions


@pytest.fixture(scope="session", autouse=True)
def course_data():
    """Fetch and verify all three datasets once, before any test reads them."""
    from autograder.cli import data_fetch

    data_fetch(out=lambda line: None)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty cache folder, so a test can fetch, break and repair files freely."""
    monkeypatch.setenv("AUTOGRADER_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
