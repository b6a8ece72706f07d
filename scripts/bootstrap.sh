#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine, and nothing twice:
#   - Debian packages: PostgreSQL, Redis, Maven, Java 17, docker-compose (static validation of the compose file),
#     Chromium (the console's browser tests)
#   - the Python virtual environment from requirements.lock (uv, pinned), with our package installed editable
# The Go toolchain (for MinIO) must be on PATH; Debian's own golang is too old for MinIO.
# Kafka jars, the Spark connector and MinIO are fetched by `fraudops stack install` (make up).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
UV_VERSION=0.13.8
APT_PACKAGES=(postgresql redis-server docker-compose)
# monitoring: Prometheus (with promtool), Alertmanager and the Postgres and Redis exporters; `fraudops stack
# install` checks their versions against stack.versions
APT_PACKAGES+=(prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-redis-exporter)
# the browser of the console's browser tests (driven headless by Playwright from the lock file)
APT_PACKAGES+=(chromium)
# a JDK 17+ or Maven installed outside Debian's packages serves as well
command -v mvn >/dev/null || APT_PACKAGES+=(maven)
java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])' || APT_PACKAGES+=(openjdk-17-jre-headless)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts packaged servers on their default ports; the stack runs its own instances instead
  for svc in postgresql redis-server prometheus prometheus-alertmanager prometheus-postgres-exporter \
    prometheus-redis-exporter; do $SUDO service "$svc" stop >/dev/null 2>&1 || true; done
fi
command -v go >/dev/null || { echo "Go is required to build MinIO: install it from https://go.dev/dl" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$("$VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$VENV/bin/pip" install -q "uv==$UV_VERSION"
fi
lock_sum=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.lock.sha256" 2>/dev/null)" != "$lock_sum" ]; then
  echo "==> installing Python dependencies from requirements.lock"
  UV_SYSTEM_CERTS=1 "$VENV/bin/uv" pip sync -q --python "$VENV/bin/python" requirements.lock
  UV_SYSTEM_CERTS=1 "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e .
  echo "$lock_sum" >"$VENV/.lock.sha256"
fi
