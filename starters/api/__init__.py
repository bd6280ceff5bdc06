"""The HTTP API; `create_app()` builds it."""
