"""Settings, read from the environment (and a `.env` file), named exactly as in CONTRACT.md.

Secrets live here and only here: workflows carry platform names, activities look the
credentials up from these settings at call time, so no token ever enters workflow history.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warroom.models import PLATFORMS


def _env(name: str, default: object = None, **kw: object) -> object:
    return Field(default, validation_alias=name, **kw)  # type: ignore[arg-type]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    temporal_address: str = _env("WARROOM_TEMPORAL_ADDRESS", "localhost:7233")
    temporal_namespace: str = _env("WARROOM_TEMPORAL_NAMESPACE", "default")
    task_queue: str = _env("WARROOM_TASK_QUEUE", "warroom")
    region: str = _env("WARROOM_REGION", "")
    database_url: str = _env("WARROOM_DATABASE_URL", "sqlite:///./warroom.db")
    im_platform: str = _env("WARROOM_IM_PLATFORM", "sandbox")
    api_token: SecretStr = _env("WARROOM_API_TOKEN", SecretStr(""))
    public_url: str = _env("WARROOM_PUBLIC_URL", "http://localhost:8000")

    slack_bot_token: SecretStr = _env("SLACK_BOT_TOKEN", SecretStr(""))
    slack_signing_secret: SecretStr = _env("SLACK_SIGNING_SECRET", SecretStr(""))
    slack_api_base_url: str = _env("SLACK_API_BASE_URL", "https://slack.com/api/")
    slack_private_channels: bool = _env("SLACK_PRIVATE_CHANNELS", True)
    slack_channel_template: str = _env("WARROOM_SLACK_CHANNEL_TEMPLATE", "inc-{date}-{id}-{slug}")
    slack_rate_scale: float = _env("WARROOM_SLACK_RATE_SCALE", 1.0, gt=0)  # multiplies Slack's per-method tiers
    slack_timeout_seconds: float = _env("WARROOM_SLACK_TIMEOUT", 10.0, gt=0)

    lark_app_id: str = _env("LARK_APP_ID", "")
    lark_app_secret: SecretStr = _env("LARK_APP_SECRET", SecretStr(""))
    lark_verification_token: SecretStr = _env("LARK_VERIFICATION_TOKEN", SecretStr(""))
    lark_encrypt_key: SecretStr = _env("LARK_ENCRYPT_KEY", SecretStr(""))
    lark_domain: str = _env("LARK_DOMAIN", "https://open.feishu.cn")
    # Beyond CONTRACT.md: seconds one Lark OpenAPI call may take before it counts as timed out.
    lark_timeout_seconds: float = _env("LARK_TIMEOUT_SECONDS", 10.0, gt=0, le=25)

    dingtalk_app_key: str = _env("DINGTALK_APP_KEY", "")
    dingtalk_app_secret: SecretStr = _env("DINGTALK_APP_SECRET", SecretStr(""))
    dingtalk_robot_code: str = _env("DINGTALK_ROBOT_CODE", "")
    dingtalk_api_base_url: str = _env("DINGTALK_API_BASE_URL", "https://api.dingtalk.com")
    dingtalk_oapi_base_url: str = _env("DINGTALK_OAPI_BASE_URL", "https://oapi.dingtalk.com")

    wecom_corp_id: str = _env("WECOM_CORP_ID", "")
    wecom_secret: SecretStr = _env("WECOM_SECRET", SecretStr(""))
    wecom_agent_id: str = _env("WECOM_AGENT_ID", "")
    wecom_token: SecretStr = _env("WECOM_TOKEN", SecretStr(""))
    wecom_encoding_aes_key: SecretStr = _env("WECOM_ENCODING_AES_KEY", SecretStr(""))
    wecom_api_base_url: str = _env("WECOM_API_BASE_URL", "https://qyapi.weixin.qq.com/cgi-bin/")

    openai_api_key: SecretStr = _env("OPENAI_API_KEY", SecretStr(""))
    openai_base_url: str = _env("OPENAI_BASE_URL", "")
    ai_model: str = _env("WARROOM_AI_MODEL", "")
    # Beyond CONTRACT.md: the assistant (warroom/ai). Empty embedding model: BM25 retrieval only.
    ai_embedding_model: str = _env("WARROOM_AI_EMBEDDING_MODEL", "")
    ai_timeout_seconds: float = _env("WARROOM_AI_TIMEOUT", 30.0, gt=0)
    ai_max_retries: int = _env("WARROOM_AI_MAX_RETRIES", 1, ge=0)
    ai_max_prompt_tokens: int = _env("WARROOM_AI_MAX_PROMPT_TOKENS", 6000, ge=500)
    ai_max_answer_tokens: int = _env("WARROOM_AI_MAX_ANSWER_TOKENS", 700, ge=50)
    ai_stream: bool = _env("WARROOM_AI_STREAM", False)
    ai_redact: bool = _env("WARROOM_AI_REDACT", True)
    ai_answers_per_minute: int = _env("WARROOM_AI_ANSWERS_PER_MINUTE", 6, ge=1)
    ai_knowledge_min_terms: int = _env("WARROOM_AI_KNOWLEDGE_MIN_TERMS", 2, ge=1)
    runbooks_dir: str = _env("WARROOM_RUNBOOKS_DIR", "runbooks")
    transcript_retention_days: int = _env("WARROOM_TRANSCRIPT_RETENTION_DAYS", 90, ge=0)  # 0: keep forever

    payload_key: SecretStr = _env("WARROOM_PAYLOAD_KEY", SecretStr(""))
    metrics_port: int | None = _env("WARROOM_METRICS_PORT", None)
    # Beyond CONTRACT.md (deployment): platform → region bindings ("lark=cn,dingtalk=cn,wecom=cn": their IM
    # activities run on `<task queue>-cn`), the Temporal UI origins allowed to call the codec endpoint,
    # the log format, and the OpenTelemetry collector (OTLP/HTTP) that enables tracing.
    platform_regions: str = _env("WARROOM_PLATFORM_REGIONS", "")
    codec_cors_origins: str = _env("WARROOM_CODEC_CORS_ORIGINS", "http://localhost:8233,http://localhost:8080")
    log_format: str = _env("WARROOM_LOG_FORMAT", "text", pattern="^(text|json)$")
    otel_endpoint: str = _env("OTEL_EXPORTER_OTLP_ENDPOINT", "")

    # Beyond CONTRACT.md: knobs of the built-in sandbox IM (tests and benchmarks use them).
    sandbox_latency_ms: float = _env("WARROOM_SANDBOX_LATENCY_MS", 0.0, ge=0)
    sandbox_fault_rate: float = _env("WARROOM_SANDBOX_FAULT_RATE", 0.0, ge=0, le=1)
    sandbox_rate_limit: float = _env("WARROOM_SANDBOX_RATE_LIMIT", 0.0, ge=0)  # calls/s per process; 0: none
    sandbox_signing_secret: SecretStr = _env("WARROOM_SANDBOX_SIGNING_SECRET", SecretStr(""))
    # Beyond CONTRACT.md: workflow tuning.
    snooze_choices_minutes: list[int] = _env("WARROOM_SNOOZE_CHOICES", [120, 240, 720])
    max_signals_per_run: int = _env("WARROOM_MAX_SIGNALS_PER_RUN", 1000, ge=10)
    # Incidents a worker keeps in memory between events; others are replayed from history when
    # their next event comes (a war room's events are minutes apart, a replay takes milliseconds).
    max_cached_workflows: int = _env("WARROOM_MAX_CACHED_WORKFLOWS", 200, ge=0)
    # Run workflow code in Temporal's sandbox, which re-checks every workflow task for calls that
    # break determinism (clock, randomness, I/O). The test suite always runs with it on (so every
    # path the tests take is checked); off, a workflow task costs half the CPU (bench: a replayed
    # incident 186 → 89 ms), and the shipped code is the same.
    workflow_sandbox: bool = _env("WARROOM_WORKFLOW_SANDBOX", False)

    @field_validator("im_platform")
    @classmethod
    def _known_platform(cls, v: str) -> str:
        if v not in PLATFORMS:
            raise ValueError(f"WARROOM_IM_PLATFORM must be one of {', '.join(PLATFORMS)}, not {v!r}")
        return v

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def queue_for(self, region: str) -> str:
        """The task queue for activities of an integration bound to `region` (CONTRACT.md)."""
        return f"{self.task_queue}-{region}" if region else self.task_queue

    def platform_region_map(self) -> dict[str, str]:
        """WARROOM_PLATFORM_REGIONS as {platform: region}; unbound platforms are absent."""
        pairs = (item.split("=", 1) for item in self.platform_regions.replace(" ", "").split(",") if item)
        return {platform: region for platform, region in pairs if region}

    def im_task_queues(self) -> dict[str, str]:
        """The task queue of each platform bound to a region: `<task queue>-<region>`."""
        return {platform: self.queue_for(region) for platform, region in self.platform_region_map().items()}

    @field_validator("platform_regions")
    @classmethod
    def _known_bindings(cls, v: str) -> str:
        for item in filter(None, v.replace(" ", "").split(",")):
            platform, sep, region = item.partition("=")
            if not sep or platform not in PLATFORMS or not re.fullmatch(r"[A-Za-z0-9_.-]+", region):
                raise ValueError(
                    f"WARROOM_PLATFORM_REGIONS wants platform=region pairs like 'lark=cn,wecom=cn' "
                    f"(platforms: {', '.join(PLATFORMS)}), not {item!r}"
                )
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
