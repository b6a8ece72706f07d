"""The platform exporter: what no service exports by itself, asked at scrape time.

- ``fraudops_champion_version{model}``: the registry version under ``@champion`` (0: none) -> NoChampion
- ``fraudops_retraining_last_run_failed{dag_id}`` and ``fraudops_dag_last_run_end_seconds{dag_id, state}``
  from Airflow's REST API -> RetrainingFailed
- ``fraudops_drift_psi{feature}``: the latest drift check (``drift_reports``) -> DriftHigh
- ``fraudops_platform_source_up{source}``: whether each of those answered

Run by ``fraudops monitor exporter`` (the native stack's ``platform-exporter``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CHAMPION_VERSION = "fraudops_champion_version"
RETRAINING_FAILED = "fraudops_retraining_last_run_failed"
DAG_LAST_RUN_END = "fraudops_dag_last_run_end_seconds"
DRIFT_PSI = "fraudops_drift_psi"
SOURCE_UP = "fraudops_platform_source_up"
EXPORTED_METRICS = (CHAMPION_VERSION, RETRAINING_FAILED, DAG_LAST_RUN_END, DRIFT_PSI, SOURCE_UP)


class PlatformCollector(Collector):
    """Each source is a plain callable, so the collector is tested with in-memory ones."""

    def __init__(
        self,
        model_name: str,
        champion_version: Callable[[], int],
        dag_ids: Iterable[str],
        last_run: Callable[[str], dict[str, Any] | None],
        drift_psi: Callable[[], Mapping[str, float]],
    ) -> None:
        self.model_name = model_name
        self.champion_version, self.last_run, self.drift_psi = champion_version, last_run, drift_psi
        self.dag_ids = list(dag_ids)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            SOURCE_UP, "whether the platform exporter reached each source", labels=["source"]
        )
        champion = GaugeMetricFamily(
            CHAMPION_VERSION, "registry version under the champion alias (0: none)", labels=["model"]
        )
        failed = GaugeMetricFamily(
            RETRAINING_FAILED, "1 when the DAG's latest finished run failed", labels=["dag_id"]
        )
        ended = GaugeMetricFamily(
            DAG_LAST_RUN_END, "end time of the DAG's latest finished run", labels=["dag_id", "state"]
        )
        psi = GaugeMetricFamily(DRIFT_PSI, "PSI of the latest drift check", labels=["feature"])

        ok = self._ask("mlflow", lambda: champion.add_metric([self.model_name], self.champion_version()))
        up.add_metric(["mlflow"], ok)

        def runs() -> None:
            for dag_id in self.dag_ids:
                run = self.last_run(dag_id)
                if run is None:
                    continue
                failed.add_metric([dag_id], float(run["state"] == "failed"))
                end = datetime.fromisoformat(str(run["end_date"]).replace("Z", "+00:00"))
                ended.add_metric([dag_id, run["state"]], end.timestamp())

        up.add_metric(["airflow"], self._ask("airflow", runs))

        def drift() -> None:
            for feature, value in self.drift_psi().items():
                psi.add_metric([feature], value)

        up.add_metric(["postgres"], self._ask("postgres", drift))
        yield from (up, champion, failed, ended, psi)

    @staticmethod
    def _ask(source: str, read: Callable[[], None]) -> float:
        try:
            read()
            return 1.0
        except Exception as exc:  # a source away is reported as such, the other metrics still go out
            log.warning("%s: %s", source, exc)
            return 0.0


def stack_collector(settings: Any, secrets: Mapping[str, str]) -> PlatformCollector:
    """The collector wired to the stack's MLflow, Airflow and Postgres."""
    from fraudops.connections import fraud_role_dsn
    from fraudops.drift import latest_report
    from fraudops.registry import version_by_alias
    from fraudops.tracking import use_account

    # reads the champion's alias: MLflow's read-only account
    use_account(secrets, "reader")
    tracking_uri = settings.mlflow_tracking_uri
    name = settings.mlflow.model_name

    def champion_version() -> int:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        champion = version_by_alias(client, name, settings.mlflow.champion_alias)
        return int(champion.version) if champion is not None else 0

    api: list[Any] = []

    def last_run(dag_id: str) -> dict[str, Any] | None:
        from fraudops.airflow_api import AirflowApi

        for attempt in (1, 2):
            if not api:
                api.append(AirflowApi(settings, secrets, timeout=5))
            try:
                runs = api[0].get(
                    f"/dags/{dag_id}/dagRuns", state=["success", "failed"], order_by="-end_date", limit=1
                )["dag_runs"]
                return runs[0] if runs else None
            except Exception:
                api.clear()  # an expired token: log in again, once
                if attempt == 2:
                    raise
        return None

    # the monitor role: of the fraud database it reads drift_reports only
    dsn = fraud_role_dsn(settings, secrets, "monitor")
    return PlatformCollector(
        name,
        champion_version,
        [settings.drift.retraining_dag_id],
        last_run,
        lambda: latest_report(dsn),
    )
