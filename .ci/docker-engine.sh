#!/usr/bin/env bash
# A Docker engine for the docker runtime's tests.
#   .ci/docker-engine.sh start   use the engine that answers, or start dockerd (root only)
#   .ci/docker-engine.sh stop    stop the dockerd this script started (nothing else)
# dockerd keeps its default iptables setting: without it containers lose outbound access.
set -euo pipefail
PIDFILE=/var/run/streamctl-dockerd.pid
LOG=/var/log/streamctl-dockerd.log

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if answers; then exit 0; fi
    if [ "$(id -u)" -ne 0 ]; then
      echo "no Docker engine answers; start Docker (e.g. sudo systemctl start docker)" >&2
      exit 4
    fi
    dockerd --pidfile "$PIDFILE" > "$LOG" 2>&1 &
    for _ in $(seq 1 60); do
      if answers; then echo "dockerd $(docker version --format '{{.Server.Version}}') started (log: $LOG)"; exit 0; fi
      sleep 0.5
    done
    echo "dockerd did not answer within 30 s; its log:" >&2
    tail -20 "$LOG" >&2
    exit 6
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      pid="$(cat "$PIDFILE")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      rm -f "$PIDFILE"
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 64
    ;;
esac
