"""The local runtime finds its service classes (runtimes/local/runtime.py, local_service_classes):
every service it runs has exactly one, and no class runs a role the model does not have."""

from __future__ import annotations

import pytest

from streamctl.runtimes.local import runtime
from streamctl.runtimes.local.base import LocalService
from streamctl.services import CLIENT_RUNTIMES, for_runtime, services_only


def roles_run_locally() -> set[str]:
    """What a runtime that runs processes of this machine (local, external) runs as one."""
    return {spec.runs_as for name in ("local", *CLIENT_RUNTIMES) for spec in services_only(for_runtime(name))}


def test_every_service_the_local_runtimes_run_has_its_class():
    classes = runtime.local_service_classes()
    missing = roles_run_locally() - set(classes)
    assert not missing, f"no class in streamctl/runtimes/local/ has name = one of {sorted(missing)}"
    assert set(classes) <= roles_run_locally(), "a local class runs a role the model does not run locally"
    assert runtime.SERVICE_CLASSES == classes


def test_a_role_with_two_classes_is_refused(monkeypatch):
    class Twin(LocalService):
        name = "producer"

    Twin.__module__ = "streamctl.runtimes.local.python_apps"
    monkeypatch.setattr("streamctl.runtimes.local.python_apps.Twin", Twin, raising=False)
    with pytest.raises(TypeError, match="two local classes run producer"):
        runtime.local_service_classes()
