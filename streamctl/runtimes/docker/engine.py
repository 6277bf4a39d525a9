"""Apply a Compose project to a Docker engine through the Docker SDK: build, create, start in
dependency order (independent services in parallel), wait on each service's condition, and take it
all down again. Every object it creates carries the project's labels; `down` works from the labels
alone, so it needs neither the compose file nor the settings that produced it.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from streamctl.errors import PreflightError, ServiceUnavailable, StartupError
from streamctl.runtimes.docker.compose import COMPLETED, HEALTHY, STARTED, Project, Service
from streamctl.runtimes.model import NO_PROGRESS, Progress
from streamctl.services import by_name

LABEL_PROJECT = "com.streamctl.project"
LABEL_SERVICE = "com.streamctl.service"
LABEL_HASH = "com.streamctl.config-hash"
LABEL_ORDER = "com.streamctl.start-order"
LOG_LINES = 15
DEFAULT_WAIT_S = 300.0

Stager = Callable[[str, Path], None]  # (x-streamctl-stage name, build context copy) -> fills it in


def connect(timeout_s: int = 120):
    """A client for the engine DOCKER_HOST names (or the default socket), with user-facing errors."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout_s)
        client.ping()
        return client
    except DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise PreflightError("no permission to use the Docker socket",
                                 hint="add your user to the docker group (then log in again), or run as root") from None
        raise PreflightError(f"no Docker engine answers ({_short(text)})",
                             hint="start Docker (e.g. `sudo systemctl start docker`) or set DOCKER_HOST; "
                                  "or use --runtime local") from None


def build_image(api, context: Path, tag: str, args: dict[str, str], labels: dict[str, str],
                dockerfile: str = "Dockerfile", what: str = "", hint: str = "") -> None:
    """docker build without BuildKit or pulls; a failure carries the build's last output lines."""
    from docker.errors import APIError

    lines: list[str] = []
    try:
        for chunk in api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=args, rm=True,
                               forcerm=True, pull=False, decode=True, labels=labels):
            lines.extend(line for line in chunk.get("stream", "").splitlines() if line.strip())
            if "error" in chunk:
                raise StartupError(f"{what}building {tag} failed: {_short(chunk['error'], 300)}",
                                   details="\n".join(lines[-LOG_LINES:]), hint=hint)
    except APIError as exc:
        raise StartupError(f"{what}building {tag} failed: {_short(exc.explanation or str(exc))}",
                           details="\n".join(lines[-LOG_LINES:]), hint=hint) from None


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def image_key(service: str) -> str:
    """The docker.images setting of a compose service's image: the model's ServiceSpec.image."""
    spec = by_name().get(service)
    return spec.image if spec and spec.image else service.replace("-", "_")


@dataclass
class ServiceOutcome:
    name: str
    action: str  # created | recreated | started | unchanged
    detail: str = ""


@dataclass
class UpReport:
    outcomes: dict[str, ServiceOutcome] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    service: str
    config_hash: str
    order: int
    state: str  # running | exited | created | ...


