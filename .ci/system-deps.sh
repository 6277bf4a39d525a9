#!/usr/bin/env bash
# Install the machine packages streamctl needs, when missing and root.
#   .ci/system-deps.sh         what the local runtime needs (a Java 17 JDK, PostgreSQL server binaries)
#   .ci/system-deps.sh --test  plus what the tests need (Chromium renders the HTML report; Docker's engine
#                              and debootstrap for the docker runtime's tests, which build their own base image)
#   .ci/system-deps.sh --lint  plus shellcheck (make lint; --test includes it)
#   .ci/system-deps.sh --bench plus what the benchmarks need (wrk generates HTTP load)
set -euo pipefail

need=()
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)  # the job's operator is compiled here
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=(postgresql)
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--lint" ]; then
  command -v shellcheck >/dev/null || need+=(shellcheck)
fi
if [ "${1:-}" = "--test" ]; then
  command -v chromium >/dev/null || need+=(chromium)
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
fi
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null || need+=(wrk)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]}. Install them, e.g.: sudo apt-get install -y ${need[*]}" >&2
  exit 4
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
