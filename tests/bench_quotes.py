"""How often ``reply_text`` lets quoted material through, over a directory of fixture mails.

    .venv/bin/python -m tests.bench_quotes DIR... [-v]

Each ``.txt`` file is a reply body, each ``.eml`` a whole mail (its body is taken with
``body_text``, so HTML-only mails go through ``html_to_text``). A result *leaks* when it
still holds quoted material, judged by heuristics independent of the code under test:

- a line starting with ">";
- an attribution, header block or separator line ("On … wrote:", "Am … schrieb",
  "Von:/From: …" with another header line, "-----Original Message-----", "Forwarded message");
- a line (10+ characters) of the quoted original: below the first quote marker of the input,
  the ">" lines when there are some (text below them may be an answer written under the
  quote), else every line below the marker.

It prints the number of mails, how many leak and how many came out empty although the input
had unquoted text above its first quote marker (a lost answer), and with ``-v`` which files
and lines. The figures are for comparing versions of the code, not a proof of correctness.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from replies.text import UndecodableBody, body_text, reply_text

_MAX_INPUT = 200_000

#: Attribution lines of common clients, in the languages our users and the fixtures write in.
_WROTE = re.compile(
    r"\b(?:wrote|schrieb|a écrit|a ecrit|escribió|ha scritto|schreef|geschreven|napisał"
    r"|pisze|написал|пишет|yazdı|skrev|sent)[\s:]*$",
    re.IGNORECASE,
)
_HEADER = re.compile(
    r"^[*\s]{0,4}(?:from|von|de|od|от|kimden|da|van|fra|från|sent|gesendet|envoyé|wysłano"
    r"|отправлено|gönderildi|enviado|inviato|verzonden|to|an|à|para|do|кому|kime|a|aan"
    r"|subject|betreff|objet|temat|тема|konu|asunto|oggetto|onderwerp|date|datum)"
    r" ?\*? ?:",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s{0,4}-{2,}\s?(?:original message|ursprüngliche nachricht|forwarded message"
    r"|weitergeleitete nachricht|mensaje original|message d'origine|messaggio originale"
    r"|oorspronkelijk bericht|wiadomość oryginalna|исходное сообщение)",
    re.IGNORECASE,
)


def _is_marker(line: str, nxt: str) -> bool:
    s = line.strip()
    if s.startswith(">") or _SEPARATOR.match(s) or _WROTE.search(s[:300]):
        return True
    return bool(_HEADER.match(s) and _HEADER.match(nxt.strip()))


@dataclass
class Outcome:
    path: Path
    leaked: list[str] = field(default_factory=list)
    lost: bool = False
    seconds: float = 0.0


def _quoted_lines(lines: list[str], start: int) -> set[str]:
    below = lines[start:]
    angled = [ln.strip().lstrip("> ").strip() for ln in below if ln.lstrip().startswith(">")]
    chosen = angled if angled else [ln.strip() for ln in below]
    return {ln for ln in chosen if len(ln) >= 10}


def judge(path: Path, text: str, result: str) -> Outcome:
    outcome = Outcome(path)
    lines = text.splitlines()
    start = next(
        (
            i
            for i, ln in enumerate(lines)
            if _is_marker(ln, lines[i + 1] if i + 1 < len(lines) else "")
        ),
        None,
    )
    quoted = _quoted_lines(lines, start) if start is not None else set()
    out = result.splitlines()
    for i, line in enumerate(out):
        s = line.strip()
        nxt = out[i + 1] if i + 1 < len(out) else ""
        if s and (_is_marker(line, nxt) or s in quoted):
            outcome.leaked.append(s[:100])
    above = lines[:start] if start is not None else lines
    if not result.strip() and any(ln.strip() for ln in above):
        outcome.lost = True
    return outcome


def read_fixture(path: Path) -> str:
    data = path.read_bytes()[:_MAX_INPUT]
    if path.suffix == ".eml":
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        try:
            return body_text(msg)
        except UndecodableBody:
            return ""
    return data.decode("utf-8", errors="replace")


def run(dirs: list[Path], verbose: bool) -> list[Outcome]:
    outcomes = []
    for d in dirs:
        files = [d] if d.is_file() else sorted(d.rglob("*"))
        for path in files:
            if path.suffix not in (".txt", ".eml") or not path.is_file():
                continue
            text = read_fixture(path)
            began = time.perf_counter()
            result = reply_text(text)
            outcome = judge(path, text, result)
            outcome.seconds = time.perf_counter() - began
            outcomes.append(outcome)
            if verbose and (outcome.leaked or outcome.lost):
                what = "LOST" if outcome.lost else "LEAK"
                print(f"{what} {path}")
                for line in outcome.leaked[:5]:
                    print(f"     | {line}")
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    outcomes = run(args.dirs, args.verbose)
    total = len(outcomes)
    leaked = sum(1 for o in outcomes if o.leaked)
    lost = sum(1 for o in outcomes if o.lost)
    slowest = max((o.seconds for o in outcomes), default=0.0)
    pct = 100 * leaked / total if total else 0.0
    print(
        f"mails {total}  leaking {leaked} ({pct:.0f} %)  lost answers {lost}  "
        f"slowest {slowest * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
