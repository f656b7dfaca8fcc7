"""Every lifecycle mail exists in every language and renders for every recipient it can have,
including a tandem that has no mentor (waiting, rematching, ended before a match)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tandem.durations import ago, every, human_duration, within
from tandem.lifecycle import Template
from tandem.mail import TEMPLATES_DIR, mail_context, render
from tandem.messages import MailRequest
from tandem.models import Language, Role
from tandem.programs import load_programs
from tests.support import mentee, mentor

PROGRAMS = load_programs(Path(__file__).parent.parent / "programs")
LANGUAGES = [lang.value for lang in Language]
FACTS = {
    "audience": "mentee",
    "phase": "residency",
    "next_phase": "residency",
    "cadence_days": "30",
    "until": "2027-03-01",
    "accepted": "yes",
    "by": "mentor",
    "role": "mentee",
    "waiting_for": "mentor",
    "rematches": "3",
    "reminder": "yes",
    "code": "550 5.1.1",
    "person_id": "M-7",
    "template": "decision_request",
    "cause": "UnknownProgram",
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", list(Template), ids=[t.value for t in Template])
def test_every_template_exists_in_every_language(template: Template, language: str) -> None:
    assert (TEMPLATES_DIR / language / f"{template.value}.txt.j2").is_file()


def _recipients(template: Template) -> list[Role]:
    if template.to_office:
        return [Role.COORDINATOR]
    if template in (Template.INTRODUCTION_MENTEE, Template.PHASE_CHECK):
        return [Role.MENTEE]
    if template in (Template.INTRODUCTION_MENTOR, Template.SHADOWING_REQUEST):
        return [Role.MENTOR]
    return [Role.MENTEE, Role.MENTOR]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", list(Template), ids=[t.value for t in Template])
def test_every_template_renders_for_every_recipient(template: Template, language: str) -> None:
    program = PROGRAMS["stipendium-hausarzt"]
    the_mentee = mentee("S-1", language=Language(language))
    the_mentor = mentor("M-1", language=Language(language))
    cases: list[tuple[Role, bool]] = [(to, True) for to in _recipients(template)]
    if template not in (Template.INTRODUCTION_MENTEE, Template.INTRODUCTION_MENTOR):
        cases += [(to, False) for to in _recipients(template) if to is not Role.MENTOR]
    for to, matched in cases:
        for facts in ({}, FACTS):
            request = MailRequest(
                idempotency_key="S-1/e1/1/x/y",
                template=template.value,
                to=to,
                mentee_id="S-1",
                mentor_id="M-1" if matched else None,
                program=program.id,
                phase="study",
                facts=facts,
            )
            recipient, context = mail_context(
                request, program, the_mentee, the_mentor if matched else None
            )
            lang = recipient.language.value if recipient else program.language.value
            mail = render(template.value, lang, context)
            assert mail.subject.strip() and len(mail.body) > 40, (template, to, matched)
            assert "None" not in mail.subject + mail.body, (template, to, matched, facts)
            if to is Role.COORDINATOR:  # the office's mail names ids, never the people
                assert "Jonas" not in mail.body and "@studium" not in mail.body


# -- what a busy reader needs: one ask, no dropped replies, durations as said ---------------

#: The mails the lifecycle sends with a request (a reply answers it); every other mail to a
#: person only informs.
ASKING = {
    Template.INTRODUCTION_MENTEE,
    Template.INTRODUCTION_MENTOR,
    Template.DECISION_REQUEST,
    Template.DECISION_REMINDER,
    Template.NUDGE,
    Template.PHASE_CHECK,
    Template.SHADOWING_REQUEST,
}
PERSON_TEMPLATES = [t for t in Template if not t.to_office]


def _mail(
    template: Template,
    language: str,
    *,
    program: str = "stipendium-hausarzt",
    request_id: str | None = None,
    facts: dict[str, str] | None = None,
) -> str:
    """Subject and body of ``template`` as the lifecycle's mail activity renders it."""
    mentor_mails = (Template.INTRODUCTION_MENTOR, Template.SHADOWING_REQUEST)
    the_program = PROGRAMS[program]
    request = MailRequest(
        idempotency_key="S-1/e1/1/x/y",
        template=template.value,
        to=Role.MENTOR if template in mentor_mails else Role.MENTEE,
        mentee_id="S-1",
        mentor_id="M-1",
        program=the_program.id,
        phase=the_program.phases[0].name,
        request_id=request_id,
        facts=facts or {},
    )
    lang = Language(language)
    people = (mentee("S-1", language=lang), mentor("M-1", language=lang))
    _, context = mail_context(request, the_program, *people)
    mail = render(template.value, language, context)
    return mail.subject + "\n" + mail.body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", PERSON_TEMPLATES, ids=[t.value for t in PERSON_TEMPLATES])
