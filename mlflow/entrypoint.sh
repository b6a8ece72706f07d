#!/bin/sh
# Starts `mlflow server "$@"` with the secrets it needs and no others, read from the one file compose mounts
# read-only (env/components/mlflow.env of `make secrets`): the mlflow role's password and its MinIO keys.
# They reach the server through the environment of this container (MLFLOW_BACKEND_STORE_URI, AWS_*), never
# its command line.
set -eu

env_dir="${FRAUDOPS_ENV_DIR:-/opt/fraudops/env}"

# secret FILE KEY: the last value of KEY in env/FILE, without surrounding quotes
secret() {
    if [ ! -r "$env_dir/$1" ]; then
        echo "mlflow: cannot read $env_dir/$1 as uid $(id -u): run \`make secrets\` and set FRAUDOPS_UID" >&2
        exit 1
    fi
    value="$(sed -n "s/^$2=//p" "$env_dir/$1" | tail -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/")"
    if [ -z "$value" ]; then
        echo "mlflow: $2 is missing from $env_dir/$1: run \`make secrets\`" >&2
        exit 1
    fi
    printf '%s' "$value"
}

db_password="$(secret mlflow.env MLFLOW_DB_PASSWORD)"
# MLflow's own MinIO user (the artifact bucket only), not the root key
AWS_ACCESS_KEY_ID="$(secret mlflow.env MINIO_MLFLOW_USER)"
AWS_SECRET_ACCESS_KEY="$(secret mlflow.env MINIO_MLFLOW_SECRET_KEY)"
MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://${MLFLOW_DB_USER:-mlflow}:${db_password}@${MLFLOW_DB_HOST:-postgres}:${MLFLOW_DB_PORT:-5432}/${MLFLOW_DB_NAME:-mlflow}"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY MLFLOW_BACKEND_STORE_URI
unset db_password

exec mlflow server "$@"
