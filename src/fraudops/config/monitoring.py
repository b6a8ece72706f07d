"""Settings of monitoring and alerting (the ``monitoring:`` section of ``configs/fraudops.yaml``)."""

from __future__ import annotations

from pydantic import Field

from fraudops.config.base import StrictModel


class AlertThresholds(StrictModel):
    """The numbers the alert rules compare with (``configs/prometheus/rules.yml`` names them)."""

    # a target (service) not answering its scrape this long
    down_for: str = "30s"
    # records of transactions_stream not yet read by the scorer, summed over partitions
    scorer_lag_records: int = Field(50000, ge=1)
    lag_for: str = "2m"
    # p99 of the end-to-end latency (Kafka record time -> prediction written) over 5 minutes
    scorer_p99_seconds: float = Field(5.0, gt=0)
    # dead letters per second over 5 minutes
    dead_letters_per_s: float = Field(1.0, gt=0)
    # the design notes' "more than 10 frauds flagged in 5 minutes" (REVIEW and BLOCK decisions)
    fraud_alerts_per_5m: int = Field(10, ge=0)
    # population stability index of the score or a feature, recent traffic against the training reference
    drift_psi: float = Field(0.2, gt=0)


class DriftSettings(StrictModel):
    """The daily drift check (:mod:`fraudops.drift`; dags/fraud_drift.py)."""

    # recent traffic: what was scored in this many hours before the check
    window_hours: float = Field(24.0, gt=0)
    # fewer recent rows than this are not judged (PSI of a handful of rows is noise)
    min_rows: int = Field(500, ge=1)
    # the MLflow experiment each check's PSI goes to
    experiment: str = "fraud-detector-drift"
    # the DAG a drift triggers
    retraining_dag_id: str = "fraud_retraining"


class MonitoringSettings(StrictModel):
    # how often Prometheus scrapes every target and evaluates the rules
    scrape_interval: str = "10s"
    evaluation_interval: str = "10s"
    # Alertmanager: wait this long to group alerts before the first notification, between notifications of
    # a group that changed, and before repeating one that did not
    group_wait: str = "10s"
    group_interval: str = "1m"
    repeat_interval: str = "4h"
    # how long Prometheus keeps samples (native stack: under stack.data_dir)
    retention: str = "7d"
    # the committed alert rules (a template: <<name>> stands for monitoring.alerts.<name>)
    rules_file: str = "configs/prometheus/rules.yml"
    alerts: AlertThresholds = AlertThresholds()
