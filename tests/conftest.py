from __future__ import annotations

import pytest

from streamctl.cli import run


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run streamctl in-process; returns (exit_code, stdout, stderr). Settings isolated in tmp_path."""
    monkeypatch.chdir(tmp_path)
    for var in list(__import__("os").environ):
        if var.startswith("STREAMCTL_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str):
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a missing test: fail the run rather than pass on less than everything."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line(f"CI: {len(reporter.stats['skipped'])} skipped test(s) count as failures", red=True)
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    """Seconds per test module (setup, call and teardown), slowest first: where the suite's time goes.
    Then what tests left for a person to look at (record_property("screenshot_...", path)), listed at
    the end of the run so CI's log names them."""
    seconds: dict[str, float] = {}
    for outcome in ("passed", "failed", "error", "skipped", ""):  # "": setups and teardowns that passed
        for report in terminalreporter.stats.get(outcome, []):
            if hasattr(report, "duration") and hasattr(report, "nodeid"):
                module = report.nodeid.split("::", 1)[0]
                seconds[module] = seconds.get(module, 0.0) + report.duration
    if seconds:
        terminalreporter.write_sep("-", f"seconds per module ({sum(seconds.values()):.0f} s in all)")
        for module, total in sorted(seconds.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{total:8.1f} s  {module}")
    lines = [f"{report.nodeid}: {value}" for outcome in ("passed", "failed")
             for report in terminalreporter.stats.get(outcome, []) if getattr(report, "when", "") == "call"
             for name, value in getattr(report, "user_properties", []) if name.startswith("screenshot")]
    if lines:
        terminalreporter.write_sep("-", "screenshots")
        for line in lines:
            terminalreporter.write_line(line)
