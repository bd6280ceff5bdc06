"""How every War Room process talks to Temporal: the client, its data converter and its tracing.

The API, the CLI and the worker must agree on all three (a payload one of them encrypts, another
must decrypt; a span one starts, the next continues), so they live here, below both `starters/`
and `workers/`. This package imports Temporal and `warroom/`, nothing above them.
"""
