"""The native stack: the services of docker-compose.yaml as real processes on loopback."""

# Long-running services, in start order. docker-compose.yaml declares the same names (a test checks it);
# spark-scorer is started by its own command once a champion model exists. The monitoring services follow
# (fraudops.stack.monitoring.MONITORING_NAMES; compose has a container of each name too).
SERVICE_NAMES: tuple[str, ...] = (
    "postgres",
    "redis",
    "minio",
    "mlflow",
    "kafka-1",
    "kafka-2",
    "kafka-3",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "flower",
    "spark-master",
    "spark-worker",
    "spark-scorer",
    "console",
)
