#!/usr/bin/env bash
# Entrypoint of the Airflow image.
#   <airflow command...>      e.g. `api-server`, `celery worker`, `db migrate`: runs `airflow <command>` with the
#                             configuration of `fraudops stack airflow-env` (settings + the mounted secrets):
#                             the secret options in airflow.cfg (mode 600), the rest as exports, the same
#                             as the native stack
#   bash|python ...           runs that program with the same configuration (healthchecks)
#   fraudops ...              runs our CLI as is (the one-shot init services)
set -euo pipefail

# A uid chosen with `user:` (FRAUDOPS_UID) has no passwd entry; getpass, Celery and others want one.
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
    echo "fraudops:x:$(id -u):0:fraudops:${HOME:-/home/fraudops}:/bin/bash" >> /etc/passwd
fi

# compose mounts this container's own component file (env/components/<component>.env of `make secrets`)
env_dir="${FRAUDOPS_HOME:-/opt/fraudops}/env"
for secrets in "$env_dir"/*.env; do
    [ -e "$secrets" ] || break
    if [ ! -r "$secrets" ]; then
        echo "entrypoint: cannot read $secrets as uid $(id -u): run \`make secrets\` on the host and set" \
             "FRAUDOPS_UID to the uid owning env/ (echo FRAUDOPS_UID=\$(id -u) >> .env)" >&2
        exit 1
    fi
done

if [ "${1:-}" = "fraudops" ]; then
    exec "$@"
fi

# two steps, so that a failing `fraudops stack airflow-env` stops the container (set -e)
airflow_env="$(fraudops stack airflow-env)"
eval "$airflow_env"

case "${1:-}" in
    bash | sh | python | python3) exec "$@" ;;
    *) exec airflow "$@" ;;
esac
