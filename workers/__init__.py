"""Workers: the embedded in-process pool (no servers) and the Celery app (production)."""
