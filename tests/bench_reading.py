"""How fast a reply is read: every corpus mail (tests/corpus) through the gateway's reading
path on one core, whole and step by step (MIME parse, body, quotes and signature, grammar).
Prints figures, asserts nothing.

    .venv/bin/python -m tests.bench_reading
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from replies.pipeline import Limits, parse_mail
from replies.reading import read_message
from replies.text import body_text, reply_text
from tandem.reply_grammar import read_reply
from tests.corpus_mail import load_cases
from tests.corpus_mail import reply_mail as wrap
from tests.test_reply_corpus import RECEIVED_AT

REPETITIONS = 5


def rate(items: list[Any], step: Callable[[Any], object]) -> str:
    rates = []
    for _ in range(REPETITIONS):
        started = time.process_time()
        for item in items:
            step(item)
        rates.append(len(items) / (time.process_time() - started))
    return f"{statistics.median(rates):>9,.0f}/s [{min(rates):,.0f}-{max(rates):,.0f}]"


def main() -> None:
    cases = load_cases()
    raws = [(case.request, wrap(case)) for case in cases]
    msgs = [(kind, parse_mail(raw, Limits())) for kind, raw in raws]
    bodies = [(kind, body_text(msg)) for kind, msg in msgs]
    texts = [(kind, reply_text(body)) for kind, body in bodies]
    today = RECEIVED_AT.date()
    print(f"{len(raws)} corpus replies, CPU time on one core, median of {REPETITIONS}:")
    print(
        "  whole mail   ",
        rate(raws, lambda r: read_message(parse_mail(r[1], Limits()), r[0], RECEIVED_AT)),
    )
    print("  MIME parse   ", rate(raws, lambda r: parse_mail(r[1], Limits())))
    print("  body part    ", rate(msgs, lambda m: body_text(m[1])))
    print(
        "  text reading ", rate(bodies, lambda b: read_reply(reply_text(b[1]), b[0], today=today))
    )
    print("    quotes     ", rate(bodies, lambda b: reply_text(b[1])))
    print("    grammar    ", rate(texts, lambda t: read_reply(t[1], t[0], today=today)))


if __name__ == "__main__":
    main()
