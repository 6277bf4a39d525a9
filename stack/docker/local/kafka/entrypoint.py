"""Write server.properties from KAFKA_* variables (the official image's rule), format the storage
once with CLUSTER_ID, then exec the broker."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

JVM_VARIABLES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS"}
CONFIG = Path("/opt/kafka/config/server.properties")


def property_name(variable: str) -> str:
    # ___ -> '-', __ -> '_', _ -> '.'
    return (variable[len("KAFKA_"):].lower().replace("___", "-").replace("__", "\0")
            .replace("_", ".").replace("\0", "_"))


props = {property_name(k): v for k, v in os.environ.items() if k.startswith("KAFKA_") and k not in JVM_VARIABLES}
props.setdefault("log.dirs", "/var/lib/kafka/data")
CONFIG.write_text("".join(f"{k}={v}\n" for k, v in sorted(props.items())))
java = ["java", *shlex.split(os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m")), "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError", "-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties",
        "-cp", "/opt/kafka/libs/*"]
cluster_id = os.environ.get("CLUSTER_ID")
if not cluster_id:
    sys.exit("CLUSTER_ID is not set")
for log_dir in props["log.dirs"].split(","):
    Path(log_dir).mkdir(parents=True, exist_ok=True)
subprocess.run([*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(CONFIG),
                "--ignore-formatted"], check=True, stdout=subprocess.DEVNULL)
os.execvp("java", [*java, "kafka.Kafka", str(CONFIG)])
