"""The package's shape: no import circle, no upward import, the README's drawing current, old paths still loading."""

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from traitlets.config import Config
from traitlets.utils.importstring import import_item

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import import_graph  # noqa: E402

# What a course's nbgrader_config.py, a hub's generated configuration and an installed kit of release 0.2 name.
OLD_NAMES = {
    "autograder.pipeline.GradingRun": "autograder.run.pipeline.GradingRun",
    "autograder.grader.steps.PlanHiddenTests": "autograder.grader.hidden_tests.launch.PlanHiddenTests",
    "autograder.grader.steps.ScoreHiddenTests": "autograder.grader.hidden_tests.launch.ScoreHiddenTests",
    "autograder.execute.SandboxedExecute": "autograder.run.execute.SandboxedExecute",
    "autograder.execute.FilterStderr": "autograder.run.execute.FilterStderr",
    "autograder.grader.sanitize.RestoreCellMetadata": "autograder.grader.classroom.cell_metadata.RestoreCellMetadata",
    "autograder.grader.feedback.StripHiddenTests": "autograder.grader.pages.feedback.StripHiddenTests",
    "autograder.grader.offline_pages.WrapErrors": "autograder.grader.pages.offline.WrapErrors",
    "autograder.grader.offline_pages.RenderMath": "autograder.grader.pages.offline.RenderMath",
    "autograder.grader.inert.MakeInert": "autograder.grader.pages.inert.MakeInert",
    "autograder.grader.inert.SafeMarkdown": "autograder.grader.pages.inert.SafeMarkdown",
    "autograder.grader.inert.sanitize_html": "autograder.grader.pages.inert.sanitize_html",
    "autograder.grader.grades_export.GradesCsvExport": "autograder.grader.classroom.grades_export.GradesCsvExport",
    "autograder.course_exchange.PrivateSubmit": "autograder.nbgrader_exchange.private_submit.PrivateSubmit",
    "autograder.course_exchange.StickyInboundRelease":
        "autograder.nbgrader_exchange.private_submit.StickyInboundRelease",
    "autograder.grader.collect.SafeCollect": "autograder.grader.hub.collect.SafeCollect",
    "autograder.grader.hub_spawner.CourseSpawner": "autograder.grader.hub.spawner.CourseSpawner",
    "autograder.grader.trusted.SCORER_START": "autograder.grader.hidden_tests.scorer.SCORER_START",
}

# The pipeline part of release 0.2's nbgrader_config.py, as a course copied it.
OLD_CONFIG = '''
from autograder import pipeline
c = get_config()
c.Autograde.sanitize_preprocessors = pipeline.SANITIZE
c.Autograde.autograde_preprocessors = pipeline.AUTOGRADE
c.GradingRun.steps = pipeline.EXECUTION
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.grader.feedback.StripHiddenTests",
    "autograder.grader.offline_pages.WrapErrors",
    "autograder.grader.offline_pages.RenderMath",
    "autograder.grader.inert.MakeInert",
]
c.HTMLExporter.filters = {"markdown2html": "autograder.grader.inert.SafeMarkdown",
                          "clean_html": "autograder.grader.inert.sanitize_html"}
c.ExportApp.plugin_class = "autograder.grader.grades_export.GradesCsvExport"
c.ValidateAssignment.validator_class = "autograder.validate.CheckValidator"
'''


def test_the_package_has_no_import_circle_and_no_upward_import():
    assert import_graph.problems() == []


def test_the_checker_finds_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The check above can fail: a planted circle and a planted upward import are each found."""
    graph = import_graph.arrows()
    graph["autograder.run.record"].add("autograder.grader.classroom.worker")
    assert any("autograder.grader.classroom.worker" in " ".join(g) and "autograder.run.record" in g
               for g in import_graph.circles(graph))
    assert ("autograder.run.record", "autograder.grader.classroom.worker") in import_graph.upward(graph)


def test_the_readme_shows_the_current_drawing():
    readme = (ROOT / "README.md").read_text()
    assert import_graph.drawing() in readme, "run `python scripts/import_graph.py` and paste it into the README"


@pytest.mark.parametrize("old, new", sorted(OLD_NAMES.items()))
def test_a_name_of_release_0_2_is_the_same_object_with_a_warning(old, new):
    module = old.rpartition(".")[0]
    sys.modules.pop(module, None)
    with pytest.warns(DeprecationWarning, match=new.rpartition(".")[0].replace(".", r"\.")):
        found = import_item(old)
    assert found is import_item(new)


def test_a_course_config_of_release_0_2_loads_and_names_the_same_steps(tmp_path):
    """A course that copied 0.2's nbgrader_config.py grades with the same classes (nbgrader resolves each name)."""
    from autograder.run.course_config import load

    (tmp_path / "nbgrader_config.py").write_text(OLD_CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config = load(tmp_path / "nbgrader_config.py")
        names = [*config.Autograde.sanitize_preprocessors, *config.Autograde.autograde_preprocessors,
                 *config.GradingRun.steps, *config.GenerateFeedback.preprocessors,
                 *config.HTMLExporter.filters.values(), config.ExportApp.plugin_class,
                 config.ValidateAssignment.validator_class]
        classes = [import_item(n) for n in names]
    current = Config()
    exec(compile((ROOT / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec"), {"get_config": lambda: current,
                                                                                           "__file__": str(ROOT / "x")})
    assert set(import_item(n) for n in current.GradingRun.steps) == set(import_item(n) for n in config.GradingRun.steps)
    assert import_item("autograder.run.pipeline.GradingRun") in classes


def test_old_paths_import_in_a_fresh_process_as_a_hub_config_would():
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import autograder.course_exchange\nexcept DeprecationWarning as e:\n    print(e)\n"
            "warnings.simplefilter('ignore')\n"
            "from autograder.course_exchange import PrivateSubmit\n"
            "import autograder.nbgrader_exchange.private_submit as m\n"
            "print(PrivateSubmit is m.PrivateSubmit, m.__spec__.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.splitlines() == [
        "autograder.course_exchange is now autograder.nbgrader_exchange.private_submit; "
        "the old path goes in autograder 0.4", "True autograder.nbgrader_exchange.private_submit"]


def test_the_aliases_are_real_module_names():
    import autograder.grader  # noqa: F401  (adds the grader's)
    from autograder.moved import MOVED

    assert "autograder.grader.trusted" in MOVED and "autograder.pipeline" in MOVED

    for old, new in MOVED.items():
        assert importlib.util.find_spec(new) is not None, new
        assert not (ROOT / Path(*old.split("."))).with_suffix(".py").exists(), old
