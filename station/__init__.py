"""Khana's station side: a durable outbox, so an outage of the central system loses no filing.

The operator scans and queues a filing (`khana station push`, or a scanner's watch folder); the sender
delivers it when the line is back, exactly once (the API's Idempotency-Key), nearest deadline first.
"""
