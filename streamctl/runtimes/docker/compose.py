"""Read a Compose file into typed models: variable interpolation, then validation. Pure functions.

The subset of the Compose Specification streamctl applies itself; a key outside it is an error
rather than something silently ignored. `x-` keys are extensions and are skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from streamctl.errors import ConfigError
from streamctl.services import SERVICE, ServiceSpec, by_name, services_within, start_order

STARTED = "service_started"
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"
CONDITIONS = (STARTED, HEALTHY, COMPLETED)

SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "ports", "volumes", "depends_on",
    "healthcheck", "init", "stop_grace_period", "mem_limit", "user", "working_dir", "restart",
    "labels", "hostname", "ulimits", "shm_size",
}
TOP_KEYS = {"name", "services", "volumes", "networks", "version"}


class ComposeError(ConfigError):
    """The compose file cannot be applied; the message names the file and the key."""


# -- interpolation ----------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def interpolate(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """Compose-style substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR?error}, ${VAR:+alt}, ${VAR+alt}, $$ for a literal $. Defaults may nest. An unset variable
    with no default is an error (Compose would substitute an empty string and warn)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("${", i):
            end = _closing_brace(text, i + 2, where)
            out.append(_substitute(text[i + 2:end], variables, where))
            i = end + 1
            continue
        match = _NAME.match(text, i + 1)
        if match is None:
            raise ComposeError(f"{where}: a lone $ in {text!r}", hint="write $$ for a literal $")
        out.append(_lookup(match.group(), variables, where))
        i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int, where: str) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ComposeError(f"{where}: unclosed ${{ in {text!r}", hint="close it with }")


def _lookup(name: str, variables: Mapping[str, str], where: str) -> str:
    if name not in variables:
        raise ComposeError(f"{where}: variable {name} is not set", hint=f"set {name} or give it a default: ${{{name}:-value}}")
    return variables[name]


def _substitute(expression: str, variables: Mapping[str, str], where: str) -> str:
    match = _NAME.match(expression)
    if match is None:
        raise ComposeError(f"{where}: invalid variable expression ${{{expression}}}", hint="use ${NAME} or ${NAME:-default}")
    name, rest = match.group(), expression[match.end():]
    value = variables.get(name)
    if not rest:
        return _lookup(name, variables, where)
    for operator in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(operator):
            argument = interpolate(rest[len(operator):], variables, where)
            unset_or_empty = value is None or (operator.startswith(":") and value == "")
            if operator in (":-", "-"):
                return argument if unset_or_empty or value is None else value
            if operator in (":?", "?"):
                if unset_or_empty or value is None:
                    raise ComposeError(f"{where}: {name}: {argument or 'required variable is not set'}",
                                       hint=f"set {name}")
                return value
            return "" if unset_or_empty else argument
    raise ComposeError(f"{where}: invalid variable expression ${{{expression}}}", hint="use ${NAME} or ${NAME:-default}")


def interpolate_tree(node: Any, variables: Mapping[str, str], where: str = "") -> Any:
    """Interpolate every string value (not keys) of a parsed YAML tree; `x-` subtrees are kept as they are."""
    if isinstance(node, str):
        return interpolate(node, variables, where)
    if isinstance(node, list):
        return [interpolate_tree(item, variables, f"{where}[{n}]") for n, item in enumerate(node)]
    if isinstance(node, dict):
        return {key: value if str(key).startswith("x-") else interpolate_tree(value, variables, f"{where}.{key}".lstrip("."))
                for key, value in node.items()}
    return node


# -- models -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Port:
    container_port: int
    host_port: int | None
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True)
class Mount:
    source: str  # a volume name or a host path
    target: str
    kind: str  # volume | bind
    read_only: bool = False


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]
    interval_s: float = 30.0
    timeout_s: float = 30.0
    retries: int = 3
    start_period_s: float = 0.0

    def budget_s(self) -> float:
        """How long it may take to report healthy before Docker itself calls it unhealthy."""
        return self.start_period_s + (self.interval_s + self.timeout_s) * self.retries


