"""The reply grammar (pure): German and English answers, only what a request allows, dates
and weeks, negation, and the cutting of quotes, signatures, markers and HTML."""

from __future__ import annotations

import time
from datetime import date

import pytest

from replies.text import html_to_text, reply_text
from tandem.answers import ALLOWED, AnswerDetails, Intent, RequestKind
from tandem.mail import (
    TOKEN_REF_BYTES,
    build_reply_address,
    message_id,
    reply_token,
    token_from_address,
    token_hash,
    token_ref_from_message_id,
)
from tandem.reply_grammar import REPLY_MARKER, read_reply
from tandem.settings import Settings

TODAY = date(2026, 5, 20)
K = RequestKind


@pytest.mark.parametrize(
    ("text", "kind", "intent", "details"),
    [
        ("Ja", K.DECISION, Intent.CONTINUE, AnswerDetails()),
        ("yes", K.DECISION, Intent.CONTINUE, AnswerDetails()),
        ("Ja, gerne weiter!", K.DECISION, Intent.CONTINUE, AnswerDetails()),
        ("nein", K.DECISION, Intent.DECLINE, AnswerDetails()),
        ("Wir möchten nicht weitermachen.", K.DECISION, Intent.DECLINE, AnswerDetails()),
        ("unentschieden", K.DECISION, Intent.UNDECIDED, AnswerDetails()),
        ("I don't know yet", K.DECISION, Intent.UNDECIDED, AnswerDetails()),
        ("Ja, wir haben uns getroffen", K.NUDGE, Intent.MET, AnswerDetails()),
        ("Ja, wir haben uns am 3.5. getroffen", K.NUDGE, Intent.MET,
         AnswerDetails(met_on=date(2026, 5, 3))),
        ("met on 2026-05-03", K.NUDGE, Intent.MET, AnswerDetails(met_on=date(2026, 5, 3))),
        ("getroffen am 14. März", K.NUDGE, Intent.MET, AnswerDetails(met_on=date(2026, 3, 14))),
        ("We met on May 3rd", K.NUDGE, Intent.MET, AnswerDetails(met_on=date(2026, 5, 3))),
        ("getroffen am 30.12.", K.NUDGE, Intent.MET, AnswerDetails(met_on=date(2025, 12, 30))),
        ("Wir haben uns vor 2 Wochen getroffen", K.NUDGE, Intent.MET,
         AnswerDetails(met_on=date(2026, 5, 6))),
        ("met yesterday", K.NUDGE, Intent.MET, AnswerDetails(met_on=date(2026, 5, 19))),
        ("Wir haben telefoniert.", K.NUDGE, Intent.MET, AnswerDetails()),
        ("yes", K.NUDGE, Intent.MET, AnswerDetails()),
        ("später", K.NUDGE, Intent.SNOOZE, AnswerDetails()),
        ("Spaeter bitte", K.NUDGE, Intent.SNOOZE, AnswerDetails()),
        ("in 3 Wochen", K.NUDGE, Intent.SNOOZE, AnswerDetails(snooze_weeks=3)),
        ("in 3 weeks", K.NUDGE, Intent.SNOOZE, AnswerDetails(snooze_weeks=3)),
        ("später in drei Wochen", K.NUDGE, Intent.SNOOZE, AnswerDetails(snooze_weeks=3)),
        ("in 2 Monaten", K.PHASE_CHECK, Intent.SNOOZE, AnswerDetails(snooze_weeks=9)),
        ("Nein, wir haben uns noch nicht getroffen", K.NUDGE, Intent.SNOOZE, AnswerDetails()),
        ("Hilfe", K.NUDGE, Intent.HELP, AnswerDetails()),
        ("Hilfe und Stop", K.NUDGE, Intent.HELP, AnswerDetails()),  # the office calls first
        ("help please", K.DECISION, Intent.HELP, AnswerDetails()),
        ("stop", K.NUDGE, Intent.STOP, AnswerDetails()),
        ("Ich möchte das Tandem beenden.", K.DECISION, Intent.STOP, AnswerDetails()),
        ("Hospitation", K.NUDGE, Intent.SHADOWING, AnswerDetails()),
        ("shadowing", K.NUDGE, Intent.SHADOWING, AnswerDetails()),
        ("Ja, gerne!", K.SHADOWING, Intent.CONTINUE, AnswerDetails()),
        ("Leider nicht.", K.SHADOWING, Intent.DECLINE, AnswerDetails()),
        ("weiter", K.DECISION, Intent.CONTINUE, AnswerDetails()),
        ("neue Phase", K.PHASE_CHECK, Intent.PHASE_DONE, AnswerDetails()),
        ("phase done", K.PHASE_CHECK, Intent.PHASE_DONE, AnswerDetails()),
        ("Ja", K.PHASE_CHECK, Intent.PHASE_DONE, AnswerDetails()),
        ("Noch nicht", K.PHASE_CHECK, Intent.SNOOZE, AnswerDetails()),
        ("Hallo Frau Dr. Muster,\n\nvielen Dank!\n\nJa, gerne.", K.DECISION, Intent.CONTINUE,
         AnswerDetails()),
    ],
)  # fmt: skip
def test_answers_are_read(
    text: str, kind: RequestKind, intent: Intent, details: AnswerDetails
) -> None:
    reading = read_reply(text, kind, today=TODAY)
    assert (reading.intent, reading.details, reading.problem) == (intent, details, None)
    assert intent in ALLOWED[kind]


