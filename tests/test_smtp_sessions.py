"""Relay sessions are kept open between mails (issue 12): a nudge day's thousands of mails pay
the connect, EHLO, STARTTLS and login once per session, not once per mail. A session the relay
hung up on, one that carried a refused mail, an old idle one or a full one is never used for
the next mail; every mail still arrives exactly once."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest

from activities import smtp
from activities.smtp import MailRefused, SmtpSender
from tests.relay import FaultyRelay, RelayRules, relay_settings

GOOD = "anna.berger@klinik-nord.example"
GONE = "nicht.mehr@klinik-nord.example"


def mail(to: str, n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "tandem@example.org"
    msg["To"] = to
    msg["Subject"] = f"Wie läuft Ihr Tandem? ({n})"
    msg["Message-ID"] = f"<m{n}@tandem.example>"
    msg.set_content("Guten Tag, bitte antworten Sie kurz.")
    return msg


def ids_stored(relay: FaultyRelay) -> list[str]:
    return sorted(str(m["Message-ID"]) for m in relay.messages())


async def test_mails_in_a_row_share_one_relay_session(tmp_path: Path) -> None:
    async with FaultyRelay(tmp_path / "mail") as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        for n in range(10):
            await sender.send(mail(GOOD, n))
        await sender.close()
        assert len(relay.messages()) == 10
    assert relay.sessions == 1


async def test_a_session_the_relay_hung_up_on_is_replaced_and_no_mail_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "CHECK_IDLE_AFTER", 0.0)  # the next mail comes after a while
    async with FaultyRelay(tmp_path / "mail") as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        await sender.send(mail(GOOD, 1))
        relay.hang_up()  # its idle timeout, or a restart
        await sender.send(mail(GOOD, 2))
        await sender.send(mail(GOOD, 3))
        assert ids_stored(relay) == [
            "<m1@tandem.example>",
            "<m2@tandem.example>",
            "<m3@tandem.example>",
        ]
    assert relay.sessions == 2


async def test_a_relay_restarted_between_mails_gets_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "CHECK_IDLE_AFTER", 0.0)
    relay = FaultyRelay(tmp_path / "mail")
    await relay.start()
    sender = SmtpSender(relay_settings(tmp_path, relay))
    await sender.send(mail(GOOD, 1))
    relay.hang_up()
    await relay.stop()
    with pytest.raises(Exception) as down:
        await sender.send(mail(GOOD, 2))  # nothing listens: retryable, named without details
    assert getattr(down.value, "type", None) == "SmtpUnavailable"
    await relay.start()  # same port
    try:
        await sender.send(mail(GOOD, 2))
        assert ids_stored(relay) == ["<m1@tandem.example>", "<m2@tandem.example>"]
    finally:
        await relay.stop()


async def test_after_a_refused_mail_the_next_goes_out_on_a_fresh_session(tmp_path: Path) -> None:
    rules = RelayRules(refuse_rcpt={GONE: f"550 5.1.1 <{GONE}>: Recipient address rejected"})
    async with FaultyRelay(tmp_path / "mail", rules) as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        await sender.send(mail(GOOD, 1))
        with pytest.raises(MailRefused) as refused:
            await sender.send(mail(GONE, 2))
        assert refused.value.failure == "550 5.1.1"
        await sender.send(mail(GOOD, 3))
        stored = relay.messages()
        assert [str(m["To"]) for m in stored] == [GOOD, GOOD]
        assert ids_stored(relay) == ["<m1@tandem.example>", "<m3@tandem.example>"]
    assert relay.sessions == 2


async def test_sends_at_once_each_get_a_session_and_later_ones_reuse_them(tmp_path: Path) -> None:
    async with FaultyRelay(tmp_path / "mail") as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        await asyncio.gather(*(sender.send(mail(GOOD, n)) for n in range(5)))
        opened = relay.sessions
        for n in range(5, 15):
            await sender.send(mail(GOOD, n))
        assert len(relay.messages()) == 15
    assert 1 <= opened <= 5
    assert relay.sessions == opened


async def test_a_full_or_old_session_is_closed_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "MAILS_PER_SESSION", 3)
    async with FaultyRelay(tmp_path / "mail") as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        for n in range(7):
            await sender.send(mail(GOOD, n))
        assert relay.sessions == 3  # 3 + 3 + 1
        monkeypatch.setattr(smtp, "IDLE_FOR_AT_MOST", 0.0)
        await sender.send(mail(GOOD, 7))
        assert relay.sessions == 4
        assert len(relay.messages()) == 8


async def test_a_hang_up_that_crosses_the_next_mail_is_a_retryable_error_then_it_goes(
    tmp_path: Path,
) -> None:
    """The relay hangs up just as the next mail of a burst starts: that send fails as the
    relay being away (the outbox's activity retries it), and the retry goes out."""
    async with FaultyRelay(tmp_path / "mail") as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        await sender.send(mail(GOOD, 1))
        relay.hang_up()
        try:
            await sender.send(mail(GOOD, 2))
        except Exception as err:  # crossed: nothing of it taken, a retryable error
            assert getattr(err, "type", None) == "SmtpUnavailable"
            assert getattr(err, "non_retryable", True) is False
            await sender.send(mail(GOOD, 2))
        assert ids_stored(relay) == ["<m1@tandem.example>", "<m2@tandem.example>"]
