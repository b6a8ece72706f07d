"""The S3 object store (MinIO in the stack; any S3-compatible endpoint works)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fraudops.config.settings import Settings

# MinIO's default region: every S3 client of the stack (boto3, MLflow's server, Spark's S3A) signs for it
S3_REGION = "us-east-1"


def s3_client(settings: Settings, secrets: Mapping[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=secrets["MINIO_ROOT_USER"],
        aws_secret_access_key=secrets["MINIO_ROOT_PASSWORD"],
        region_name=S3_REGION,
        config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
    )


def ensure_buckets(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    client = s3_client(settings, secrets)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    result = {}
    for bucket in settings.minio.buckets.model_dump().values():
        if bucket in existing:
            result[bucket] = "exists"
        else:
            client.create_bucket(Bucket=bucket)
            result[bucket] = "created"
    return result
