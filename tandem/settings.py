"""Runtime configuration, read from ``TANDEM_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything a process needs to find Temporal, Postgres and SMTP."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", env_file=".env", extra="ignore")

    home: Path = Path(".tandem")
    programs_dir: Path = PROJECT_ROOT / "programs"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    task_queue: str = "tandem"

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TANDEM_DATABASE_URL", "DATABASE_URL")
    )

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False

    mail_from: str = "Tandem Mentoring <mentoring@tandem.invalid>"
    mail_domain: str = "tandem.invalid"
    reply_domain: str = "reply.tandem.invalid"
    reply_token_secret: SecretStr = SecretStr("dev-only-secret-change-me")
    reply_token_days: int = 60

    log_format: str = "console"
    log_level: str = "info"

    @property
    def mail_dir(self) -> Path:
        """Where the local SMTP sink of ``tandem dev`` keeps every mail (a Maildir)."""
        return self.home / "mail"


@lru_cache
def get_settings() -> Settings:
    return Settings()
