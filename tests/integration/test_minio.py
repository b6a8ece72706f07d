"""MinIO: the buckets exist, objects go in and come back, anonymous access is refused, and each component's
own user is refused outside its bucket or prefix."""

from __future__ import annotations

import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from fraudops.storage import CHECKPOINT_PREFIX, s3_client


def test_buckets_exist_and_put_get_roundtrip(running_stack) -> None:
    settings = running_stack.settings
    names = {b["Name"] for b in s3_client(settings, running_stack.secrets, "root").list_buckets()["Buckets"]}
    assert {settings.minio.buckets.mlflow_artifacts, settings.minio.buckets.lake} <= names

    client = s3_client(settings, running_stack.secrets)  # the pipeline's user: the lake
    key = f"integration/{uuid.uuid4()}.bin"
    payload = uuid.uuid4().bytes * 1000
    client.put_object(Bucket=settings.minio.buckets.lake, Key=key, Body=payload)
    try:
        got = client.get_object(Bucket=settings.minio.buckets.lake, Key=key)["Body"].read()
        assert got == payload
    finally:
        client.delete_object(Bucket=settings.minio.buckets.lake, Key=key)


def test_anonymous_read_is_refused(running_stack) -> None:
    settings = running_stack.settings
    response = requests.get(f"{settings.s3_endpoint_url}/{settings.minio.buckets.lake}/", timeout=5)
    assert response.status_code == 403


def _refused(call) -> None:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == "AccessDenied", error.value.response


def test_each_component_is_refused_outside_its_grant(running_stack) -> None:
    settings, secrets = running_stack.settings, running_stack.secrets
    lake, artifacts = settings.minio.buckets.lake, settings.minio.buckets.mlflow_artifacts
    name = f"it-grants/{uuid.uuid4().hex}.txt"
    mlflow, pipeline, scorer = (s3_client(settings, secrets, c) for c in ("mlflow", "pipeline", "scorer"))
    root = s3_client(settings, secrets, "root")
    try:
        # each writes where it must
        mlflow.put_object(Bucket=artifacts, Key=name, Body=b"model")
        pipeline.put_object(Bucket=lake, Key=name, Body=b"snapshot")
        scorer.put_object(Bucket=lake, Key=CHECKPOINT_PREFIX + name, Body=b"offsets")
        assert scorer.get_object(Bucket=lake, Key=CHECKPOINT_PREFIX + name)["Body"].read() == b"offsets"
        # and nowhere else
        _refused(lambda: mlflow.get_object(Bucket=lake, Key=name))
        _refused(lambda: mlflow.put_object(Bucket=lake, Key=name, Body=b"x"))
        _refused(lambda: pipeline.get_object(Bucket=artifacts, Key=name))
        _refused(lambda: pipeline.put_object(Bucket=artifacts, Key=name, Body=b"x"))
        _refused(lambda: scorer.get_object(Bucket=lake, Key=name))
        _refused(lambda: scorer.put_object(Bucket=artifacts, Key=name, Body=b"x"))
        for client, own in ((mlflow, artifacts), (pipeline, lake), (scorer, lake)):
            _refused(lambda c=client: c.create_bucket(Bucket=f"it-{uuid.uuid4().hex[:8]}"))
            # MinIO lists only the buckets a user may use
            assert {b["Name"] for b in client.list_buckets()["Buckets"]} <= {own}
    finally:
        for bucket, key in ((artifacts, name), (lake, name), (lake, CHECKPOINT_PREFIX + name)):
            root.delete_object(Bucket=bucket, Key=key)
