"""The data lake: where the pipeline's steps leave their snapshots and feature frames (Parquet in the lake
bucket under ``<snapshot_prefix>/<run_key>/``). Steps hand each other these URIs, never data."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Protocol

import pandas as pd

from fraudops.config.settings import Settings


class Lake(Protocol):
    def uri(self, run_key: str, name: str) -> str: ...

    def write(self, frame: pd.DataFrame, uri: str) -> str: ...

    def read(self, uri: str) -> pd.DataFrame: ...


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class S3Lake:
    """The lake bucket on MinIO (or any S3-compatible store the settings name)."""

    def __init__(self, settings: Settings, secrets: Mapping[str, str]) -> None:
        self.settings, self.secrets = settings, secrets
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            from fraudops.storage import s3_client

            self._client = s3_client(self.settings, self.secrets)
        return self._client

    def uri(self, run_key: str, name: str) -> str:
        s = self.settings
        return f"s3://{s.minio.buckets.lake}/{s.pipeline.snapshot_prefix}/{run_key}/{name}.parquet"

    def write(self, frame: pd.DataFrame, uri: str) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        bucket, key = split_uri(uri)
        self._s3().put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        return uri

    def read(self, uri: str) -> pd.DataFrame:
        bucket, key = split_uri(uri)
        body = self._s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        return pd.read_parquet(io.BytesIO(body))