@pytest.mark.parametrize(
    ("text", "kind", "problem", "found"),
    [
        ("Hospitation", K.DECISION, "not_allowed", Intent.SHADOWING),
        ("neue Phase", K.NUDGE, "not_allowed", Intent.PHASE_DONE),
        ("weiter", K.NUDGE, "not_allowed", Intent.CONTINUE),
        ("ja nein", K.DECISION, "ambiguous", None),
        ("Wie geht es Ihnen?", K.NUDGE, "not_understood", None),
        ("No help needed, thanks", K.NUDGE, "not_understood", None),
        ("I don't want to stop", K.NUDGE, "not_understood", None),
        ("", K.NUDGE, "empty", None),
        ("Hallo!\n\nViele Grüße", K.NUDGE, "empty", None),
        ("\n".join(f"Zeile {n}" for n in range(16)) + "\nja", K.DECISION, "not_understood", None),
    ],
)
def test_what_is_not_an_answer_is_never_guessed(
    text: str, kind: RequestKind, problem: str, found: Intent | None
) -> None:
    reading = read_reply(text, kind, today=TODAY)
    assert (reading.intent, reading.problem, reading.found) == (None, problem, found)


def test_a_future_date_is_no_meeting_date() -> None:
    reading = read_reply("getroffen am 2026-06-01", K.NUDGE, today=TODAY)
    assert (reading.intent, reading.details.met_on) == (Intent.MET, None)


def test_weeks_are_capped_to_what_an_answer_allows() -> None:
    reading = read_reply("in 300 Wochen", K.NUDGE, today=TODAY)
    assert reading.details.snooze_weeks == 52


# -- text: quotes, signatures, markers, HTML ------------------------------------------------------

ORIGINAL = f"{REPLY_MARKER['de']}\n\nGuten Tag,\n\nAntworten Sie einfach mit:\n  ja\n  nein\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Thunderbird / Apple Mail / Gmail (German)
        ("Ja, getroffen.\n\nViele Grüße\nJonas\n\nAm 01.05.2026 um 10:00 schrieb Büro <b@x>:\n"
         + "".join(f"> {ln}\n" for ln in ORIGINAL.splitlines()), "Ja, getroffen."),
        # Outlook (German): no quoting, a Von:/Gesendet: block
        ("später\n\nMit freundlichen Grüßen\nDr. H. Muster\n\nVon: Büro <b@x>\n"
         "Gesendet: Freitag, 1. Mai 2026 10:00\nAn: Muster\nBetreff: Nachfrage\n\n" + ORIGINAL,
         "später"),
        # Outlook with nothing written on top: no answer (never the original's words)
        ("\n\nVon: Büro <b@x>\nGesendet: Freitag, 1. Mai 2026 10:00\nAn: Muster\n"
         "Betreff: Nachfrage\n\nGuten Tag,\nja \u2013 ich möchte fortsetzen\n", ""),
        # English with a "-- " signature and a phone footer
        ("yes we met\n-- \nLea\n\nSent from my iPhone\n\nOn Fri, 1 May 2026, Office <b@x> wrote:\n"
         "> no\n", "yes we met"),
        # An answer below the quote
        ("On Fri, 1 May 2026, Office <b@x> wrote:\n> question?\n> " + REPLY_MARKER["en"]
         + "\n\nyes\n", "yes"),
        # Our marker unquoted (a client that does not quote)
        ("Hilfe\n\n" + ORIGINAL, "Hilfe"),
    ],
)  # fmt: skip
def test_reply_text_is_what_was_written_on_top(body: str, expected: str) -> None:
    assert reply_text(body).strip() == expected


