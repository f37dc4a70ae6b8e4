"""make test's order (tests/scheduling.py): the costliest modules first, by the recorded
seconds, unknown ones by their number of tests; a recorded run merges into the table."""

from __future__ import annotations

import json
from types import SimpleNamespace

import scheduling


def test_costliest_first_by_recorded_seconds_then_by_test_count():
    units = {
        "tests/test_few_but_slow.py": {"a": False, "b": False},
        "tests/test_many.py": {str(i): False for i in range(30)},
        "tests/test_new.py": {str(i): False for i in range(5)},  # not in the table: 5 s
        "tests/test_class.py::Case": {"c": False},  # a class's scope counts as its module
    }
    seconds = {"tests/test_few_but_slow.py": 80.0, "tests/test_many.py": 3.0, "tests/test_class.py": 20.0}
    assert scheduling.costliest_first(units, seconds) == [
        "tests/test_few_but_slow.py",
        "tests/test_class.py::Case",
        "tests/test_new.py",
        "tests/test_many.py",
    ]


def test_a_recorded_run_updates_its_modules_and_keeps_the_others(tmp_path, monkeypatch):
    table = tmp_path / "module_seconds.json"
    table.write_text(json.dumps({"tests/test_a.py": 10.0, "tests/test_b.py": 20.0}))
    monkeypatch.setattr(scheduling, "TABLE", table)
    recorder = scheduling.ModuleSeconds()
    for duration in (0.5, 2.0, 0.25):  # setup, call, teardown
        recorder.pytest_runtest_logreport(
            SimpleNamespace(nodeid="tests/test_b.py::test_x", duration=duration)
        )
    recorder.pytest_sessionfinish(None, exitstatus=1)  # a failing run writes nothing
    assert json.loads(table.read_text())["tests/test_b.py"] == 20.0
    recorder.pytest_sessionfinish(None, exitstatus=0)
    assert json.loads(table.read_text()) == {"tests/test_a.py": 10.0, "tests/test_b.py": 2.8}
