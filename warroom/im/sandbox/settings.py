"""The sandbox's knobs (beyond CONTRACT.md): a remote platform's latency, faults and rate limit,
which tests and benchmarks turn on, and the secret its own callbacks are signed with."""

from __future__ import annotations

from pydantic import Field, SecretStr

from warroom.im.plugin import PlatformSettings


class SandboxSettings(PlatformSettings):
    latency_ms: float = Field(0.0, ge=0, validation_alias="WARROOM_SANDBOX_LATENCY_MS")
    fault_rate: float = Field(0.0, ge=0, le=1, validation_alias="WARROOM_SANDBOX_FAULT_RATE")
    rate_limit: float = Field(0.0, ge=0, validation_alias="WARROOM_SANDBOX_RATE_LIMIT")  # calls/s; 0: none
    signing_secret: SecretStr = Field(SecretStr(""), validation_alias="WARROOM_SANDBOX_SIGNING_SECRET")
