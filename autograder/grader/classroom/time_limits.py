"""The time one grading may take: every limit a setting of the course, checked at start-up.

A grading process (a submission's, or a host's reference run) may take
`GradingRun.timeout` (``--timeout`` sets it). Inside it the notebook may take
`SandboxedExecute.notebook_timeout` (each cell at most `Execute.timeout`, the
exports after each test cell at most `SandboxedExecute.export_timeout`, both
within what is left of the notebook's budget), then the scoring process
`ScoreHiddenTests.timeout`; `ReferenceRun.startup_allowance` covers the
kernel's start and the grader's own steps. When those fit inside the
process's limit, an overrun is named by the budget that ran out: a cell's,
the notebook's, an export's and the scoring's are the submission's; the
process's own limit can then run out only on time none of them covers,
which is the host's (and the host then checks itself, `worker.settle`).

A host's reference run sets lower budgets for that host (`reference.budget`);
they are returned as a new configuration (`with_host_budgets`), never
written into the caller's.
"""

import copy
from dataclasses import dataclass

from traitlets.config import Config


@dataclass(frozen=True)
class TimeLimits:
    """The course's time limits on one grading that must fit inside one another, in seconds (a cell's and an
    export's end within what is left of the notebook's, `SandboxedExecute`)."""

    notebook: float
    scoring: float
    startup: float
    run: float

    @classmethod
    def of(cls, config):
        """The limits ``config`` (a Config or its plain dict) sets, the steps' own defaults elsewhere."""
        from ...run.execute import SandboxedExecute
        from ...run.pipeline import GradingRun
        from ..hidden_tests.launch import ScoreHiddenTests
        from .reference import ReferenceRun

        config = config if isinstance(config, Config) else Config(copy.deepcopy(config))
        return cls(notebook=float(SandboxedExecute(config=config).notebook_timeout),
                   scoring=float(ScoreHiddenTests(config=config).timeout),
                   startup=float(ReferenceRun(config=config).startup_allowance),
                   run=float(GradingRun(config=config).timeout))

    def misfit(self):
        """Why these limits do not fit together, naming each setting, or ''."""
        inside = self.notebook + self.scoring + self.startup
        if inside > self.run:
            return (f"the notebook's budget (SandboxedExecute.notebook_timeout, {self.notebook:g} s), the scoring's "
                    f"(ScoreHiddenTests.timeout, {self.scoring:g} s) and the start-up allowance "
                    f"(ReferenceRun.startup_allowance, {self.startup:g} s) come to {inside:g} s, more than a "
                    f"grading process may take (GradingRun.timeout, --timeout: {self.run:g} s), so an overrun "
                    f"would be blamed on the host; raise --timeout to {inside:g} or lower one of them in the "
                    "course's nbgrader_config.py")
        return ""



def with_run_limit(config, seconds):
    """A copy of ``config`` whose grading processes may take ``seconds`` (the ``--timeout`` flag); ``None``: the
    course's own setting."""
    config = copy.deepcopy(config)
    if seconds is not None:
        config.GradingRun.timeout = float(seconds)
    return config


_told = set()  # the limits this process has already warned about: once each, not once per submission


def checked(config, say):
    """The course's `TimeLimits`; ``say`` is told, in one sentence, when they do not fit together (grading goes
    on: a process past its limit is then settled by the host's own check, `worker.settle`)."""
    limits = TimeLimits.of(config)
    problem = limits.misfit()
    if problem and limits not in _told:
        _told.add(limits)
        say(f"warning: the course's time limits do not fit: {problem}.")
    return limits


def with_host_budgets(config, verdict):
    """A copy of ``config`` (a Config or its plain dict) with this host's budgets from its reference ``verdict``:
    the notebook's (and each cell's, never more), and the scoring's."""
    config = copy.deepcopy(config)
    plain = not isinstance(config, Config)
    section = (lambda name: config.setdefault(name, {})) if plain else (lambda name: config[name])
    execute, sandbox, scoring = section("Execute"), section("SandboxedExecute"), section("ScoreHiddenTests")
    sandbox["notebook_timeout"] = int(verdict.budget)
    execute["timeout"] = int(min(execute.get("timeout") or verdict.budget, verdict.budget))
    if verdict.scoring_budget:
        scoring["timeout"] = int(verdict.scoring_budget)
    return config
