"""The local SMTP sink: real SMTP in, Maildir on disk, ``tandem mail list/show`` out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from typer.testing import CliRunner

from starter import mail_cmd
from starter.mailsink import ENVELOPE_TO_HEADER, MailSink, get_mail, list_mail
from tandem.settings import get_settings


def _mail(
    subject: str, to: str, *, message_id: str, in_reply_to: str | None = None
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Tandem Mentoring <mentoring@tandem.invalid>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    msg.set_content(f"Guten Tag,\n\n{subject}: schöne Grüße.\n")
    return msg


async def _send(sink: MailSink, msg: EmailMessage, recipients: list[str] | None = None) -> None:
    await aiosmtplib.send(msg, hostname="127.0.0.1", port=sink.port, recipients=recipients)


async def test_mail_is_stored_listed_shown_and_survives_a_new_sink(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    sink = MailSink(maildir, port=0)
    await sink.start()
    try:
        assert sink.port != 0
        first = _mail("Erstes Treffen", "mentee-1@example.org", message_id="<m1@tandem.invalid>")
        await _send(sink, first, ["mentee-1@example.org", "archiv@example.org"])
        second = _mail(
            "Zweites",
            "mentor-1@example.org",
            message_id="<m2@tandem.invalid>",
            in_reply_to="<m1@tandem.invalid>",
        )
        await _send(sink, second)
    finally:
        await sink.stop()

    got = sink.messages()
    assert [m["Subject"] for m in got] == ["Erstes Treffen", "Zweites"]
    assert got[0][ENVELOPE_TO_HEADER] == "mentee-1@example.org, archiv@example.org"
    body = got[0].get_body(preferencelist=("plain",))
    assert body is not None and "schöne Grüße" in body.get_content()

    summaries = list_mail(maildir)
    assert [s.subject for s in summaries] == ["Erstes Treffen", "Zweites"]
    assert summaries[0].to == ("mentee-1@example.org",)
    assert summaries[0].envelope_to == ("mentee-1@example.org", "archiv@example.org")
    assert summaries[0].from_ == "mentoring@tandem.invalid"
    assert summaries[1].message_id == "<m2@tandem.invalid>"
    assert summaries[1].in_reply_to == "<m1@tandem.invalid>"
    assert summaries[0].received_at <= summaries[1].received_at
    assert summaries[0].addressed_to("ARCHIV@example.org")
    assert get_mail(maildir, summaries[1].id)["Message-ID"] == "<m2@tandem.invalid>"
    with pytest.raises(KeyError):
        get_mail(maildir, "no-such-id")

    # A new sink on the same Maildir (a restart) sees the old mail and appends after it.
    again = MailSink(maildir, port=0)
    assert [m["Subject"] for m in again.messages()] == ["Erstes Treffen", "Zweites"]
    async with again:
        await _send(again, _mail("Drittes", "mentee-1@example.org", message_id="<m3@x>"))
    assert [s.subject for s in list_mail(maildir)] == ["Erstes Treffen", "Zweites", "Drittes"]


async def test_a_taken_port_raises_oserror(tmp_path: Path) -> None:
    async with MailSink(tmp_path / "a", port=0) as first:
        with pytest.raises(OSError):
            await MailSink(tmp_path / "b", port=first.port).start()


def test_no_maildir_means_no_mail(tmp_path: Path) -> None:
    assert list_mail(tmp_path / "absent") == []
    with pytest.raises(KeyError):
        get_mail(tmp_path / "absent", "x")


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TANDEM_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


async def test_mail_list_and_show_commands(home: Path) -> None:
    async with MailSink(home / "mail", port=0) as sink:
        await _send(sink, _mail("Hallo A", "a@example.org", message_id="<a@tandem.invalid>"))
        await _send(sink, _mail("Hallo B", "b@example.org", message_id="<b@tandem.invalid>"))
    runner = CliRunner()

    listed = runner.invoke(mail_cmd.app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["subject"] for r in rows] == ["Hallo A", "Hallo B"]
    assert set(rows[0]) >= {"id", "received_at", "from", "to", "subject", "message_id"}
    assert rows[1]["to"] == ["b@example.org"]

    only_b = json.loads(
        runner.invoke(mail_cmd.app, ["list", "--json", "--to", "b@example.org"]).stdout
    )
    assert [r["subject"] for r in only_b] == ["Hallo B"]

    table = runner.invoke(mail_cmd.app, ["list"])
    assert table.exit_code == 0 and rows[0]["id"] in table.stdout

    shown = runner.invoke(mail_cmd.app, ["show", rows[0]["id"]])
    assert shown.exit_code == 0, shown.output
    assert "Subject: Hallo A" in shown.stdout
    assert "Message-ID: <a@tandem.invalid>" in shown.stdout
    assert "schöne Grüße" in shown.stdout

    as_json = json.loads(runner.invoke(mail_cmd.app, ["show", rows[1]["id"], "--json"]).stdout)
    assert as_json["subject"] == "Hallo B" and "schöne Grüße" in as_json["text"]

    missing = runner.invoke(mail_cmd.app, ["show", "nope"])
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == [
        "error: no mail with id 'nope': see `tandem mail list`"
    ]


def test_mail_list_without_any_mail(home: Path) -> None:
    result = CliRunner().invoke(mail_cmd.app, ["list", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
