"""The tandem lifecycle as a pure state machine: ``decide(state, rules, now, event)`` returns
the next state and the effects to carry out. No Temporal, no I/O; the workflow interprets it.

Where to look: ``rules.py`` (the programme rules the lifecycle needs), ``due.py`` (what is due
when), ``answer_rules.py`` (who may answer what, when), ``machine.py`` (every transition),
``effects.py`` (what a transition asks the world to do), ``events.py`` (what drives it).
"""

from tandem.lifecycle.due import Due, DueKind, due_items, next_deadline
from tandem.lifecycle.effects import (
    Effect,
    FindMentor,
    RecordEvent,
    ReleaseSeat,
    RevokeTokens,
    SendMail,
    Template,
)
from tandem.lifecycle.events import (
    AdvancePhase,
    AnswerGiven,
    ChangeCadence,
    EffectsFailed,
    EndTandem,
    Enrolled,
    Event,
    ForgetPerson,
    MailFailed,
    MailsResent,
    MatchFound,
    MentorsChanged,
    PauseTandem,
    Rematch,
    ResumeTandem,
    RetryRequested,
    Tick,
)
from tandem.lifecycle.machine import NeedsAttention, Refused, Transition, decide
from tandem.lifecycle.rules import Rules

__all__ = [
    "AdvancePhase",
    "AnswerGiven",
    "ChangeCadence",
    "Due",
    "DueKind",
    "Effect",
    "EffectsFailed",
    "EndTandem",
    "Enrolled",
    "Event",
    "FindMentor",
    "ForgetPerson",
    "MailFailed",
    "MailsResent",
    "MatchFound",
    "MentorsChanged",
    "NeedsAttention",
    "PauseTandem",
    "RecordEvent",
    "Refused",
    "ReleaseSeat",
    "Rematch",
    "ResumeTandem",
    "RetryRequested",
    "RevokeTokens",
    "Rules",
    "SendMail",
    "Template",
    "Tick",
    "Transition",
    "decide",
    "due_items",
    "next_deadline",
]