def test_only_a_mail_that_asks_invites_a_reply(template: Template, language: str) -> None:
    """The footer used to say "Bitte antworten Sie einfach auf diese E-Mail" under every
    mail, also under news that no reply can change: such a reply was read, found to say
    nothing, and dropped. Now only a mail with a request invites one, and every mail names
    the office's address for questions."""
    asks = template in ASKING
    text = _mail(template, language, request_id="nudge:1" if asks else None, facts=FACTS)
    office = PROGRAMS["stipendium-hausarzt"].coordinator_email
    assert office in text
    assert "Bitte antworten Sie einfach auf diese E-Mail" not in text
    assert "Simply reply to this e-mail" not in text
    no_reply = {"de": "Auf diese E-Mail müssen Sie nicht antworten", "en": "no need to reply"}
    read = {"de": "wird automatisch gelesen", "en": "is read automatically"}
    assert (no_reply[language] in text) is not asks
    assert (read[language] in text) is asks
    if not asks:  # news only: no list of answer words to choose from
        assert "Ein Wort als Antwort genügt:" not in text
        assert "One word is enough as an answer:" not in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "template",
    [Template.DECISION_REQUEST, Template.NUDGE, Template.PHASE_CHECK, Template.SHADOWING_REQUEST],
    ids=lambda t: t.value,
)
def test_a_request_puts_the_question_and_its_answer_words_first(
    template: Template, language: str
) -> None:
    text = _mail(template, language, request_id="nudge:1", facts=FACTS)
    body = text.split("\n", 1)[1]
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    # marker, greeting, the question, then the answer words: nothing before them
    assert paragraphs[1].rstrip().endswith(",")
    assert paragraphs[2].rstrip().endswith(":") and "?" in paragraphs[2]
    answer_lines = paragraphs[3].splitlines()
    assert len(answer_lines) >= 2 and all(line.startswith("  ") for line in answer_lines)


def test_the_demo_programme_never_speaks_of_quarters() -> None:
    """Check-ins every minute in the demo: a mail promising "etwa einmal im Quartal" was
    wrong. The rhythm comes as the lifecycle hands it over (``cadence_days`` of a minute,
    six significant digits) and is said as it is."""
    minute = f"{timedelta(minutes=1) / timedelta(days=1):g}"  # what the lifecycle writes
    for language in LANGUAGES:
        for template in PERSON_TEMPLATES:
            text = _mail(
                template, language, program="demo", facts={**FACTS, "cadence_days": minute}
            )
            assert "Quartal" not in text and "quarter" not in text, (template, language)
            assert "0.000694" not in text and "0,000694" not in text
    assert "Wir fragen jede Minute kurz nach" in _mail(
        Template.TANDEM_CONFIRMED, "de", program="demo", facts={"cadence_days": minute}
    )
    assert "We will check in every minute" in _mail(
        Template.TANDEM_CONFIRMED, "en", program="demo", facts={"cadence_days": minute}
    )
    # The introduction says when the decision comes: the demo's first-meeting window.
    assert "In einer Minute fragen wir Sie beide" in _mail(
        Template.INTRODUCTION_MENTEE, "de", program="demo"
    )
    assert "In 30 Tagen fragen wir Sie beide" in _mail(Template.INTRODUCTION_MENTEE, "de")


@pytest.mark.parametrize(
    ("cadence_days", "de", "en"),
    [
        ("91", "alle 91 Tage", "every 91 days"),
        ("182", "alle 182 Tage", "every 182 days"),
        ("30", "alle 30 Tage", "every 30 days"),
        ("14", "alle 2 Wochen", "every 2 weeks"),
        ("7", "jede Woche", "every week"),
        ("1", "jeden Tag", "every day"),
        ("0.5", "alle 12 Stunden", "every 12 hours"),
        ("0.00138889", "alle 2 Minuten", "every 2 minutes"),
    ],
)
def test_the_rhythm_is_said_in_words(cadence_days: str, de: str, en: str) -> None:
    facts = {"cadence_days": cadence_days}
    assert f"Wir fragen {de} kurz nach" in _mail(Template.PHASE_CHANGED, "de", facts=facts)
    assert f"We will check in {en} with" in _mail(Template.PHASE_CHANGED, "en", facts=facts)


