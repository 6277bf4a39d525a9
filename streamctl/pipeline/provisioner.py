"""The docker runtime's one-shot `init` container: topics, database table and index template,
through the same idempotent provisioning code the local runtime runs from the host.

Configured by PROVISION_* variables (see stack/compose.yaml). Services may still be settling after
their healthchecks pass, so each step is retried for a while before the container fails.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from streamctl import provision
from streamctl.endpoints import ElasticsearchAccess
from streamctl.kafka_access import KafkaAccess

ATTEMPTS = 20


def retried(name: str, step: Callable[[], object]) -> None:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            outcome = step()
            print(f"{name}: ok{f' ({outcome})' if outcome else ''}", flush=True)
            return
        except Exception as exc:  # any failure is retried; the last one fails the container
            if attempt == ATTEMPTS:
                print(f"{name}: failed after {ATTEMPTS} attempts: {type(exc).__name__}: {exc}", flush=True)
                raise SystemExit(1) from None
            print(f"{name}: {type(exc).__name__}: {exc}; retrying", flush=True)
            time.sleep(1.5)


def main() -> None:
    env = os.environ
    topics = provision.topic_layout(env["PROVISION_TOPIC"], env["PROVISION_AGGREGATES_TOPIC"])
    retried("topics", lambda: provision.create_topics(KafkaAccess.from_env(env, "PROVISION"), topics,
                                                      int(env["PROVISION_PARTITIONS"])))
    retried("schema", lambda: provision.apply_schema(env["PROVISION_POSTGRES_DSN"], env["PROVISION_POSTGRES_DATABASE"]))
    retried("index template", lambda: provision.install_index_template(ElasticsearchAccess.from_env(env, "PROVISION"),
                                                                       env["PROVISION_INDEX"]))


if __name__ == "__main__":
    main()
    sys.exit(0)
