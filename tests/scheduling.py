"""Costliest modules first: how ``make test`` hands modules to its pytest-xdist workers.

xdist's ``--dist loadscope`` keeps a module's tests on one worker (their module fixtures,
a SLURM cluster or a browser, are built once) and hands out modules in order of their
number of tests, so a costly module of few tests (the schedulers' three, about 80 s) starts
last on one worker while the other has long finished. Handing out the costliest first
(longest-processing-time first) leaves only small modules for the end, where the two
workers even out.

The cost of each module is what it took in an earlier run, kept in ``module_seconds.json``
beside this file; ``FATOOLS_RECORD_MODULE_SECONDS=1 make test`` writes it again (a passing
run of some modules updates theirs). A module it
does not name counts a second a test. The table only orders the work: a stale one slows the
suite, never changes what it tests.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

TABLE = Path(__file__).with_name("module_seconds.json")
RECORD = "FATOOLS_RECORD_MODULE_SECONDS"
SECONDS_PER_UNKNOWN_TEST = 1.0


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def known_seconds() -> dict[str, float]:
    try:
        return {str(k): float(v) for k, v in json.loads(TABLE.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def costliest_first(units: dict[str, Any], seconds: dict[str, float]) -> list[str]:
    """The scopes of ``units`` (scope -> its tests), costliest first."""

    def cost(scope: str) -> float:
        return seconds.get(module_of(scope), SECONDS_PER_UNKNOWN_TEST * len(units[scope]))

    return sorted(units, key=cost, reverse=True)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """A LoadScopeScheduling whose queue is ordered by cost; None leaves xdist's own."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CostliestFirst(LoadScopeScheduling):  # type: ignore[misc]
        ordered = False

        def _assign_work_unit(self, node: Any) -> None:
            # The queue is complete when the first unit is handed out (schedule()).
            if not self.ordered:
                order = costliest_first(self.workqueue, known_seconds())
                units = {scope: self.workqueue[scope] for scope in order}
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True
            super()._assign_work_unit(node)

    return CostliestFirst(config, log)


class ModuleSeconds:
    """Sums each module's setup, call and teardown times on the controller and, when asked,
    writes them to the table at the end of a whole run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus != 0 or not self.seconds:
            return
        # Merged into the table: a run of some modules updates theirs and keeps the others'.
        table = known_seconds() | {module: round(s, 1) for module, s in self.seconds.items()}
        table = dict(sorted(table.items()))
        tmp = TABLE.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, TABLE)


def configure(config: pytest.Config) -> None:
    """Registers the recorder on the controller (not in xdist's workers) when asked."""
    if os.environ.get(RECORD) and not os.environ.get("PYTEST_XDIST_WORKER"):
        config.pluginmanager.register(ModuleSeconds(), "fatools-module-seconds")