@dataclass(frozen=True)
class Build:
    context: str
    dockerfile: str = "Dockerfile"
    args: tuple[tuple[str, str], ...] = ()
    stage: str = ""  # x-streamctl-stage: extra files streamctl copies into the context before building


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    build: Build | None = None
    command: tuple[str, ...] | str | None = None
    entrypoint: tuple[str, ...] | str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    ports: tuple[Port, ...] = ()
    mounts: tuple[Mount, ...] = ()
    depends_on: tuple[tuple[str, str], ...] = ()  # (service, condition)
    healthcheck: Healthcheck | None = None
    init: bool = False
    stop_grace_s: float = 10.0
    mem_limit: int | None = None
    shm_size: int | None = None
    user: str | None = None
    working_dir: str | None = None
    restart: str = "no"
    labels: tuple[tuple[str, str], ...] = ()
    hostname: str | None = None
    ulimits: tuple[tuple[str, int, int], ...] = ()

    def config_hash(self, image_id: str = "") -> str:
        """Changes whenever anything that shapes the container changes, the image's content included."""
        data = json.dumps({**asdict(self), "image_id": image_id}, sort_keys=True, default=str)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Project:
    name: str
    services: dict[str, Service]
    volumes: tuple[str, ...] = ()
    source: str = ""
    disabled: tuple[str, ...] = field(default=())

    def start_order(self) -> list[str]:
        return [spec.name for spec in start_order(self.specs())]

    def specs(self) -> tuple[ServiceSpec, ...]:
        return tuple(ServiceSpec(s.name, s.image, tuple(d for d, _ in s.depends_on)) for s in self.services.values())

    def required_state(self, name: str) -> str:
        """What `up` waits for before a service counts as up: completed when a dependent needs it to
        have finished, healthy when it has a healthcheck, else started."""
        wanted = {condition for s in self.services.values() for dep, condition in s.depends_on if dep == name}
        if COMPLETED in wanted:
            return COMPLETED
        if self.services[name].healthcheck is not None:
            return HEALTHY
        return STARTED


# -- parsing ----------------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)b?", re.IGNORECASE)


def parse_duration(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ComposeError(f"{where}: {value!r} is not a duration", hint="write it like 5s, 1m30s or 500ms")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_size(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.fullmatch(str(value).strip())
    if match is None:
        raise ComposeError(f"{where}: {value!r} is not a size", hint="write it like 512m or 2g")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit])


def parse_port(value: Any, where: str) -> Port:
    if isinstance(value, dict):
        return Port(int(value["target"]), int(value["published"]) if value.get("published") else None,
                    str(value.get("host_ip", "")), str(value.get("protocol", "tcp")))
    text = str(value)
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    parts = text.rsplit(":", 2)
    try:
        if len(parts) == 1:
            return Port(int(parts[0]), None, "", protocol)
        if len(parts) == 2:
            return Port(int(parts[1]), int(parts[0]), "", protocol)
        return Port(int(parts[2]), int(parts[1]) if parts[1] else None, parts[0].strip("[]"), protocol)
    except ValueError:
        raise ComposeError(f"{where}: {value!r} is not a port mapping",
                           hint="write it like 127.0.0.1:9092:9092 or 9092:9092") from None


def parse_mount(value: Any, where: str, volumes: set[str]) -> Mount:
    parts = str(value).split(":")
    if len(parts) not in (2, 3):
        raise ComposeError(f"{where}: {value!r} is not a volume mapping", hint="write it like data:/var/lib/data[:ro]")
    source, target = parts[0], parts[1]
    read_only = len(parts) == 3 and parts[2] == "ro"
    if source.startswith((".", "/", "~")):
        return Mount(source, target, "bind", read_only)
    if source not in volumes:
        raise ComposeError(f"{where}: volume {source!r} is not declared under the top-level volumes:",
                           hint=f"add `{source}:` under volumes:")
    return Mount(source, target, "volume", read_only)


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """A mapping or a list of KEY=VALUE strings, as environment:, labels: and build.args: allow."""
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple((str(k), "" if v is None else _scalar(v)) for k, v in value.items())
    if isinstance(value, list):
        pairs = []
        for item in value:
            key, sep, val = str(item).partition("=")
            if not sep:
                raise ComposeError(f"{where}: {item!r} is not KEY=VALUE", hint="write KEY=VALUE")
            pairs.append((key, val))
        return tuple(pairs)
    raise ComposeError(f"{where} must be a mapping or a list of KEY=VALUE", hint=f"fix {where}")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _command(value: Any, where: str) -> tuple[str, ...] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    raise ComposeError(f"{where} must be a string or a list", hint=f"fix {where}")