class Engine:
    def __init__(self, client, project: Project, work_dir: Path, stager: Stager | None = None,
                 wait_s: float = DEFAULT_WAIT_S):
        self.client = client
        self.api = client.api
        self.project = project
        self.work_dir = work_dir
        self.stager = stager
        self.wait_s = wait_s
        self._image_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- names --------------------------------------------------------------------------------------
    @property
    def network_name(self) -> str:
        return f"{self.project.name}_default"

    def volume_name(self, volume: str) -> str:
        return f"{self.project.name}_{volume}"

    def container_name(self, service: str) -> str:
        return f"{self.project.name}-{service}"

    def _labels(self, **extra: str) -> dict[str, str]:
        return {LABEL_PROJECT: self.project.name, **extra}

    # -- what exists ----------------------------------------------------------------------------------
    def containers(self) -> dict[str, ContainerInfo]:
        found = {}
        for c in self.api.containers(all=True, filters={"label": f"{LABEL_PROJECT}={self.project.name}"}):
            labels = c.get("Labels") or {}
            service = labels.get(LABEL_SERVICE, "")
            found[service] = ContainerInfo(c["Id"], c["Names"][0].lstrip("/"), service, labels.get(LABEL_HASH, ""),
                                           int(labels.get(LABEL_ORDER, "0")), c.get("State", ""))
        return found

    # -- up -------------------------------------------------------------------------------------------
    def prepare(self, progress: Progress = NO_PROGRESS) -> list[str]:
        """Images (built or found), the network and the volumes: what any service's start needs.
        Returns the images it built."""
        report = UpReport()
        self._ensure_images(progress, report)
        self._ensure_network()
        for volume in self.project.volumes:
            self._ensure_volume(volume)
        return report.built

    def start_service(self, name: str, progress: Progress = NO_PROGRESS) -> ServiceOutcome:
        """One service, created or started unless it already runs with this configuration, and waited
        for until it reaches the state its dependents need. Its dependencies are the caller's affair."""
        order = {n: i for i, n in enumerate(self.project.start_order())}
        return self._up_service(self.project.services[name], self.containers().get(name), order[name], progress,
                                lambda: None)

    def stop_service(self, name: str) -> str:
        info = self.containers().get(name)
        if info is None:
            return "not running"
        self._remove(info.id)
        return f"removed {info.name}"

    def _ensure_images(self, progress: Progress, report: UpReport) -> None:
        from docker.errors import APIError, ImageNotFound

        # Built images first: a service may run an image another one builds.
        for service in sorted(self.project.services.values(), key=lambda s: s.build is None):
            if service.image in self._image_ids:
                continue
            if service.build is not None:
                progress.update(service.name, "building", service.image)
                self._image_ids[service.image] = self._build(service)
                report.built.append(service.image)
                continue
            try:
                self._image_ids[service.image] = self.api.inspect_image(service.image)["Id"]
                continue
            except ImageNotFound:
                pass
            progress.update(service.name, "pulling", service.image)
            try:
                self._image_ids[service.image] = self.client.images.pull(service.image).id
            except APIError as exc:
                progress.update(service.name, "failed", "image not available")
                raise StartupError(
                    f"{service.name}: image {service.image} is not on this machine and cannot be pulled "
                    f"({_short(exc.explanation or str(exc))})",
                    hint=f"set docker.images.{image_key(service.name)} to an image you have (see `streamctl build-images`), "
                         f"or leave {service.name} out with docker.disabled_services") from None

    def _build(self, service: Service) -> str:
        assert service.build is not None
        context = self.work_dir / "build" / service.name
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(service.build.context, context, symlinks=False)
        if service.build.stage:
            if self.stager is None:
                raise StartupError(f"{service.name}: build stage {service.build.stage!r} has no stager")
            self.stager(service.build.stage, context)
        build_image(self.api, context, service.image, dict(service.build.args), self._labels(),
                    service.build.dockerfile, what=f"{service.name}: ", hint=f"Dockerfile in {service.build.context}")
        return self.api.inspect_image(service.image)["Id"]

    def _ensure_network(self) -> None:
        if not self.api.networks(names=[self.network_name]):
            self.api.create_network(self.network_name, driver="bridge", labels=self._labels())

    def _ensure_volume(self, volume: str) -> None:
        from docker.errors import NotFound

        try:
            self.api.inspect_volume(self.volume_name(volume))
        except NotFound:
            self.api.create_volume(self.volume_name(volume), labels=self._labels())

    def _up_service(self, service: Service, existing: ContainerInfo | None, order: int,
                    progress: Progress, on_started: Callable[[], None]) -> ServiceOutcome:
        wanted_hash = service.config_hash(self._image_ids[service.image])
        required = self.project.required_state(service.name)
        if existing is not None and existing.config_hash == wanted_hash:
            state = self.api.inspect_container(existing.id)["State"]
            if state["Running"] or (required == COMPLETED and state["Status"] == "exited" and state["ExitCode"] == 0):
                action = "unchanged"
            else:
                progress.update(service.name, "starting")
                self._start(service, existing.id)
                action = "started"
            container_id = existing.id
        else:
            if existing is not None:
                progress.update(service.name, "recreating", "configuration changed")
                self._remove(existing.id)
            progress.update(service.name, "creating")
            container_id = self._create(service, wanted_hash, order)
            self._start(service, container_id)
            action = "recreated" if existing is not None else "created"
        on_started()
        detail = self._wait(service, container_id, required, progress)
        progress.update(service.name, "ready", f"{action}; {detail}")
        return ServiceOutcome(service.name, action, detail)

    def _create(self, service: Service, config_hash: str, order: int) -> str:
        import docker

        api = self.api
        binds = {}
        for mount in service.mounts:
            source = self.volume_name(mount.source) if mount.kind == "volume" else str(Path(mount.source).expanduser().resolve())
            binds[source] = {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
        port_bindings = {f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port) if p.host_ip else p.host_port
                         for p in service.ports}
        restart = None if service.restart in ("no", "") else {"Name": service.restart}
        host_config = api.create_host_config(
            binds=binds or None, port_bindings=port_bindings or None, init=service.init or None,
            mem_limit=service.mem_limit, shm_size=service.shm_size, restart_policy=restart,
            ulimits=[docker.types.Ulimit(name=n, soft=s, hard=h) for n, s, h in service.ulimits] or None,
            network_mode=self.network_name,
        )
        networking = api.create_networking_config({
            self.network_name: api.create_endpoint_config(aliases=[service.name]),
        })
        healthcheck = None
        if service.healthcheck is not None:
            h = service.healthcheck
            healthcheck = {"test": list(h.test), "interval": int(h.interval_s * 1e9), "timeout": int(h.timeout_s * 1e9),
                           "retries": h.retries, "start_period": int(h.start_period_s * 1e9)}
        labels = {**dict(service.labels), **self._labels(**{LABEL_SERVICE: service.name, LABEL_HASH: config_hash,
                                                            LABEL_ORDER: str(order)})}
        name = self.container_name(service.name)
        self._remove_stray(name)
        created = api.create_container(
            service.image, command=_argv(service.command), entrypoint=_argv(service.entrypoint), name=name,
            environment=dict(service.environment), ports=[(p.container_port, p.protocol) for p in service.ports] or None,
            labels=labels, healthcheck=healthcheck, hostname=service.hostname or service.name, user=service.user,
            working_dir=service.working_dir, host_config=host_config, networking_config=networking,
            stop_timeout=max(1, round(service.stop_grace_s)),
        )
        return created["Id"]

    def _remove_stray(self, name: str) -> None:
        """A container of that name without our labels (or from an interrupted `up`) would block creation."""
        from docker.errors import NotFound

        try:
            info = self.api.inspect_container(name)
        except NotFound:
            return
        labels = info["Config"].get("Labels") or {}
        if labels.get(LABEL_PROJECT) != self.project.name:
            raise StartupError(f"a container named {name} exists and is not part of stack {self.project.name}",
                               hint=f"remove it (`docker rm -f {name}`) or choose another stack_name")
        self._remove(info["Id"])

    def _start(self, service: Service, container_id: str) -> None:
        from docker.errors import APIError

        try:
            self.api.start(container_id)
        except APIError as exc:
            text = exc.explanation or str(exc)
            if "port is already allocated" in text or "address already in use" in text:
                ports = ", ".join(f"{p.host_ip or '0.0.0.0'}:{p.host_port}" for p in service.ports)
                raise PreflightError(f"{service.name}: a port it publishes is already taken ({ports})",
                                     hint="stop what holds it, or change the port in the settings (`streamctl config`)") from None
            raise StartupError(f"{service.name}: the container would not start: {_short(text, 300)}") from None

    def _wait(self, service: Service, container_id: str, required: str, progress: Progress) -> str:
        budget = service.healthcheck.budget_s() + 10 if (required == HEALTHY and service.healthcheck) else self.wait_s
        deadline = time.monotonic() + min(budget, self.wait_s)
        progress.update(service.name, "waiting", {HEALTHY: "for its healthcheck", COMPLETED: "for it to finish"}.get(required, ""))
        restarts_before = self.api.inspect_container(container_id).get("RestartCount", 0)
        while True:
            info = self.api.inspect_container(container_id)
            state = info["State"]
            health = (state.get("Health") or {}).get("Status", "")
            crashed = state.get("Restarting") or info.get("RestartCount", 0) > restarts_before
            if state["Status"] in ("exited", "dead") or (crashed and required != COMPLETED):
                # a restart policy would start it again and again: while starting, that is a failure
                code = state.get("ExitCode")
                if required == COMPLETED and code == 0:
                    return "completed"
                raise self._exited(service, container_id, state)
            if required == HEALTHY and health == "healthy":
                return "healthy"
            if required == STARTED and state["Running"]:
                return "running"
            if health == "unhealthy":
                log = (state.get("Health") or {}).get("Log") or [{}]
                retries = service.healthcheck.retries if service.healthcheck else "several"
                raise StartupError(f"{service.name} is unhealthy: its healthcheck failed {retries} times"
                                   f" (last output: {_short(log[-1].get('Output', '') or 'none', 200)})",
                                   details=self.tail(container_id), hint=f"see `streamctl logs {service.name}`")
            if time.monotonic() > deadline:
                raise StartupError(f"{service.name} was not {required.removeprefix('service_').replace('_', ' ')} "
                                   f"after {min(budget, self.wait_s):.0f} s",
                                   details=self.tail(container_id), hint=f"see `streamctl logs {service.name}`")
            time.sleep(0.5)

    def _exited(self, service: Service, container_id: str, state: dict) -> StartupError:
        code = state.get("ExitCode")
        log = self.tail(container_id)
        return StartupError(f"{service.name} exited with code {code} while starting", details=log,
                            hint=exit_hint(service.name, code, bool(state.get("OOMKilled")), log))

    def tail(self, container_id: str, lines: int = LOG_LINES) -> str:
        try:
            return self.api.logs(container_id, tail=lines).decode(errors="replace").rstrip()
        except Exception:  # the log is a courtesy in an error message; never hide the error itself
            return ""

    # -- down -----------------------------------------------------------------------------------------
    def down(self, purge: bool = False, progress: Progress = NO_PROGRESS) -> list[tuple[str, str]]:
        results = []
        for info in sorted(self.containers().values(), key=lambda c: -c.order):
            progress.update(info.service, "stopping")
            self._remove(info.id)
            progress.update(info.service, "removed", info.name)
            results.append((info.service, f"removed {info.name}"))
        label = {"label": f"{LABEL_PROJECT}={self.project.name}"}
        for network in self.api.networks(filters=label):
            self.api.remove_network(network["Id"])
            results.append(("network", f"removed {network['Name']}"))
        if purge:
            for volume in self.api.volumes(filters=label).get("Volumes") or []:
                self.api.remove_volume(volume["Name"])
                results.append(("volume", f"removed {volume['Name']}"))
        return results

    def _remove(self, container_id: str) -> None:
        from docker.errors import NotFound

        try:
            self.api.stop(container_id)  # the container's own stop timeout (stop_grace_period)
            self.api.remove_container(container_id, force=True)
        except NotFound:
            pass

    # -- inspection -----------------------------------------------------------------------------------
    def inspect(self, service: str) -> dict | None:
        info = self.containers().get(service)
        return self.api.inspect_container(info.id) if info else None

    def logs(self, service: str, tail: int, follow: bool) -> Iterator[str]:
        info = self.containers().get(service)
        if info is None:
            raise ServiceUnavailable(f"{service} has no container", hint="start the stack with `streamctl up`")
        if not follow:
            text = self.api.logs(info.id, tail=tail).decode(errors="replace") if tail > 0 else ""
            yield from text.splitlines()
            return
        buffer = b""
        for chunk in self.api.logs(info.id, tail=tail, stream=True, follow=True):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line.decode(errors="replace")


def _argv(value):
    if value is None:
        return None
    return list(value) if isinstance(value, tuple) else value


def exit_hint(service: str, code: int | None, oom_killed: bool, log: str) -> str:
    """What to do about a container that exited while starting, from what its log says."""
    if oom_killed or code == 137:
        return ("exit 137 is a SIGKILL, usually the kernel's out-of-memory killer: give Docker more memory, "
                "or lower this service's heap/memory settings")
    if "password authentication failed" in log:
        return ("the PostgreSQL volume was created with another password than this state directory's secrets.json "
                "(the state directory was deleted without `down --purge`): `streamctl down --purge` starts afresh")
    return f"see `streamctl logs {service}`"
