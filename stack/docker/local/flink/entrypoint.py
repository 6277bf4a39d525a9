"""`jobmanager` or `taskmanager`: merge FLINK_PROPERTIES ("key: value" lines) into conf/config.yaml
(flat keys, replacing the distribution's values), then run the process in the foreground."""
import os
import sys

import yaml

CONFIG = "/opt/flink/conf/config.yaml"
SCRIPTS = {"jobmanager": "jobmanager.sh", "taskmanager": "taskmanager.sh"}


def flatten(node, prefix=""):
    for key, value in (node or {}).items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


if len(sys.argv) < 2 or sys.argv[1] not in SCRIPTS:
    os.execvp(sys.argv[1], sys.argv[1:]) if len(sys.argv) > 1 else sys.exit("usage: jobmanager | taskmanager")
with open(CONFIG) as f:
    config = dict(flatten(yaml.safe_load(f)))
for line in os.environ.get("FLINK_PROPERTIES", "").splitlines():
    key, sep, value = line.partition(":")
    if sep and key.strip() and not key.lstrip().startswith("#"):
        config[key.strip()] = yaml.safe_load(value.strip()) if value.strip() else ""
with open(CONFIG, "w") as f:
    yaml.safe_dump(config, f, width=10_000)
os.execv("/bin/bash", ["bash", f"/opt/flink/bin/{SCRIPTS[sys.argv[1]]}", "start-foreground", *sys.argv[2:]])
