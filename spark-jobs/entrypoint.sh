#!/bin/sh
# Entrypoint of the Spark scorer image: gives an unknown uid (compose's FRAUDOPS_UID) a passwd entry, which
# Hadoop's login code needs, then runs the command.
set -eu
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
    echo "fraudops:x:$(id -u):0:fraudops:${HOME:-/home/fraudops}:/bin/sh" >> /etc/passwd
fi
exec "$@"
