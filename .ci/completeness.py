"""Did the parallel CI jobs, together, run every collected test, and did each pass?

    python .ci/completeness.py COLLECTED.txt RESULT.xml [RESULT.xml ...]

COLLECTED.txt is `pytest --collect-only -q` output; each RESULT.xml a JUnit report of one job. Exit 0
when every collected id passed in some report; 1 naming the ids missing, skipped or failed."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def collected_ids(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if "::" in line and not line.startswith(" ")}


def junit_outcomes(xml: str) -> dict[str, str]:
    """Test id (path::name, as pytest collects it) -> passed | skipped | failed, from one JUnit report.
    pytest writes classname as the dotted module path, then any class names."""
    outcomes = {}
    for case in ElementTree.fromstring(xml).iter("testcase"):
        parts = case.get("classname", "").split(".")
        module_end = next((i for i, part in enumerate(parts) if part.startswith("test_")), len(parts) - 1)
        test_id = "::".join(["/".join(parts[:module_end + 1]) + ".py", *parts[module_end + 1:], case.get("name", "")])
        tags = {child.tag for child in case}
        outcomes[test_id] = ("failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags
                             else "passed")
    return outcomes


def check(collected: set[str], outcomes: dict[str, str]) -> list[str]:
    problems = [f"not run: {test_id}" for test_id in sorted(collected - outcomes.keys())]
    problems += [f"{outcomes[test_id]}: {test_id}" for test_id in sorted(collected & outcomes.keys())
                 if outcomes[test_id] != "passed"]
    return problems


def main(argv: list[str]) -> int:
    collected = collected_ids(Path(argv[0]).read_text())
    outcomes: dict[str, str] = {}
    for report in argv[1:]:
        outcomes.update(junit_outcomes(Path(report).read_text()))
    problems = check(collected, outcomes)
    for problem in problems:
        print(problem)
    print(f"{len(collected)} collected, {sum(1 for o in outcomes.values() if o == 'passed')} passed in"
          f" {len(argv) - 1} report(s): {'complete' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems or not collected else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
