"""The GitHub completeness job's check (.ci/completeness.py): the parallel jobs' JUnit reports against
the collected test ids."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "completeness.py"
spec = importlib.util.spec_from_file_location("completeness", SCRIPT)
assert spec and spec.loader
completeness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(completeness)

COLLECTED = """tests/unit/test_a.py::test_one
tests/unit/test_a.py::test_two[1.5-x]
tests/integration/test_b.py::test_three
tests/integration/test_b.py::TestGroup::test_four

4 tests collected in 0.01s
"""
REPORT = """<?xml version="1.0"?><testsuites><testsuite>
<testcase classname="tests.unit.test_a" name="test_one" time="0.1"/>
<testcase classname="tests.unit.test_a" name="test_two[1.5-x]" time="0.1"/>
<testcase classname="tests.integration.test_b" name="test_three"><skipped message="no docker"/></testcase>
<testcase classname="tests.integration.test_b.TestGroup" name="test_four"><failure message="boom"/></testcase>
</testsuite></testsuites>"""


def test_every_collected_id_passed_or_is_named():
    problems = completeness.check(completeness.collected_ids(COLLECTED), completeness.junit_outcomes(REPORT))
    assert sorted(problems) == ["failed: tests/integration/test_b.py::TestGroup::test_four",
                                "skipped: tests/integration/test_b.py::test_three"]


def test_a_test_no_group_ran_is_missing(tmp_path):
    (tmp_path / "collected.txt").write_text(COLLECTED)
    (tmp_path / "unit.xml").write_text(REPORT.replace('<testcase classname="tests.unit.test_a" name="test_one" '
                                                      'time="0.1"/>', ""))
    assert completeness.main([str(tmp_path / "collected.txt"), str(tmp_path / "unit.xml")]) == 1
    outcomes = completeness.junit_outcomes(REPORT)
    assert "not run: tests/unit/test_a.py::test_one" in completeness.check(completeness.collected_ids(COLLECTED),
                                                                          {k: v for k, v in outcomes.items()
                                                                           if "test_one" not in k})


def test_all_passed_in_several_reports_is_complete(tmp_path):
    (tmp_path / "collected.txt").write_text(COLLECTED)
    passed = REPORT.replace('<skipped message="no docker"/>', "").replace('<failure message="boom"/>', "")
    unit, integration = passed.split('<testcase classname="tests.integration.test_b" ')
    (tmp_path / "unit.xml").write_text(unit + "</testsuite></testsuites>")
    (tmp_path / "integration.xml").write_text('<testsuites><testsuite><testcase classname="tests.integration.test_b" '
                                              + integration)
    assert completeness.main([str(tmp_path / "collected.txt"), str(tmp_path / "unit.xml"),
                              str(tmp_path / "integration.xml")]) == 0
