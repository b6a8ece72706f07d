"""An "MLflow run" button on the tasks that log to MLflow (validate, train, evaluate).

Those tasks push the URL of their MLflow run as the XCom ``mlflow_run_url``; this link reads it back, so
users jump from a task in the Airflow UI to its run in MLflow.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

XCOM_KEY = "mlflow_run_url"


class MlflowRunLink(BaseOperatorLink):
    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:  # noqa: ANN001 (Airflow's signature)
        # evaluated by the api-server, which reads XComs straight from the metadata database
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(
                    run_id=ti_key.run_id,
                    key=XCOM_KEY,
                    task_ids=ti_key.task_id,
                    dag_ids=ti_key.dag_id,
                    map_indexes=ti_key.map_index,
                ).limit(1)
            ).first()
            return str(XComModel.deserialize_value(row)) if row is not None else ""


class MlflowLinksPlugin(AirflowPlugin):
    name = "fraudops_mlflow_links"
    global_operator_extra_links = [MlflowRunLink()]
