"""Every lifecycle mail exists in every language and renders for every recipient it can have,
including a tandem that has no mentor (waiting, rematching, ended before a match)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
