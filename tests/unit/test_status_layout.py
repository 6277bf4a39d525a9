"""`streamctl status` stays readable at 80 columns (and in pipes, where rich assumes 80), and uses the
full width when there is one."""

from __future__ import annotations

import io

from rich.console import Console

from streamctl.cli.commands.stack import status_tables
from streamctl.runtimes.model import ServiceStatus, StackStatus

SERVICES = [
    ServiceStatus("postgres", "running", True, "accepting connections", 4242, 3725, 41 * 2**20,
                  "postgresql://streamctl@127.0.0.1:5432/ecommerce"),
    ServiceStatus("flink-jobmanager", "running", True, "Flink 1.20.5 REST up", 4243, 3725, 320 * 2**20,
                  "http://127.0.0.1:8081"),
    ServiceStatus("flink-taskmanager", "running", False, "registered, 2 slots; the job keeps restarting", 4244, 12,
                  590 * 2**20, ""),
    ServiceStatus("elasticsearch", "stopped", False, "not running", None, None, 0, "http://127.0.0.1:9200"),
]


def render(width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    for table in status_tables(StackStatus("local", SERVICES, "RUNNING"), "stack 'default' (local runtime)", width):
        console.print(table)
    return console.file.getvalue().splitlines()


def test_at_80_columns_no_name_or_endpoint_is_broken():
    lines = render(80)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for service in SERVICES:
        assert service.name in text, service.name
        if service.endpoint:
            assert service.endpoint in text, service.endpoint
    assert "bmanager" not in text.replace("flink-jobmanager", "")


def test_with_160_columns_one_table_holds_everything():
    lines = render(160)
    header = next(line for line in lines if "service" in line)
    assert "endpoint" in header and "detail" in header
    assert any("postgresql://streamctl@127.0.0.1:5432/ecommerce" in line and "postgres" in line for line in lines)
