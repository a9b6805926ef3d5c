"""The domain: batches and pages, the per-page flow, the gate, forwarding, the service layer."""
