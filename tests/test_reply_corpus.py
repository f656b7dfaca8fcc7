"""The reader scored on an independent corpus of real-looking replies (tests/corpus).

Every case is wrapped as its mail client would send it (``tests.corpus_mail``) and read
through ``replies.reading.read_message``, the gateway's one reading path. Outcomes:

* right: the expected intent applied (with the date / weeks when the case gives them, no
  date when it says ``met_on: none``); or a
  destructive intent expected and asked back (``confirm``) with that intent; or ``none``
  expected and nothing applied;
* wrongly applied: an intent applied that was not meant (or wrong details);
* wrongly refused: an intent was meant, and it was neither applied nor rightly asked back.

Fails on any wrongly applied destructive answer, on more than 2 % wrongly applied and on less
than 90 % right. ``python -m tests.test_reply_corpus`` prints the report.
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum
from functools import cache

from replies.reading import Action, MailReading, UnreadableMail, read_message
from tandem.answers import ALLOWED, Intent
from tests.corpus_mail import DESTRUCTIVE, TEMPLATES, Case, client_of, load_cases, load_raw
from tests.corpus_mail import reply_mail as wrap

RECEIVED_AT = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
MIN_CASES = 330
MAX_WRONGLY_APPLIED = 0.02
MIN_RIGHT = 0.90


class Outcome(StrEnum):
    RIGHT = "right"
    WRONGLY_APPLIED = "wrongly applied"
    WRONGLY_REFUSED = "wrongly refused"


@dataclass(frozen=True)
class Scored:
    case: Case
    reading: MailReading
    outcome: Outcome

    @property
    def read_as(self) -> str:
        """What the reader did, as a column of the confusion table."""
        r = self.reading
        if r.action is Action.APPLY:
            return r.intent.value if r.intent else "apply?"
        if r.action is Action.CONFIRM:
            return f"confirm:{r.intent.value if r.intent else '?'}"
        return "refuse"

    @property
    def wrong_destructive(self) -> bool:
        r = self.reading
        return (
            self.outcome is Outcome.WRONGLY_APPLIED
            and r.intent in DESTRUCTIVE
            and r.intent != self.case.expect
        )

    def describe(self) -> str:
        c, r = self.case, self.reading
        want = c.expect.value if c.expect else "none"
        details = r.details.model_dump(mode="json", exclude_none=True)
        got = f"{r.action.value}:{r.intent.value if r.intent else '-'}"
        extra = f" {details}" if details else ""
        body = " ".join(c.body.split())[:70] or f"(subject) {c.subject or ''}"[:70]
        return (
            f"{c.id:8} {c.request.value:11} want {want:10} got {got}{extra} "
            f"[{r.reason}; {client_of(c)}] {body!r}"
        )


def details_match(case: Case, reading: MailReading) -> bool:
    if case.met_on is not None and reading.details.met_on != case.met_on:
        return False
    if case.no_date and reading.details.met_on is not None:
        return False
    return case.snooze_weeks is None or reading.details.snooze_weeks == case.snooze_weeks


def classify(case: Case, reading: MailReading) -> Outcome:
    applied = reading.action is Action.APPLY
    if case.expect is None:
        return Outcome.WRONGLY_APPLIED if applied else Outcome.RIGHT
    if applied:
        if reading.intent == case.expect and details_match(case, reading):
            return Outcome.RIGHT
        return Outcome.WRONGLY_APPLIED
    if (
        reading.action is Action.CONFIRM
        and case.expect in DESTRUCTIVE
        and reading.intent == case.expect
    ):
        return Outcome.RIGHT
    return Outcome.WRONGLY_REFUSED


def read_case(case: Case) -> MailReading:
    msg = email.message_from_bytes(wrap(case), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    try:
        return read_message(msg, case.request, RECEIVED_AT)
    except UnreadableMail as err:
        return MailReading(Action.REFUSE, None, reason=f"unreadable:{err}")


@cache
def scored() -> tuple[Scored, ...]:
    out = []
    for case in load_cases():
        reading = read_case(case)
        out.append(Scored(case, reading, classify(case, reading)))
    return tuple(out)


def report(results: tuple[Scored, ...]) -> str:
    n = len(results)
    counts = Counter(s.outcome for s in results)
    rows = [c.value for c in Intent] + ["none"]
    cols = [c.value for c in Intent] + [f"confirm:{c.value}" for c in Intent] + ["refuse"]
    table = Counter((s.case.expect.value if s.case.expect else "none", s.read_as) for s in results)
    cols = [c for c in cols if any(table[(r, c)] for r in rows)]
    rows = [r for r in rows if any(table[(r, c)] for c in cols)]
    label = {c: c.replace("confirm:", "c:").replace("phase_done", "phase") for c in cols}
    width = {c: max(len(label[c]), 3) + 1 for c in cols}
    head = "expected \\ read as".ljust(19)
    lines = [head + "".join(label[c].rjust(width[c]) for c in cols) + "  total"]
    for r in rows:
        cells = "".join(str(table[(r, c)] or ".").rjust(width[c]) for c in cols)
        lines.append(r.ljust(19) + cells + str(sum(table[(r, c)] for c in cols)).rjust(7))
    lines.append("(c:X = asked back to confirm X)")
    lines.append("")
    for outcome in Outcome:
        lines.append(f"{outcome.value:16} {counts[outcome]:4} / {n}  {counts[outcome] / n:6.1%}")
    destructive = [s for s in results if s.wrong_destructive]
    lines.append(f"{'wrong destructive':16} {len(destructive):4}")
    by_request = Counter((s.case.request.value, s.outcome) for s in results)
    for kind in TEMPLATES:
        total = sum(by_request[(kind.value, o)] for o in Outcome)
        right = by_request[(kind.value, Outcome.RIGHT)]
        lines.append(f"  {kind.value:12} right {right:3} / {total:3}  {right / total:6.1%}")
    failing = [s for s in results if s.outcome is not Outcome.RIGHT]
    if failing:
        lines.append("")
        lines.append(f"failing cases ({len(failing)}):")
        for s in sorted(failing, key=lambda s: (not s.wrong_destructive, s.outcome, s.case.id)):
            mark = "!! " if s.wrong_destructive else "   "
            lines.append(f"{mark}{s.outcome.value:15} {s.describe()}")
    return "\n".join(lines)


def test_corpus_is_well_formed() -> None:
    raw = load_raw()
    ids = [r.get("id") for r in raw]
    assert len(ids) == len(set(ids)), [i for i, k in Counter(ids).items() if k > 1]
    cases = load_cases()  # checks keys, requests, intents the request allows, details
    assert len(cases) >= MIN_CASES
    for case in cases:
        assert case.request in TEMPLATES, case.id
        assert case.expect is None or case.expect in ALLOWED[case.request], case.id
        assert case.body.strip() or case.subject or case.expect is None, case.id
        assert not (case.trap and case.destructive), f"{case.id}: a trap is not meant so"
    assert sum(c.expect is None for c in cases) >= 60
    assert sum(c.destructive for c in cases) >= 40
    assert sum(c.trap for c in cases) >= 40
    langs = Counter(c.lang for c in cases)
    assert langs["de"] > 0.6 * len(cases) and langs["en"] > 0.15 * len(cases)
    for case in cases:  # every case wraps into a mail (read_case parses them)
        mail = wrap(case)
        assert mail.startswith(b"From: ") and b"\r\nSubject: " in mail, case.id


def test_reader_on_the_corpus() -> None:
    results = scored()
    text = report(results)
    print(text)
    n = len(results)
    counts = Counter(s.outcome for s in results)
    destructive = [s.case.id for s in results if s.wrong_destructive]
    assert not destructive, f"wrongly applied destructive answers: {destructive}\n{text}"
    assert counts[Outcome.WRONGLY_APPLIED] <= MAX_WRONGLY_APPLIED * n, text
    assert counts[Outcome.RIGHT] >= MIN_RIGHT * n, text


if __name__ == "__main__":
    print(report(scored()))
