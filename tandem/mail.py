"""Outgoing mail, pure: deterministic Message-IDs, reply tokens and template rendering.

Texts live as Jinja files in ``tandem/templates/<language>/<name>.txt.j2``; each file has a
``subject`` block and a ``body`` block.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES_DIR = Path(__file__).parent / "templates"


def message_id(idempotency_key: str, domain: str, token: str | None = None) -> str:
    """The same key always gives the same ``Message-ID``, so a resend is recognisable.

    A request mail's id also carries its reply token: a reply's ``In-Reply-To``/``References``
    still finds the request when a mail system rewrote the ``To`` address.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
    return f"<{digest}.{token}@{domain}>" if token else f"<{digest}@{domain}>"


def reply_token(secret: bytes, idempotency_key: str) -> str:
    """128 bits derived by HMAC from the mail's key: unguessable, and stable across retries."""
    mac = hmac.new(secret, idempotency_key.encode(), hashlib.sha256).digest()[:16]
    return base64.b32encode(mac).decode().rstrip("=").lower()


def token_hash(token: str) -> bytes:
    """Tokens are stored hashed only: a leaked table does not leak valid reply addresses."""
    return hashlib.sha256(token.encode()).digest()


def reply_address(token: str, domain: str) -> str:
    return f"reply+{token}@{domain}"


@lru_cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - plain-text mail, never HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class RenderedMail:
    __slots__ = ("body", "subject")

    def __init__(self, subject: str, body: str) -> None:
        self.subject = subject
        self.body = body


def render(template: str, language: str, context: dict[str, Any]) -> RenderedMail:
    """Render ``template`` in ``language`` (falls back to German, the default)."""
    env = _environment()
    lang = language if (TEMPLATES_DIR / language / f"{template}.txt.j2").is_file() else "de"
    tmpl = env.get_template(f"{lang}/{template}.txt.j2")
    ctx = tmpl.new_context(dict(context))
    subject = "".join(tmpl.blocks["subject"](ctx)).strip()
    body = "".join(tmpl.blocks["body"](ctx)).strip() + "\n"
    return RenderedMail(subject=subject, body=body)
