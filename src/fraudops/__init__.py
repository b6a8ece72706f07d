"""fraudops: real-time card-fraud detection on Kafka, Spark, Airflow, MLflow and MinIO."""

__version__ = "0.1.0"