def _healthcheck(value: Any, where: str) -> Healthcheck | None:
    if value is None or value.get("disable"):
        return None
    test = value.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not isinstance(test, list) or not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise ComposeError(f"{where}.test must be [CMD, ...], [CMD-SHELL, ...] or a string", hint=f"fix {where}.test")
    if test[0] == "NONE":
        return None
    return Healthcheck(tuple(str(t) for t in test),
                       parse_duration(value.get("interval", "30s"), f"{where}.interval"),
                       parse_duration(value.get("timeout", "30s"), f"{where}.timeout"),
                       int(value.get("retries", 3)),
                       parse_duration(value.get("start_period", "0s"), f"{where}.start_period"))


def _depends_on(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple((str(name), STARTED) for name in value)
    if isinstance(value, dict):
        pairs = []
        for name, spec in value.items():
            condition = (spec or {}).get("condition", STARTED)
            if condition not in CONDITIONS:
                raise ComposeError(f"{where}.{name}.condition {condition!r} is not one of {', '.join(CONDITIONS)}",
                                   hint=f"fix {where}.{name}")
            pairs.append((str(name), condition))
        return tuple(pairs)
    raise ComposeError(f"{where} must be a list or a mapping", hint=f"fix {where}")


def _build(value: Any, where: str, base_dir: Path) -> Build | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"context": value}
    context = Path(value.get("context", "."))
    if not context.is_absolute():
        context = (base_dir / context).resolve()
    return Build(str(context), str(value.get("dockerfile", "Dockerfile")),
                 _pairs(value.get("args"), f"{where}.args"), str(value.get("x-streamctl-stage", "")))


def _service(name: str, raw: Any, volumes: set[str], base_dir: Path) -> Service:
    where = f"services.{name}"
    if not isinstance(raw, dict):
        raise ComposeError(f"{where} must be a mapping", hint=f"fix {where}")
    unknown = sorted(k for k in raw if k not in SERVICE_KEYS and not str(k).startswith("x-"))
    if unknown:
        raise ComposeError(f"{where}: {', '.join(unknown)} is not supported by streamctl's engine",
                           hint=f"supported keys: {', '.join(sorted(SERVICE_KEYS))}")
    build = _build(raw.get("build"), f"{where}.build", base_dir)
    image = raw.get("image") or (f"{name}:latest" if build else None)
    if not image:
        raise ComposeError(f"{where} has neither image: nor build:", hint="give it an image")
    ulimits = []
    for key, limit in (raw.get("ulimits") or {}).items():
        soft, hard = (limit, limit) if isinstance(limit, int) else (limit["soft"], limit["hard"])
        ulimits.append((str(key), int(soft), int(hard)))
    return Service(
        name=name, image=str(image), build=build,
        command=_command(raw.get("command"), f"{where}.command"),
        entrypoint=_command(raw.get("entrypoint"), f"{where}.entrypoint"),
        environment=_pairs(raw.get("environment"), f"{where}.environment"),
        ports=tuple(parse_port(p, f"{where}.ports") for p in raw.get("ports") or ()),
        mounts=tuple(parse_mount(v, f"{where}.volumes", volumes) for v in raw.get("volumes") or ()),
        depends_on=_depends_on(raw.get("depends_on"), f"{where}.depends_on"),
        healthcheck=_healthcheck(raw.get("healthcheck"), f"{where}.healthcheck"),
        init=bool(raw.get("init", False)),
        stop_grace_s=parse_duration(raw.get("stop_grace_period", "10s"), f"{where}.stop_grace_period"),
        mem_limit=parse_size(raw["mem_limit"], f"{where}.mem_limit") if raw.get("mem_limit") else None,
        shm_size=parse_size(raw["shm_size"], f"{where}.shm_size") if raw.get("shm_size") else None,
        user=str(raw["user"]) if raw.get("user") is not None else None,
        working_dir=raw.get("working_dir"),
        restart=str(raw.get("restart", "no")),
        labels=_pairs(raw.get("labels"), f"{where}.labels"),
        hostname=raw.get("hostname"),
        ulimits=tuple(ulimits),
    )