def test_without_a_rhythm_a_resumed_tandem_promises_no_number() -> None:
    """``resumed`` carries no cadence (the pair may have its own): it says "as before"."""
    text = _mail(Template.RESUMED, "de")
    assert "im gewohnten Rhythmus" in text and "Tage" not in text


@pytest.mark.parametrize(
    ("value", "language", "said"),
    [
        (timedelta(days=91), "de", "91 Tage"),
        (timedelta(minutes=1), "de", "1 Minute"),
        (timedelta(minutes=1), "en", "1 minute"),
        (timedelta(hours=36), "en", "36 hours"),
        (timedelta(weeks=12), "de", "12 Wochen"),
        (timedelta(weeks=13), "de", "91 Tage"),  # counting weeks stops being natural
        (1.5, "de", "36 Stunden"),
        (5.5, "de", "5,5 Tage"),
        (5.5, "en", "5.5 days"),
        (91 + 1 / 24, "de", "91 Tage"),  # an hour on top of 91 days is no "2185 Stunden"
        (timedelta(seconds=30), "en", "30 seconds"),
    ],
)
def test_human_duration(value: timedelta | float, language: str, said: str) -> None:
    assert human_duration(value, language) == said


@pytest.mark.parametrize(
    ("value", "every_de", "every_en", "within_de", "within_en", "ago_de"),
    [
        (timedelta(minutes=1), "jede Minute", "every minute", "in einer Minute", "in a minute",
         "vor einer Minute"),
        (timedelta(minutes=2), "alle 2 Minuten", "every 2 minutes", "in 2 Minuten",
         "in 2 minutes", "vor 2 Minuten"),
        (timedelta(hours=1), "jede Stunde", "every hour", "in einer Stunde", "in an hour",
         "vor einer Stunde"),
        (timedelta(days=1), "jeden Tag", "every day", "in einem Tag", "in a day",
         "vor einem Tag"),
        (timedelta(days=21), "alle 3 Wochen", "every 3 weeks", "in 3 Wochen", "in 3 weeks",
         "vor 3 Wochen"),
        (timedelta(days=91), "alle 91 Tage", "every 91 days", "in 91 Tagen", "in 91 days",
         "vor 91 Tagen"),
    ],
)  # fmt: skip
def test_every_within_and_ago(
    value: timedelta, every_de: str, every_en: str, within_de: str, within_en: str, ago_de: str
) -> None:
    assert (every(value, "de"), every(value, "en")) == (every_de, every_en)
    assert (within(value, "de"), within(value, "en")) == (within_de, within_en)
    assert ago(value, "de") == ago_de


def test_a_duration_of_nothing_is_refused() -> None:
    for nothing in (0, -1, timedelta(0), float("nan")):
        with pytest.raises(ValueError, match="longer than zero"):
            every(nothing, "de")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("intent", "correctable"),
    [("met", True), ("snooze", True), ("undecided", True), ("help", True), ("continue", False),
     ("decline", False), ("stop", False), ("phase_done", False)],
)  # fmt: skip
def test_a_confirmation_invites_a_correction_only_where_one_is_taken(
    intent: str, correctable: bool, language: str
) -> None:
    """A settled answer (a decision, the end, a new phase) cannot be changed by replying to
    its confirmation: the reply would be refused. Only an open one invites it."""
    person = mentee("S-1", language=Language(language))
    context = {"recipient": person, "intent": intent, "kind": "nudge", "met_on": None,
               "snooze_weeks": 4}  # fmt: skip
    body = render("reply_confirmed", language, context).body
    invite = {"de": "antworten Sie einfach mit dem richtigen Wort", "en": "with the right word"}
    assert (invite[language] in body) is correctable
    if not correctable:  # where to turn instead
        assert {
            "de": "schreiben\nSie bitte dem Programmbüro",
            "en": "write to the programme\noffice",
        }[language] in body
