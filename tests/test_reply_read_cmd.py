"""``tandem reply read`` reads a mail exactly as the running gateway does: the same files,
once through the command (a real subprocess) and once over SMTP into the real gateway, give
the same action, intent and details. Bad input gets one clear line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib
import asyncpg
import pytest_asyncio

from activities.smtp import SmtpSender
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mailsink import MailSink
from tandem.answers import RequestKind
from tandem.models import Role
from tandem.settings import Settings
from tests.reply_support import FakeAnswerer, mint_token, put_tandem, reply_mail, settle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FAST = RetryPolicy(first_delay=0.05, max_delay=0.2, poll=0.5)

# (request, what the person wrote) - plain answers, one asked back, unclear ones
REPLIES = [
    (RequestKind.DECISION, "Ja, sehr gerne weiter!"),
    (RequestKind.DECISION, "Weitermachen? Auf keinen Fall."),
    (RequestKind.DECISION, "Ich weiß nicht, ob das passt."),
    (RequestKind.NUDGE, "Wir haben uns gestern getroffen, danke der Nachfrage"),
    (RequestKind.NUDGE, "Hilfe brauche ich keine"),
    (RequestKind.NUDGE, "Meine Freundin möchte ihr Studium abbrechen."),
    (RequestKind.PHASE_CHECK, "Die neue Phase hat bei mir noch nicht begonnen."),
    (RequestKind.SHADOWING, "Hospitation gern, Dienstag"),
]


def tandem(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", *args],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest_asyncio.fixture
async def gateway(
    db: asyncpg.Pool, settings: Settings, answerer: FakeAnswerer, sink: MailSink
) -> AsyncIterator[ReplyGateway]:
    gw = ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=FAST, port=0)
    await gw.start()
    yield gw
    await gw.stop()


@pytest_asyncio.fixture
async def answerer() -> FakeAnswerer:
    return FakeAnswerer()


async def test_reply_read_gives_the_gateways_reading(
    tmp_path: Path,
    db: asyncpg.Pool,
    settings: Settings,
    gateway: ReplyGateway,
    answerer: FakeAnswerer,
) -> None:
    pair = await put_tandem(db)
    seen_by_gateway: list[dict[str, object]] = []
    for n, (kind, text) in enumerate(REPLIES):
        role = Role.MENTOR if kind is RequestKind.SHADOWING else Role.MENTEE
        token = await mint_token(db, settings, pair, role, kind, number=n)
        mail = reply_mail(settings, token, sender=pair.email(role), text=text)
        mail.replace_header("Date", format_datetime(datetime.now(UTC)))  # sent = received
        (tmp_path / f"{n:02d}-{kind.value}.eml").write_bytes(bytes(mail))
        calls = len(answerer.calls)
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=gateway.port)
        [*_, row] = await settle(db, n + 1, timeout=30)
        if row["verdict"] == "accepted":
            [(_, answer, _)] = answerer.calls[calls:]
            details = answer.details.model_dump(mode="json", exclude_none=True)
            seen_by_gateway.append({"action": "apply", "intent": row["intent"], **details})
        elif row["reason"] == "needs_confirmation":
            seen_by_gateway.append({"action": "confirm", "intent": row["intent"]})
        else:
            assert row["verdict"] == "refused"
            seen_by_gateway.append({"action": "refuse", "intent": None})

    seen_by_command: list[dict[str, object]] = []
    for n, (kind, _) in enumerate(REPLIES):
        result = tandem(
            "reply",
            "read",
            "--request",
            kind.value,
            "--json",
            str(tmp_path / f"{n:02d}-{kind.value}.eml"),
        )
        assert result.returncode == 0, result.stderr
        reading = json.loads(result.stdout)
        assert set(reading) == {"action", "intent", "details", "reason"}
        short = {"action": reading["action"], "intent": reading["intent"]}
        if reading["action"] == "apply":
            short |= reading["details"]
        seen_by_command.append(short)

    assert seen_by_command == seen_by_gateway
    # the readings are not all alike: the corpus above has each action at least once
    assert {r["action"] for r in seen_by_command} == {"apply", "confirm", "refuse"}


def test_reply_read_of_a_directory_prints_one_object_per_file(tmp_path: Path) -> None:
    for name, text in (("a", "Ja"), ("b", "Nein danke"), ("c", "Wie bitte?")):
        (tmp_path / f"{name}.eml").write_text(
            f"From: x@example.org\nSubject: Re: Frage\n\n{text}\n", encoding="utf-8"
        )
    (tmp_path / "ignored.txt").write_text("Ja\n", encoding="utf-8")
    result = tandem("reply", "read", "--request", "decision", "--json", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["file"], r["action"], r["intent"]) for r in lines] == [
        ("a.eml", "apply", "continue"),
        ("b.eml", "apply", "decline"),
        ("c.eml", "refuse", None),
    ]


def test_reply_read_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    unknown = tandem("reply", "read", "--request", "birthday", str(tmp_path))
    missing = tandem("reply", "read", "--request", "nudge", str(tmp_path / "nope.eml"))
    empty_dir = tandem("reply", "read", "--request", "nudge", str(tmp_path))
    for result in (unknown, missing, empty_dir):
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"Content-Type: multipart/mixed\n\nno boundary at all\n")
    broken = tandem("reply", "read", "--request", "nudge", "--json", str(garbage))
    assert broken.returncode == 0
    assert json.loads(broken.stdout)["action"] == "refuse"
