"""The stack model (services.py) as these settings shape it on a runtime: a role the settings run N
times (kafka.brokers, flink.taskmanagers) becomes N instances, the services docker.disabled_services
leaves out are gone, and each instance binds the ports the settings give it."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from streamctl.config import Settings, broker_ports
from streamctl.services import ServiceSpec, for_runtime

# Roles that the settings may multiply (kafka.brokers, flink.taskmanagers).
SCALED_ROLES: dict[str, Callable[[Settings], int]] = {
    "kafka": lambda s: s.kafka.brokers, "flink-taskmanager": lambda s: s.flink.taskmanagers}


def stack(settings: Settings, runtime: str = "local") -> tuple[ServiceSpec, ...]:
    """The stack as these settings ask for it on this runtime: a role that runs N times becomes
    `role-1`..`role-N`, and whatever depended on the role depends on every instance."""
    disabled = settings.docker.disabled() if runtime == "docker" else ()
    instances: dict[str, list[str]] = {}
    specs: list[ServiceSpec] = []
    for spec in for_runtime(runtime, disabled):
        count = SCALED_ROLES[spec.name](settings) if spec.name in SCALED_ROLES else 1
        if count == 1:
            instances[spec.name] = [spec.name]
            specs.append(spec)
            continue
        names = [f"{spec.name}-{n}" for n in range(1, count + 1)]
        instances[spec.name] = names
        specs += [replace(spec, name=name, description=f"{spec.description} {n}/{count}", role=spec.name, instance=n)
                  for n, name in enumerate(names, 1)]
    return tuple(replace(spec, depends_on=tuple(i for dep in spec.depends_on for i in instances.get(dep, [dep])))
                 for spec in specs)


def spec_ports(settings: Settings, spec: ServiceSpec) -> list[tuple[str, int]]:
    """(setting name, port) for each port the service binds; a further broker's are derived."""
    if spec.runs_as == "kafka" and spec.instance > 1:
        client, controller = broker_ports(settings, spec.instance)
        return [("kafka", client), ("kafka_controller", controller)]
    return [(port.setting, getattr(settings.ports, port.setting)) for port in spec.ports]