def parse_project(data: Any, variables: Mapping[str, str], base_dir: Path, source: str = "compose.yaml",
                  name: str | None = None, disabled: tuple[str, ...] = ()) -> Project:
    """A validated Project from an already-loaded YAML tree."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict) or not data["services"]:
        raise ComposeError(f"{source} has no services: mapping", hint="see the Compose Specification")
    unknown = sorted(k for k in data if k not in TOP_KEYS and not str(k).startswith("x-"))
    if unknown:
        raise ComposeError(f"{source}: top-level {', '.join(unknown)} is not supported", hint=f"use {', '.join(sorted(TOP_KEYS))}")
    data = interpolate_tree(data, variables)
    volumes = set((data.get("volumes") or {}).keys())
    for extra in disabled:
        if extra not in data["services"]:
            raise ComposeError(f"cannot disable {extra!r}: {source} has no such service",
                               hint=f"services: {', '.join(data['services'])}")
    services = {str(n): _service(str(n), raw, volumes, base_dir)
                for n, raw in data["services"].items() if n not in disabled}
    project = Project(str(name or data.get("name") or "streamctl"), services, tuple(sorted(volumes)), source,
                      tuple(disabled))
    _check(project)
    return project


def _check(project: Project) -> None:
    for service in project.services.values():
        for dep, condition in service.depends_on:
            if dep in project.disabled:
                raise ComposeError(f"{service.name} depends on {dep}, which is disabled",
                                   hint=f"disable {service.name} too, or enable {dep}")
            if dep not in project.services:
                raise ComposeError(f"services.{service.name}.depends_on names unknown service {dep!r}",
                                   hint=f"services: {', '.join(project.services)}")
            if condition == HEALTHY and project.services[dep].healthcheck is None:
                raise ComposeError(f"{service.name} waits for {dep} to be healthy, but {dep} has no healthcheck",
                                   hint=f"give {dep} a healthcheck or use service_started")
    project.start_order()  # raises DependencyCycle naming the cycle


def load_project(path: Path, variables: Mapping[str, str], name: str | None = None,
                 disabled: tuple[str, ...] = ()) -> Project:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ComposeError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ComposeError(f"{path}{where} is not valid YAML", hint="fix the YAML syntax") from None
    return parse_project(data, variables, path.parent, str(path), name, disabled)


def with_stack_model(project: Project, specs: tuple[ServiceSpec, ...], published: dict[str, list[int]],
                     bind_address: str) -> Project:
    """The project with each service's `ports:` and `depends_on:` taken from the stack model.
    `published`: for each service, the host port of each of its model ports (spec_ports)."""
    model = by_name(specs)
    missing = [s.name for s in specs if s.kind == SERVICE and s.name not in project.services]
    if missing:
        raise ComposeError(f"{project.source} has no service {', '.join(missing)}, which the stack needs",
                           hint="add it, or leave it out with docker.disabled_services")
    extra = [name for name in project.services if name not in model]
    if extra:  # nothing would start it: the sequence walks the model
        raise ComposeError(f"{project.source}: service {', '.join(extra)} is not in streamctl's stack model",
                           hint="remove it, or add it to streamctl/services.py")
    waits = services_within(specs, set(project.services))
    services = {}
    for name, service in project.services.items():
        spec = model[name]
        if service.ports or service.depends_on:
            raise ComposeError(f"{project.source}: services.{name} declares ports:/depends_on:, which come from"
                               " streamctl's stack model", hint="remove them; ports are the ports.* settings")
        ports = tuple(Port(port.in_network, host_port, bind_address)
                      for port, host_port in zip(spec.ports, published[name], strict=True) if port.in_network)
        depends_on = tuple((dep, HEALTHY if project.services[dep].healthcheck else STARTED) for dep in waits[name])
        services[name] = replace(service, ports=ports, depends_on=depends_on)
    derived = replace(project, services=services)
    _check(derived)
    return derived
