"""Settings, read from the environment (and a `.env` file), named exactly as in CONTRACT.md.

Secrets live here and only here: workflows carry platform names, activities look the
credentials up from these settings at call time, so no token ever enters workflow history.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warroom.enums import PLATFORM_NAME
from warroom.im.plugin import PlatformSettings
from warroom.im.plugins import get_plugin, platform_names


def _env(name: str, default: object = None, **kw: object) -> object:
    return Field(default, validation_alias=name, **kw)  # type: ignore[arg-type]


class Settings(BaseSettings):
    # Extra keyword arguments are platform settings by their variable names (Settings(SLACK_BOT_TOKEN=…)):
    # `platform()` hands them to the platform's own settings class, over what the environment says.
    model_config = SettingsConfigDict(env_file=".env", extra="allow", populate_by_name=True)
    _platforms: dict[str, PlatformSettings] = PrivateAttr(default_factory=dict)

    temporal_address: str = _env("WARROOM_TEMPORAL_ADDRESS", "localhost:7233")
    temporal_namespace: str = _env("WARROOM_TEMPORAL_NAMESPACE", "default")
    task_queue: str = _env("WARROOM_TASK_QUEUE", "warroom")
    region: str = _env("WARROOM_REGION", "")
    database_url: str = _env("WARROOM_DATABASE_URL", "sqlite:///./warroom.db")
    # How long a starting process waits for a schema migration another process is running.
    migrate_wait_seconds: float = _env("WARROOM_MIGRATE_WAIT_SECONDS", 300.0, gt=0)
    im_platform: str = _env("WARROOM_IM_PLATFORM", "sandbox")
    api_token: SecretStr = _env("WARROOM_API_TOKEN", SecretStr(""))
    public_url: str = _env("WARROOM_PUBLIC_URL", "http://localhost:8000")
    # The web console (issue 18): what signs its session cookies (empty: derived from
    # WARROOM_API_TOKEN, else one per process, so sessions end with it), how long a session lasts.
    session_secret: SecretStr = _env("WARROOM_SESSION_SECRET", SecretStr(""))
    session_hours: float = _env("WARROOM_SESSION_HOURS", 12.0, gt=0)
    # Console sign-in with OpenID Connect (authorization code + PKCE): the provider's issuer URL
    # (its /.well-known/openid-configuration is read), this client, the button's label, and the
    # emails that sign in as admins (comma-separated).
    oidc_issuer: str = _env("WARROOM_OIDC_ISSUER", "")
    oidc_client_id: str = _env("WARROOM_OIDC_CLIENT_ID", "")
    oidc_client_secret: SecretStr = _env("WARROOM_OIDC_CLIENT_SECRET", SecretStr(""))
    oidc_scopes: str = _env("WARROOM_OIDC_SCOPES", "openid email profile")
    oidc_name: str = _env("WARROOM_OIDC_NAME", "single sign-on")
    oidc_admins: str = _env("WARROOM_OIDC_ADMINS", "")
    # Self-link at sign-in: which ID-token claim holds a person's user id on which IM platform
    # (`platform=claim`, comma-separated), e.g. Sign in with Slack's
    # `slack=https://slack.com/user_id`. The provider vouches for it, so it is linked as is.
    oidc_im_claims: str = _env("WARROOM_OIDC_IM_CLAIMS", "")

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
    # Other incidents a room's impact assessment may point to (as console links, never their titles):
    # off, what a room shows stays within its own incident.
    ai_similar_incidents: bool = _env("WARROOM_AI_SIMILAR_INCIDENTS", False)
    runbooks_dir: str = _env("WARROOM_RUNBOOKS_DIR", "runbooks")
    transcript_retention_days: int = _env("WARROOM_TRANSCRIPT_RETENTION_DAYS", 90, ge=0)  # 0: keep forever

    # Incident sources (CONTRACT.md, "Incident sources"): their credentials and the rules file.
    alertmanager_token: SecretStr = _env("WARROOM_ALERTMANAGER_TOKEN", SecretStr(""))
    grafana_token: SecretStr = _env("WARROOM_GRAFANA_TOKEN", SecretStr(""))
    pagerduty_api_token: SecretStr = _env("PAGERDUTY_API_TOKEN", SecretStr(""))
    pagerduty_webhook_secrets: SecretStr = _env("PAGERDUTY_WEBHOOK_SECRETS", SecretStr(""))  # comma-separated
    pagerduty_api_base_url: str = _env("PAGERDUTY_API_BASE_URL", "https://api.pagerduty.com")
    rules_file: str = _env("WARROOM_RULES_FILE", "")  # empty: ./warroom-rules.yaml when present

    payload_key: SecretStr = _env("WARROOM_PAYLOAD_KEY", SecretStr(""))
    metrics_port: int | None = _env("WARROOM_METRICS_PORT", None)
    # Beyond CONTRACT.md (deployment): platform → region bindings ("lark=cn,dingtalk=cn,wecom=cn": their IM
    # activities run on `<task queue>-cn`), the Temporal UI origins allowed to call the codec endpoint,
    # the log format, and the OpenTelemetry collector (OTLP/HTTP) that enables tracing.
    platform_regions: str = _env("WARROOM_PLATFORM_REGIONS", "")
    codec_cors_origins: str = _env("WARROOM_CODEC_CORS_ORIGINS", "http://localhost:8233,http://localhost:8080")
    log_format: str = _env("WARROOM_LOG_FORMAT", "text", pattern="^(text|json)$")
    otel_endpoint: str = _env("OTEL_EXPORTER_OTLP_ENDPOINT", "")

    # Beyond CONTRACT.md: workflow tuning.
    snooze_choices_minutes: list[int] = _env("WARROOM_SNOOZE_CHOICES", [120, 240, 720])
    max_signals_per_run: int = _env("WARROOM_MAX_SIGNALS_PER_RUN", 1000, ge=10)
    # People who stop being responders leave the room (where the platform can remove members);
    # off: they stay, marked in the timeline. A rule's `room.members` overrides it per incident.
    remove_departed_members: bool = _env("WARROOM_REMOVE_DEPARTED_MEMBERS", False)
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
        if v not in platform_names():
            raise ValueError(f"WARROOM_IM_PLATFORM must be one of {', '.join(platform_names())}, not {v!r}")
        return v

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_is_none(cls, v: object) -> object:
        return None if v == "" else v

    def platform(self, name: str) -> PlatformSettings:
        """The settings of platform `name`: its environment variables, with the values given to
        this object by the same names taking precedence."""
        if name not in self._platforms:
            cls = get_plugin(name).settings_class
            names = {f.validation_alias or n for n, f in cls.model_fields.items()} | set(cls.model_fields)
            given = {k: v for k, v in (self.model_extra or {}).items() if k in names}
            self._platforms[name] = cls(**given)
        return self._platforms[name]

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> Settings:
        copy = super().model_copy(update=update, deep=deep)
        copy._platforms = {}  # an update may name platform settings: build them again
        return copy

    def configured_platforms(self) -> list[str]:
        """Installed platforms whose credentials are set (the sandbox needs none)."""
        return [p for p in platform_names() if self.platform(p).configured()]

    def rules_path(self) -> str | None:
        """The rules file to read: WARROOM_RULES_FILE, else `./warroom-rules.yaml` when present."""
        if self.rules_file:
            return self.rules_file
        return "warroom-rules.yaml" if Path("warroom-rules.yaml").is_file() else None

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
            if not sep or not PLATFORM_NAME.match(platform) or not re.fullmatch(r"[A-Za-z0-9_.-]+", region):
                raise ValueError(
                    f"WARROOM_PLATFORM_REGIONS wants platform=region pairs like 'lark=cn,wecom=cn' "
                    f"(installed platforms: {', '.join(platform_names())}), not {item!r}"
                )
        return v


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
