"""The short form of the chaos run (``tests/chaos.py``): a dozen tandems from enrolment to
completion on the real parts while a worker is killed with -9, two workers run at once, the
SMTP sink is stopped, PostgreSQL restarts and the gateway restarts in a stream of replies.
Nothing may be lost, done twice, failed, leaked or stuck; each fault must have come and
healed, and mail and replies must really have flowed."""

from __future__ import annotations

import pytest

from tests import chaos


@pytest.mark.timeout(240)
async def test_chaos_short_form_loses_and_duplicates_nothing() -> None:
    plan = chaos.Plan.short_form(seed=1)
    plan.argv = ["--short"]
    report = await chaos.run(plan)
    text = report.text()
    print(text)

    kinds = report.fault_counts()
    assert kinds["kill -9 worker"] >= 2, text
    for kind in ("two workers", "SMTP sink stopped", "PostgreSQL restart"):
        assert kinds[kind] == 1, text
    assert sum(n for k, n in kinds.items() if k.startswith("gateway restart")) >= 1, text

    # Real traffic: every tandem went the whole way, answered by reply mail.
    assert report.value("tandems completed") == plan.tandems, text
    assert report.value("tandems that changed phase") == plan.tandems, text
    assert report.value("replies sent by the people") >= 4 * plan.tandems, text
    # Each reply was taken, or came after its tandem had closed (a mail held back by the
    # stopped sink can reach its reader after the minutes-long programme ended) and was
    # refused at RCPT, which bounces it back to the sender: refused, and said so.
    taken = report.value("replies taken (verdict accepted)")
    late = report.value("replies refused as late (tandem closed, or 2 newer check-ins)")
    assert taken + late == report.value("replies sent by the people"), text
    assert taken >= 4 * plan.tandems, text
    assert report.value("mails received by the sink") >= report.value(
        "mails in the outbox (idempotency keys)"
    ), text
    assert report.value("mails expected from the event log") >= 10 * plan.tandems, text

    assert report.ok, text
