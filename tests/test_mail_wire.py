"""The mail as it goes over the wire (``activities.mail.plain_text`` and its headers, built the
classic way for speed): whatever the office writes in a subject, a sender name or a body comes
out of a standard parser exactly as written, and no line breaks SMTP's limit."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from aiosmtplib.email import flatten_message

from activities.mail import MAX_LINE, address_header, plain_text, text_header

SUBJECTS = [
    "Ihr Tandem",
    "Wie läuft Ihr Tandem?",
    "Rückmeldung erbeten: Ihr Tandem mit Frau Dr. med. Öztürk-Weiß (Kinder- und Jugendmedizin,"
    " Klinikum Süd) \u2013 bitte bis Freitag antworten",
    "=?utf-8?q?looks_encoded?= but is not",
    "Ärztin ✓ 🙂",
]


def wire(subject: str, body: str, sender: str = "Tandem <t@stadt.example>") -> bytes:
    msg = plain_text(body)
    msg["From"] = address_header(sender)
    msg["To"] = address_header("anna.berger@klinik-nord.example")
    msg["Subject"] = text_header("Subject", subject)
    return flatten_message(msg)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_subject_reads_back_as_written(subject: str) -> None:
    parsed = message_from_bytes(wire(subject, "Guten Tag"), policy=policy.default)
    assert str(parsed["Subject"]) == subject


def test_a_sender_name_with_umlauts_reads_back() -> None:
    raw = wire("Hallo", "Guten Tag", '"Büro für Mentoring, Stadt Köln" <mentoring@stadt.example>')
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Büro für Mentoring, Stadt Köln"
    assert parsed["From"].addresses[0].addr_spec == "mentoring@stadt.example"


def test_a_short_lined_body_is_readable_in_the_raw_mail() -> None:
    body = "Guten Tag Frau Dr. Weber,\n\nwie läuft es? Antworten Sie: gut / schwierig.\n"
    raw = wire("Hallo", body)
    assert "wie läuft es?".encode() in raw
    assert message_from_bytes(raw, policy=policy.default).get_content() == body


def test_a_body_line_too_long_for_smtp_is_encoded_and_reads_back() -> None:
    body = "Ä" * 700 + " Ende.\nzweite Zeile\n"  # 1,400 bytes in one line
    raw = wire("Hallo", body)
    assert max(len(line) for line in raw.split(b"\n")) <= MAX_LINE
    assert message_from_bytes(raw, policy=policy.default).get_content() == body