def test_html_only_mail_drops_quotes_and_outlook_originals() -> None:
    gmail = (
        '<div dir="ltr">Ja, gerne<br>Viele Grüße<br>Anna</div><br><div class="gmail_quote">'
        "<div>Am Fr., 1. Mai 2026 um 10:00 Uhr schrieb Büro &lt;b@x&gt;:</div>"
        '<blockquote class="gmail_quote">nein<br>Stop</blockquote></div>'
    )
    assert reply_text(html_to_text(gmail)) == "Ja, gerne"
    outlook = (
        "<html><head><style>p{color:red}</style></head><body><p>Stop</p>"
        '<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>Von:</b> Büro</div>'
        "<p>ja</p></body></html>"
    )
    assert reply_text(html_to_text(outlook)) == "Stop"
    unclosed = "<p>Hilfe<p>bitte<blockquote type=cite><p>stop</blockquote><p>danach"
    assert html_to_text(unclosed) == "Hilfe\nbitte\n\ndanach"


# -- reply addresses ---------------------------------------------------------------------------


def test_reply_addresses_in_both_styles_carry_the_token() -> None:
    token = reply_token(b"k", "key")
    assert len(token) == 26
    domain = build_reply_address(token, "domain", reply_domain="reply.example.org")
    assert domain == f"reply+{token}@reply.example.org"
    plus = build_reply_address(
        token, "plus", reply_domain="reply.example.org", office_address="Buero@Uni.example.org"
    )
    assert plus == f"Buero+{token}@Uni.example.org"
    for address in (domain, plus, f"Jonas <{domain.upper()}>"):
        found = token_from_address(
            address, reply_domain="reply.example.org", office_address="buero@uni.example.org"
        )
        assert found == token
    for wrong in (
        f"reply+{token}@elsewhere.example.org",
        f"other+{token}@uni.example.org",
        "reply+short@reply.example.org",
        f"reply-{token}@reply.example.org",
        "not an address",
    ):
        assert (
            token_from_address(
                wrong, reply_domain="reply.example.org", office_address="buero@uni.example.org"
            )
            is None
        )
    with pytest.raises(ValueError, match="office address"):
        build_reply_address(token, "plus", reply_domain="r.example.org")


def test_settings_build_the_configured_style_and_the_message_id_refers_to_the_token() -> None:
    token = reply_token(b"k", "key")
    assert Settings(reply_address_style="plus").reply_address(token) == (
        f"mentoring+{token}@tandem.invalid"
    )
    assert Settings().reply_address(token) == f"reply+{token}@reply.tandem.invalid"
    mid = message_id("key", "tandem.invalid", token)
    assert token not in mid  # only a reference: a kept Message-ID is no reply address
    assert token_ref_from_message_id(mid, "tandem.invalid") == token_hash(token)[:TOKEN_REF_BYTES]
    assert token_ref_from_message_id(mid, "other.invalid") is None
    assert token_ref_from_message_id(message_id("key", "tandem.invalid"), "tandem.invalid") is None


@pytest.mark.parametrize(
    "text",
    [
        " " * 40_000 + "\n-- Bitte oberhalb dieser Zeile antworten --\nja",
        "Am " + " \t" * 20_000 + "schrieb",
        "a\n" * 100_000,
        "nicht " * 20_000 + "aufhören",
        "Von: " + "x " * 30_000,
    ],
    ids=["spaces-before-marker", "blank-attribution", "100k-lines", "negations", "header"],
)
def test_hostile_text_is_read_in_milliseconds(text: str) -> None:
    started = time.perf_counter()
    read_reply(text, K.NUDGE, today=TODAY, subject="AW: " + " " * 10_000 + "x")
    assert time.perf_counter() - started < 0.5
