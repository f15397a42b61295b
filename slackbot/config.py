"""The Slack bot's own settings: Slack's conventional token variables plus ``KQA_SLACK_*`` tunables.

Tokens use Slack's standard names (``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``, ``SLACK_APP_TOKEN``) so
the bot drops into existing Slack deployments; they are ``SecretStr`` so that printing or logging the
settings object never reveals them. Everything about answering (store, LLM, feedback file) stays in
:class:`rag.settings.Settings`.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import KQAError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class SlackConfigError(KQAError):
    """The Slack bot is missing a token/secret or was given contradictory options."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class SlackSettings(BaseSettings):
    """Tokens, transport (Socket Mode or HTTP) and bot behaviour. See the README's Slack section."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    bot_token: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_BOT_TOKEN"), description="Bot token (xoxb-...)."
    )
    signing_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("SLACK_SIGNING_SECRET"),
        description="Signing secret; required in HTTP mode to verify every request.",
    )
    app_token: SecretStr | None = Field(
        None,
        validation_alias=_env("SLACK_APP_TOKEN"),
        description="App-level token (xapp-...); when set the bot connects over Socket Mode.",
    )
    api_url: str = Field(
        DEFAULT_SLACK_API_URL,
        validation_alias=_env("KQA_SLACK_API_URL"),
        description="Slack Web API base URL (tests, enterprise proxies).",
    )
    host: str = Field(
        "0.0.0.0", validation_alias=_env("KQA_SLACK_HOST"), description="HTTP mode bind address."
    )
    port: int = Field(
        3000, ge=0, le=65535, validation_alias=_env("KQA_SLACK_PORT"), description="HTTP mode port."
    )
    events_path: str = Field(
        "/slack/events", validation_alias=_env("KQA_SLACK_EVENTS_PATH"), description="HTTP mode request path."
    )
    command: str = Field(
        "/kubecon", validation_alias=_env("KQA_SLACK_COMMAND"), description="Slash command name."
    )
    workers: int = Field(
        2, ge=1, validation_alias=_env("KQA_SLACK_WORKERS"), description="Answers generated concurrently."
    )
    dedup_ttl_s: float = Field(
        3600.0,
        gt=0,
        validation_alias=_env("KQA_SLACK_DEDUP_TTL_S"),
        description="How long a delivered event id is remembered (Slack retries within ~5 minutes).",
    )
    dedup_url: str | None = Field(
        None,
        validation_alias=_env("KQA_SLACK_DEDUP_URL"),
        description="Where deliveries are claimed: redis://host:6379/0 for replicas on several machines, "
        "sqlite:///path, or memory; default SQLite under KQA_HOME (processes on one machine, restarts).",
    )
    rate_limit_retries: int = Field(
        3,
        ge=0,
        validation_alias=_env("KQA_SLACK_RATE_LIMIT_RETRIES"),
        description="Web API calls retried after HTTP 429, each after the Retry-After delay.",
    )
    history_messages: int = Field(
        12,
        ge=0,
        validation_alias=_env("KQA_SLACK_HISTORY_MESSAGES"),
        description="Thread turns used as history.",
    )
    progress_update_s: float = Field(
        1.5,
        ge=0,
        validation_alias=_env("KQA_SLACK_PROGRESS_UPDATE_S"),
        description="Minimum seconds between progress edits of the placeholder (chat.update is rate limited).",
    )
    progress_reaction: str = Field(
        "eyes",
        validation_alias=_env("KQA_SLACK_PROGRESS_REACTION"),
        description="Reaction added to a question when it is received ('' to disable).",
    )

    @field_validator("bot_token", "signing_secret", "app_token", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        value = (value or DEFAULT_SLACK_API_URL).strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"KQA_SLACK_API_URL must be an http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"

    @field_validator("command")
    @classmethod
    def _command_starts_with_slash(cls, value: str) -> str:
        value = value.strip()
        return value if value.startswith("/") else "/" + value

    @model_validator(mode="after")
    def _token_shapes(self) -> SlackSettings:
        # Catch the most common mix-up early: the app token pasted as the bot token or vice versa.
        if self.bot_token and self.bot_token.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "SLACK_BOT_TOKEN holds an app-level token (xapp-...); use the bot token (xoxb-...)"
            )
        if self.app_token and not self.app_token.get_secret_value().startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        return self

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    def secrets(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        return [s.get_secret_value() for s in (self.bot_token, self.signing_secret, self.app_token) if s]

    def require(self) -> None:
        """Raise a clear error when the chosen transport lacks what it needs."""
        if self.bot_token is None:
            raise SlackConfigError(
                "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-...) from your Slack app's "
                "'OAuth & Permissions' page (see README, 'Slack bot')."
            )
        if not self.socket_mode and self.signing_secret is None:
            raise SlackConfigError(
                "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request with it (Slack app -> "
                "'Basic Information' -> 'Signing Secret'). Or set SLACK_APP_TOKEN to use Socket Mode."
            )
