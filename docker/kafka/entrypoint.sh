#!/bin/sh
# Entrypoint of the Kafka image: a combined broker+controller (KRaft) node configured, as the official
# apache/kafka image is, by environment variables: KAFKA_FOO_BAR=x becomes foo.bar=x (`__` stands for `_`,
# `___` for `-`), CLUSTER_ID formats the log folder on the first start, KAFKA_HEAP_OPTS sizes the heap.
# `kafka-entrypoint print-config` prints the properties and the logging configuration and exits.
set -eu

config_dir="${FRAUDOPS_KAFKA_CONFIG_DIR:-/opt/kafka/config}"
config="$config_dir/server.properties"
: > "$config"
env | while IFS='=' read -r name value; do
    case "$name" in
        KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS) continue ;;
        KAFKA_*)
            key="$(printf '%s' "${name#KAFKA_}" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' \
                | tr '[:upper:]' '[:lower:]')"
            printf '%s=%s\n' "$key" "$value" >> "$config"
            ;;
    esac
done

# shellcheck disable=SC2086  # the options are words
java_cmd() {
    exec_or_run="$1"; shift
    $exec_or_run java ${KAFKA_HEAP_OPTS:--Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile=$config_dir/log4j2.properties -cp '/opt/kafka/libs/*' "$@"
}

# the native stack's logging (fraudops.stack.kafka_nodes.LOG4J2): to the console
cat > "$config_dir/log4j2.properties" <<'LOG'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
LOG

if [ "${1:-}" = "print-config" ]; then
    cat "$config" "$config_dir/log4j2.properties"
    exit 0
fi

: "${CLUSTER_ID:?CLUSTER_ID is required}"
log_dir="$(sed -n 's/^log\.dirs=//p' "$config")"
if [ ! -f "${log_dir:-/var/lib/kafka/data}/meta.properties" ]; then
    java_cmd "" kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$config"
fi
# KAFKA_OPTS: the broker's own JVM options (the JMX exporter agent), not the storage format's
# shellcheck disable=SC2086
java_cmd exec ${KAFKA_OPTS:-} kafka.Kafka "$config"
