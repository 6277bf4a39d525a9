"""`streamctl load` exits 1 when the failure ratio is above --max-failure-ratio (README, Exit codes):
real Locust against a port where nothing answers, so every request fails."""

from __future__ import annotations

import pytest

from streamctl.exit_codes import ExitCode

pytestmark = pytest.mark.integration


def test_load_above_the_failure_ratio_exits_1(cli, tmp_path):
    code, out, _ = cli("--state-dir", str(tmp_path), "load", "--host", "http://127.0.0.1:9", "--users", "2",
                       "--spawn-rate", "2", "--duration", "3s")
    assert code == ExitCode.CHECK_FAILED
    assert "failure ratio 100.00% is above 1.00%" in " ".join(out.split())
