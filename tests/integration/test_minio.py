"""MinIO: the buckets exist, objects go in and come back, and anonymous access is refused."""

from __future__ import annotations

import uuid

import requests

from fraudops.storage import s3_client


def test_buckets_exist_and_put_get_roundtrip(running_stack) -> None:
    settings = running_stack.settings
    client = s3_client(settings, running_stack.secrets)
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert {settings.minio.buckets.mlflow_artifacts, settings.minio.buckets.lake} <= names

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
