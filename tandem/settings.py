"""Runtime configuration, read from ``TANDEM_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.mail import build_reply_address

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything a process needs to find Temporal, Postgres and SMTP."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", env_file=".env", extra="ignore")

    home: Path = Path(".tandem")
    programs_dir: Path = PROJECT_ROOT / "programs"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    #: A profile of Temporal's client config file (TOML, as the ``temporal`` CLI reads it):
    #: address, namespace, TLS client certificate, API key, for a self-hosted cluster or
    #: Temporal Cloud. Used when either is set; ``TANDEM_TEMPORAL_ADDRESS`` / ``_NAMESPACE``,
    #: when set, still win. See ``deploy/temporal.toml.example``.
    temporal_profile: str | None = None
    temporal_config_file: Path | None = None
    #: When set, ``tandem worker`` and ``tandem gateway`` serve Prometheus metrics (the
    #: Temporal SDK's and Tandem's own) on this port, ``/metrics``.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    #: Payload encryption (AES-GCM): ``KEY_ID:BASE64_KEY`` pairs separated by commas, 32-byte
    #: keys; the first one encrypts, every one decrypts (rotation). Unset: payloads are plain.
    payload_keys: SecretStr | None = None
    #: ``tandem codec-server``: where it listens, the bearer token the Web UI must send, and
    #: the UI origins it answers (CORS), comma-separated.
    codec_host: str = "127.0.0.1"
    codec_port: int = 8234
    codec_token: SecretStr | None = None
    codec_cors_origins: str = "http://localhost:8233,http://127.0.0.1:8233"
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
    #: ``worker``: each worker sends its mails itself. ``mailer``: workers hand their mails to
    #: ``tandem mailer``, the one process that talks to the relay, so a worker that crashes
    #: while the relay has a mail but has not said 250 cannot send it twice.
    mail_delivery: Literal["worker", "mailer"] = "worker"
    #: Retention (``tandem retention``): days a sent mail keeps its text and address, days
    #: the gateway keeps its verdict on a reply.
    retention_mail_body_days: int = Field(default=90, ge=1)
    retention_reply_verdict_days: int = Field(default=365, ge=1)
    #: Mails one ``tandem mailer`` sends at a time.
    mailer_concurrency: int = Field(default=8, ge=1)
    #: Activities one ``tandem worker`` runs at a time; its database pool has as many
    #: connections (and two more), so no activity waits for a connection (a mail holds one
    #: while the relay takes it). Mind PostgreSQL's ``max_connections`` over all workers.
    worker_activity_concurrency: int = Field(default=20, ge=1, le=500)

    mail_from: str = "Tandem Mentoring <mentoring@tandem.invalid>"
    mail_domain: str = "tandem.invalid"
    reply_domain: str = "reply.tandem.invalid"
    reply_token_secret: SecretStr = SecretStr("dev-only-secret-change-me")
    reply_token_days: int = 60
    #: ``domain``: replies go to ``reply+TOKEN@<reply_domain>`` (a domain routed to the
    #: gateway); ``plus``: to ``<office>+TOKEN@<office domain>`` (plus-addressing of an office
    #: mailbox, read over IMAP or forwarded to the gateway).
    reply_address_style: Literal["domain", "plus"] = "domain"
    #: The office mailbox for the ``plus`` style; empty: the address in ``mail_from``.
    reply_office_address: str = ""

    #: The reply gateway (``tandem gateway``; part of ``tandem dev``): SMTP, or LMTP behind
    #: Postfix.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8026
    gateway_lmtp: bool = False
    gateway_hostname: str = "tandem-gateway"
    gateway_max_message_bytes: int = 10_000_000
    #: How long the durable inbox keeps retrying an answer no worker took yet.
    gateway_retry_days: float = 7.0
    #: Seconds one ``answer`` update may take before the inbox tries again later.
    gateway_answer_timeout: float = 30.0
    #: When set, mail whose ``Authentication-Results`` from this server says ``dmarc=fail``
    #: is refused (the MTA in front of the gateway checked SPF/DKIM/DMARC).
    gateway_trusted_authserv_id: str | None = None

    #: The IMAP transport: when ``imap_host`` is set, ``tandem gateway`` (and ``tandem dev``)
    #: also read replies from this mailbox folder, store them in the same durable inbox and
    #: move them to ``imap_processed_folder``. Mail that is no reply to us is left alone.
    imap_host: str | None = None
    imap_port: int = 993
    imap_username: str = ""
    imap_password: SecretStr | None = None
    #: XOAUTH2 (SASL, as Google and Microsoft 365 take it) instead of the password: a bearer
    #: token, or a file holding one that is read again at every login (for a token another
    #: process refreshes).
    imap_xoauth2_token: SecretStr | None = None
    imap_xoauth2_token_file: Path | None = None
    #: Implicit TLS with certificate and host name verification; ``false`` (plain IMAP) only
    #: for a server on loopback or another trusted network.
    imap_ssl: bool = True
    #: Trust this CA file (PEM) instead of the system's: an internal or self-signed server.
    imap_ca_file: Path | None = None
    imap_folder: str = "INBOX"
    #: ``/`` separates levels (turned into the server's own separator).
    imap_processed_folder: str = "Tandem/Processed"
    #: Seconds between looks at the folder; with IDLE, new mail is taken at once anyway.
    imap_poll_seconds: float = 30.0
    imap_idle: bool = True

    log_format: str = "console"
    log_level: str = "info"

    @property
    def office_address(self) -> str:
        """The office mailbox plus-addressing uses: explicit, else ``mail_from``'s address."""
        return self.reply_office_address or parseaddr(self.mail_from)[1]

    def reply_address(self, token: str) -> str:
        """The ``Reply-To`` of a mail whose reply token is ``token``, in the configured style."""
        return build_reply_address(
            token,
            self.reply_address_style,
            reply_domain=self.reply_domain,
            office_address=self.office_address,
        )

    @property
    def mail_dir(self) -> Path:
        """Where the local SMTP sink of ``tandem dev`` keeps every mail (a Maildir)."""
        return self.home / "mail"


@lru_cache
def get_settings() -> Settings:
    return Settings()
