"""Daily drift check: PSI of the last day's scored traffic against the champion's training reference; a
drift triggers the retraining DAG.

Task bodies only call fraudops.drift; heavy libraries are imported inside the tasks.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from airflow.timetables.trigger import CronTriggerTimetable

DOC = """
### Drift of recent traffic

Daily (and on demand): `fraudops.drift.check_drift` bins the features and scores of the transactions
scored in the last `drift.window_hours` on the deciles of the `@champion`'s training reference (logged by
its training run as `drift/reference.json`) and computes the population stability index (PSI) of each.
The report goes to the `drift_reports` table (Prometheus reads it: `fraudops_drift_psi`, alert
**DriftHigh**) and to the MLflow experiment `drift.experiment`. When a PSI reaches
`monitoring.alerts.drift_psi`, **trigger_retraining** starts the retraining DAG; otherwise it is skipped.
`fraudops drift --trigger` runs the same check from the command line.
"""


@dag(
    dag_id="fraud_drift",
    # daily at 01:00 UTC, an hour before the scheduled retraining
    schedule=CronTriggerTimetable("0 1 * * *", timezone="UTC", run_immediately=False),
    catchup=False,
    max_active_runs=1,
    tags=["fraud", "drift", "monitoring"],
    doc_md=DOC,
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30)},
)
def fraud_drift() -> None:
    @task.short_circuit
    def check_drift() -> str:
        """The DAG to trigger when drifted, else "" (which skips the trigger)."""
        from fraudops.config.settings import load_settings
        from fraudops.drift import check_drift as check
        from fraudops.secrets import load_secrets

        settings = load_settings()
        report = check(settings, load_secrets(settings.env_dir))
        print(report.summary())
        return settings.drift.retraining_dag_id if report.drifted else ""

    TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id="{{ ti.xcom_pull(task_ids='check_drift') }}",
        conf={"force": False},
        retries=1,
    ).set_upstream(check_drift())


fraud_drift()
