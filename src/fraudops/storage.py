"""The S3 object store (MinIO in the stack; any S3-compatible endpoint works)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fraudops.config.settings import Settings

# MinIO's default region: every S3 client of the stack (boto3, MLflow's server, Spark's S3A) signs for it
S3_REGION = "us-east-1"


# the components with their own MinIO user (keys MINIO_<NAME>_USER / _SECRET_KEY in env/minio.env);
# "root" is the init step alone
Component = Literal["root", "mlflow", "pipeline", "scorer"]
COMPONENTS: tuple[Component, ...] = ("mlflow", "pipeline", "scorer")
# the scorer's checkpoints live under this prefix of the lake bucket (scorer.checkpoint_dir in compose)
CHECKPOINT_PREFIX = "checkpoints/"


def credentials(secrets: Mapping[str, str], component: Component) -> tuple[str, str]:
    """(access key, secret key) of ``component``."""
    if component == "root":
        return secrets["MINIO_ROOT_USER"], secrets["MINIO_ROOT_PASSWORD"]
    name = component.upper()
    return secrets[f"MINIO_{name}_USER"], secrets[f"MINIO_{name}_SECRET_KEY"]


def component_policy(settings: Settings, component: Component) -> dict[str, Any]:
    """The S3 policy of ``component``'s user: its own bucket, or for the scorer its checkpoint prefix."""
    buckets = settings.minio.buckets
    if component == "mlflow":
        bucket, objects = buckets.mlflow_artifacts, "*"
    elif component == "pipeline":
        bucket, objects = buckets.lake, "*"
    elif component == "scorer":
        # "checkpoints*", not "checkpoints/*": S3A also probes the folder's own name ("checkpoints"), and a
        # refused probe would be an error where a missing one is not
        bucket, objects = buckets.lake, CHECKPOINT_PREFIX.rstrip("/") + "*"
    else:
        raise ValueError(f"no policy for {component!r}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}/{objects}"],
            },
        ],
    }


def s3_client(settings: Settings, secrets: Mapping[str, str], component: Component = "pipeline") -> Any:
    import boto3
    from botocore.config import Config

    access, secret = credentials(secrets, component)
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=S3_REGION,
        config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
    )


def ensure_users(settings: Settings, secrets: Mapping[str, str]) -> list[str]:
    """Each component's MinIO user with its own policy (created or updated: the secret key and the policy
    follow env/minio.env and this code), through MinIO's admin API with the root key. Idempotent."""
    from urllib.parse import urlsplit

    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    endpoint = urlsplit(settings.s3_endpoint_url)
    admin = MinioAdmin(
        endpoint=endpoint.netloc,
        credentials=StaticProvider(*credentials(secrets, "root")),
        region=S3_REGION,
        secure=endpoint.scheme == "https",
    )
    made = []
    for component in COMPONENTS:
        access, secret = credentials(secrets, component)
        policy = f"fraudops-{component}"
        admin.policy_add(policy, policy=component_policy(settings, component))
        admin.user_add(access, secret)
        try:
            admin.attach_policy([policy], user=access)
        except Exception as exc:  # already attached: MinIO answers with an error, not a no-op
            if "already" not in str(exc).lower():
                raise
        made.append(access)
    return made


def ensure_buckets(settings: Settings, secrets: Mapping[str, str]) -> dict[str, str]:
    client = s3_client(settings, secrets, "root")
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    result = {}
    for bucket in settings.minio.buckets.model_dump().values():
        if bucket in existing:
            result[bucket] = "exists"
        else:
            client.create_bucket(Bucket=bucket)
            result[bucket] = "created"
    return result
