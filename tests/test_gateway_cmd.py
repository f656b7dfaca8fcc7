"""``tandem gateway`` standalone: against Temporal's dev server and PostgreSQL, a reply for a
tandem Temporal does not know is refused as such (the real answerer, NOT_FOUND), and the
command stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

import aiosmtplib
import asyncpg
from temporalio.testing import WorkflowEnvironment

from starter.devstack import port_in_use
from starter.mailsink import MailSink
from tandem.models import Role
from tandem.settings import Settings
from tests.reply_support import mint_token, put_tandem, reply_mail, settle
from tests.support import BIN, eventually, free_port


async def test_help_and_a_one_line_refusal_without_a_database(settings: Settings) -> None:
    env = {**os.environ, "TANDEM_HOME": str(settings.home / "empty")}
    env.pop("DATABASE_URL", None)
    env.pop("TANDEM_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "tandem"), "gateway", "--help", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0 and b"--lmtp" in out
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "tandem"), "gateway", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    assert (
        err.decode().strip() == "error: no database: start `tandem dev` first, or set DATABASE_URL"
    )


async def test_standalone_gateway_refuses_an_answer_for_an_unknown_tandem(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TANDEM_SMTP_PORT": str(sink.port),
        "TANDEM_GATEWAY_PORT": str(port),
        "TANDEM_REPLY_TOKEN_SECRET": settings.reply_token_secret.get_secret_value(),
    }
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "tandem"),
        "gateway",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(
            lambda: asyncio.to_thread(port_in_use, "127.0.0.1", port), bool, timeout=30
        )
        tandem = await put_tandem(db)  # on file, but never enrolled: no workflow
        token = await mint_token(db, settings, tandem, Role.MENTEE)
        msg = reply_mail(settings, token, sender=tandem.mentee_email, text="getroffen")
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)
        [row] = await settle(db, 1, timeout=30)
        assert (row["verdict"], row["reason"], row["intent"]) == ("refused", "no_tandem", "met")
        help_mail = await eventually(
            lambda: asyncio.to_thread(sink.messages), lambda found: len(found) == 1, timeout=10
        )
        assert help_mail[0]["To"] == tandem.mentee_email
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    assert f"reply gateway listening on 127.0.0.1:{port} (SMTP)" in out.decode()
    assert tandem.mentee_email not in out.decode() + err.decode()
