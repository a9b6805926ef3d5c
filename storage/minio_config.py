"""How to reach the MinIO (S3) server: a plain value, importable without the `minio` client
(settings and the local-store default never load the client library)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MinioConfig:
    """How to reach the MinIO (S3) server, handed down by the entry point that read the settings."""

    endpoint: str = "127.0.0.1:9000"
    access_key: str = ""
    secret_key: str = ""
    secure: bool = False
    region: str = "us-east-1"
    public_endpoint: str | None = None  # host:port clerks' browsers reach MinIO at, for presigned URLs
    public_secure: bool | None = None
    bucket_prefix: str = "khana-"
