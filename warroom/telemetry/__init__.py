"""Telemetry without Temporal: War Room's own Prometheus metrics (`warroom_…`) and structured logs.

The Temporal side (SDK runtime metrics, the activity interceptor that feeds these metrics, tracing)
lives in `workers/telemetry.py`; this package is what both the worker and the API share.
"""
