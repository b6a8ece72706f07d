"""Retraining: extract -> validate -> features -> train (one task per family) -> evaluate -> promote -> signal.

Task bodies only call fraudops.pipeline; heavy libraries are imported inside the tasks, so parsing this file
costs nothing and reaches no service.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.timetables.trigger import CronTriggerTimetable

from fraudops.config.pipeline import FAMILY_CHOICES

DOC = """
### Fraud model retraining

Runs daily and on demand (**Trigger** with the form below). Every step is a function of the `fraudops`
package; `fraudops pipeline run` executes the same steps without Airflow.

| step | what it does | if it fails |
| --- | --- | --- |
| **extract** | transactions of the window ending at the cutoff, with only the fraud labels known at the cutoff, from the `fraud` database into a Parquet snapshot in MinIO (`fraud-lake/snapshots/<run>/`). With *snapshot_uri* it takes that snapshot instead. *force* and *snapshot_uri* are for the roles of `pipeline.privileged_roles` (Op, Admin): anyone else's run with them fails here. | nothing is trained |
| **validate** | the Great Expectations suite: schema, nulls, ranges, unique ids, fraud-rate bounds, freshness, minimum rows, label coverage. The Data Docs site is logged to MLflow (experiment `fraud-detector-data-validation`). | the run stops: nothing is trained, the champion is untouched |
| **build_features** | point-in-time features (the same definitions the streaming scorer uses) into the lake | |
| **train** | one mapped task per model family, in parallel on the Celery workers; each is an MLflow run registered as a version of `fraud-detector`. A retry or a re-run reuses the version it registered. | retried |
| **evaluate** | candidates and the current `@champion` on the same out-of-time window; the decision and the metrics of both sides go to `model_metadata` | |
| **promote** | the best candidate becomes `@champion` (the old one `@previous`) only if it clears the gates in `configs/fraudops.yaml` and beats the champion; *force* waives the comparison, *dry_run* moves nothing | the champion stays |
| **signal** | a `model_updates` event on Kafka so the scorers reload; skipped when nothing was promoted | retried |

Each training and evaluation task has an **MLflow run** link.
"""


@dag(
    dag_id="fraud_retraining",
    # daily at 02:00 UTC. No start_date: unpausing the DAG waits for the next 02:00 instead of running
    # a past day at once (CronTriggerTimetable's run_immediately=False)
    schedule=CronTriggerTimetable("0 2 * * *", timezone="UTC", run_immediately=False),
    catchup=False,
    max_active_runs=1,
    tags=["fraud", "training", "mlflow"],
    doc_md=DOC,
    default_args={
        "retries": 2,
        "retry_delay": pendulum.duration(seconds=20),
        "execution_timeout": pendulum.duration(hours=2),
    },
    params={
        "cutoff": Param(
            "", type="string", description="UTC time the data ends at; empty: the run's end time"
        ),
        "window_days": Param(0, type="integer", minimum=0, description="days of history; 0: configuration"),
        "families": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(FAMILY_CHOICES)},
            description="model families to train; empty: configuration",
        ),
        "model_overrides": Param({}, type="object", description='e.g. {"xgboost": {"max_depth": 4}}'),
        "snapshot_uri": Param("", type="string", description="train on this lake snapshot instead"),
        "dry_run": Param(False, type="boolean", description="decide and record, move no alias"),
        "force": Param(False, type="boolean", description="promote even if the champion is better"),
    },
)
def fraud_retraining() -> None:
    def ctx_and_run() -> tuple[Any, dict[str, Any], Any, str]:
        """The context (settings and secrets loaded once per task), the task's context, the run's
        parameters (resolved as `fraudops pipeline run` resolves them) and the run key."""
        from fraudops import pipeline
        from fraudops.context import Context

        context = get_current_context()
        ctx = Context.load()
        params = pipeline.RunParams.from_dag(
            ctx.settings, context["params"], context.get("data_interval_end")
        )
        return ctx, context, params, pipeline.run_key_of(context["run_id"])

    def link(context: dict[str, Any], url: str) -> None:
        context["ti"].xcom_push(key="mlflow_run_url", value=url)

    @task
    def extract() -> str:
        from airflow.exceptions import AirflowFailException

        from fraudops import pipeline
        from fraudops.run_access import RunNotAllowed, authorize_run

        ctx, context, params, run_key = ctx_and_run()
        try:
            authorize_run(
                ctx.settings, ctx.secrets, context["params"], context["dag_run"].triggering_user_name
            )
        except RunNotAllowed as exc:  # no retry can change who asked
            raise AirflowFailException(str(exc)) from exc
        return pipeline.extract(ctx, params.cutoff, params.window_days, run_key, params.snapshot_uri)

    @task
    def validate(snapshot_uri: str) -> str:
        from fraudops import pipeline

        ctx, context, params, run_key = ctx_and_run()
        try:
            summary = pipeline.validate(ctx, snapshot_uri, params.cutoff, run_key)
        except pipeline.DataValidationError as exc:
            # a bad batch never gets better by retrying
            raise AirflowFailException(str(exc)) from exc
        link(context, summary["mlflow_run_url"])
        return snapshot_uri

    @task
    def build_features(snapshot_uri: str) -> str:
        from fraudops import pipeline

        ctx, _, _, run_key = ctx_and_run()
        return pipeline.build_feature_snapshot(ctx, snapshot_uri, run_key)

    @task
    def families() -> list[str]:
        _, _, params, _ = ctx_and_run()
        return list(params.families)

    @task(max_active_tis_per_dagrun=2)
    def train(features_uri: str, family: str) -> dict[str, Any]:
        from fraudops import pipeline

        ctx, context, params, run_key = ctx_and_run()
        result = pipeline.train(ctx, features_uri, family, run_key, params.cutoff, params.model_overrides)
        link(context, result["mlflow_run_url"])
        return result

    @task
    def evaluate(features_uri: str, candidates: list[dict[str, Any]]) -> dict[str, Any]:
        from fraudops import pipeline

        ctx, context, params, run_key = ctx_and_run()
        decision = pipeline.evaluate(
            ctx, features_uri, list(candidates), params.cutoff, params.force, run_key
        )
        if decision.get("candidate"):
            link(context, next(c["mlflow_run_url"] for c in candidates
                               if str(c["version"]) == decision["candidate"]["version"]))  # fmt: skip
        return decision

    @task
    def promote(decision: dict[str, Any]) -> dict[str, Any]:
        from fraudops import pipeline

        ctx, _, params, run_key = ctx_and_run()
        return pipeline.promote(ctx, decision, params.dry_run, run_key)

    @task
    def signal(promotion: dict[str, Any]) -> None:
        from fraudops import pipeline

        ctx, _, _, _ = ctx_and_run()
        if not pipeline.signal(ctx, promotion):
            raise AirflowSkipException(f"nothing promoted: {promotion.get('reason')}")

    snapshot = validate(extract())
    features = build_features(snapshot)
    candidates = train.partial(features_uri=features).expand(family=families())
    signal(promote(evaluate(features, candidates)))


fraud_retraining()
