"""What a transition asks the world to do. The workflow carries these out, in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tandem.messages import MailRequest, MatchRequest, StatusEvent
from tandem.models import Role, TandemState, TandemStatus


class Template(StrEnum):
    """Every mail the lifecycle sends; each is ``tandem/templates/<lang>/<value>.txt.j2``."""

    INTRODUCTION_MENTEE = "introduction_mentee"
    INTRODUCTION_MENTOR = "introduction_mentor"
    DECISION_REQUEST = "decision_request"
    DECISION_REMINDER = "decision_reminder"
    DECISION_DECLINED = "decision_declined"
    TANDEM_CONFIRMED = "tandem_confirmed"
    NUDGE = "nudge"
    PHASE_CHECK = "phase_check"
    PHASE_CHANGED = "phase_changed"
    PAUSED = "paused"
    RESUMED = "resumed"
    SHADOWING_REQUEST = "shadowing_request"
    SHADOWING_ANSWER = "shadowing_answer"
    TANDEM_COMPLETED = "tandem_completed"
    TANDEM_ENDED = "tandem_ended"
    MENTOR_LEFT = "mentor_left"
    # to the programme office
    NO_MENTOR_COORDINATOR = "no_mentor_coordinator"
    PROPOSAL_COORDINATOR = "proposal_coordinator"
    DECISION_ESCALATION_COORDINATOR = "decision_escalation_coordinator"
    NEEDS_COORDINATOR_COORDINATOR = "needs_coordinator_coordinator"
    AT_RISK_COORDINATOR = "at_risk_coordinator"
    HELP_COORDINATOR = "help_coordinator"
    ENDED_COORDINATOR = "ended_coordinator"
    PHASE_CHECK_UNANSWERED_COORDINATOR = "phase_check_unanswered_coordinator"
    MAIL_FAILED_COORDINATOR = "mail_failed_coordinator"
    NEEDS_ATTENTION_COORDINATOR = "needs_attention_coordinator"

    @property
    def to_office(self) -> bool:
        return self.value.endswith("_coordinator")


def mail_key(mentee_id: str, enrolment: int, seq: int, template: Template, to: Role) -> str:
    """The one idempotency key builder: a tandem's transition (``seq``) sends a template to a
    role at most once, so a retried activity or a replayed workflow sends nothing twice."""
    return f"{mentee_id}/e{enrolment}/{seq}/{template.value}/{to.value}"


class SendMail(BaseModel):
    """One mail of the transition; who the tandem is comes once, in ``TandemRef``."""

    type: Literal["send_mail"] = "send_mail"
    template: Template
    to: Role
    #: The request the mail asks the recipient to answer (its reply token is bound to it).
    request_id: str | None = None
    #: Codes and dates the text needs, beyond the recipient's role and the phase.
    facts: dict[str, str] = Field(default_factory=dict)


class FindMentor(BaseModel):
    """Find and reserve a mentor; the result comes back as a ``MatchFound`` event."""

    type: Literal["find_mentor"] = "find_mentor"
    request: MatchRequest


class ReleaseSeat(BaseModel):
    type: Literal["release_seat"] = "release_seat"
    mentee_id: str
    mentor_id: str


class RevokeTokens(BaseModel):
    """Reply tokens of this tandem stop working: one person's (``person_id``) or everyone's."""

    type: Literal["revoke_tokens"] = "revoke_tokens"
    mentee_id: str
    person_id: str | None = None
    #: Only the tokens of these requests (empty: all of the person's tokens of this tandem).
    request_ids: list[str] = Field(default_factory=list)


class ResendMails(BaseModel):
    """Send again the tandem's mails that the relay refused, to the addresses now on file."""

    type: Literal["resend_mails"] = "resend_mails"
    keys: list[str]


class RecordEvent(BaseModel):
    """The transition's rows of the event log (one per kind) and the projection after it."""

    type: Literal["record_event"] = "record_event"
    kinds: list[str]
    status: TandemStatus
    mentor_id: str | None = None
    cadence_days: float
    next_nudge_at: datetime | None = None
    last_contact_at: datetime | None = None
    rematches: int = 0


Effect = Annotated[
    SendMail | FindMentor | ReleaseSeat | RevokeTokens | ResendMails | RecordEvent,
    Field(discriminator="type"),
]


class TandemRef(BaseModel):
    """Who and when, once per transition: the tandem as its mails were written."""

    mentee_id: str
    enrolment: int
    #: The transition's sequence number (its first event-log row); part of every mail key.
    seq: int
    at: datetime
    program: str
    phase: str
    mentor_id: str | None = None

    @classmethod
    def of(
        cls,
        state: TandemState,
        at: datetime,
        seq: int,
        written_as: tuple[str, str | None] | None = None,
    ) -> TandemRef:
        """The tandem at ``at``; ``written_as``: (phase, mentor) its mails were written for."""
        phase, mentor = written_as or (state.phase, state.mentor_id)
        return cls(
            mentee_id=state.mentee_id,
            enrolment=state.enrolment,
            seq=seq,
            at=at,
            program=state.program,
            phase=phase,
            mentor_id=mentor,
        )


class EffectBatch(BaseModel):
    """The effects of one transition that need no answer, carried out by one activity."""

    tandem: TandemRef
    effects: list[Effect]

    def mail_request(self, mail: SendMail) -> MailRequest:
        t = self.tandem
        return MailRequest(
            idempotency_key=mail_key(t.mentee_id, t.enrolment, t.seq, mail.template, mail.to),
            template=mail.template.value,
            to=mail.to,
            mentee_id=t.mentee_id,
            mentor_id=t.mentor_id,
            program=t.program,
            phase=t.phase,
            request_id=mail.request_id,
            facts=mail.facts,
        )

    def mail_requests(self) -> Iterator[MailRequest]:
        for effect in self.effects:
            if isinstance(effect, SendMail):
                yield self.mail_request(effect)

    def status_events(self, record: RecordEvent) -> list[StatusEvent]:
        t = self.tandem
        return [
            StatusEvent(
                mentee_id=t.mentee_id,
                enrolment=t.enrolment,
                seq=t.seq + i,
                at=t.at,
                kind=kind,
                program=t.program,
                status=record.status,
                phase=t.phase,
                mentor_id=record.mentor_id,
                cadence_days=record.cadence_days,
                next_nudge_at=record.next_nudge_at,
                last_contact_at=record.last_contact_at,
                rematches=record.rematches,
            )
            for i, kind in enumerate(record.kinds)
        ]

    def summary(self) -> str:
        """What the UI's timeline shows for the activity, e.g. "record: introduced · mail
        introduction mentee → mentee, introduction mentor → mentor": kinds and roles only."""
        kinds = [k for e in self.effects if isinstance(e, RecordEvent) for k in e.kinds]
        mails = [
            f"{e.template.value.replace('_', ' ')} → {e.to.value}"
            for e in self.effects
            if isinstance(e, SendMail)
        ]
        other = [
            e.type.replace("_", " ")
            for e in self.effects
            if isinstance(e, ReleaseSeat | RevokeTokens | ResendMails)
        ]
        parts = [f"record: {', '.join(kinds)}"] if kinds else []
        if mails:
            parts.append(f"mail {', '.join(mails)}")
        return " · ".join([*parts, *other])[:300]
