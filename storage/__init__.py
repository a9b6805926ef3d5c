"""I/O: object storage (local folder or MinIO/S3), metadata database, audit log."""
