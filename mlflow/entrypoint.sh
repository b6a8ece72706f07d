#!/bin/sh
# The MLflow image's entrypoint: the native stack's MLflow (`fraudops stack exec mlflow`: the basic-auth app,
# the generated secret files, the same arguments), from the one secrets file compose mounts read-only.
set -eu

secrets="${FRAUDOPS_HOME:-/opt/fraudops}/env/mlflow.env"
if [ ! -r "$secrets" ]; then
    echo "mlflow: cannot read $secrets as uid $(id -u): run \`make secrets\` and set FRAUDOPS_UID" >&2
    exit 1
fi
exec fraudops stack exec mlflow
