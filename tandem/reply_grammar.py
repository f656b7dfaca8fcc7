"""What a reply mail says, read from its first lines, German or English. Pure: no I/O.

People answer with a word or a short sentence ("Ja", "später in 3 Wochen", "we met on
2026-05-03"). Only the first few unquoted lines count, and only intents the request allows
(``tandem.answers.ALLOWED``) are taken: anything else is refused with a list of what is
possible, never guessed. When in doubt the reading is *ambiguous*, never a coin flip.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Literal

from tandem.answers import ALLOWED, AnswerDetails, Intent, RequestKind

#: The line our request mails start with; a reply is cut there (it is in the quoted original).
REPLY_MARKER = {
    "de": "-- Bitte oberhalb dieser Zeile antworten --",
    "en": "-- Please reply above this line --",
}
_MARKER_RE = re.compile(
    r"^[\s>]*-{2,}\s*(?:bitte oberhalb dieser zeile antworten|please reply above this line)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)

#: How many content lines (greetings and thanks not counted) are read for an answer.
MAX_LINES = 3
_MAX_LINE_CHARS = 300

Problem = Literal["empty", "not_understood", "ambiguous", "not_allowed"]


@dataclass(frozen=True)
class Reading:
    """The answer read from a reply, or why there is none."""

    intent: Intent | None
    details: AnswerDetails = field(default_factory=AnswerDetails)
    problem: Problem | None = None
    #: What was read when it is not allowed for this request (for the help mail).
    found: Intent | None = None
    #: A destructive answer (stop, decline, phase_done) not said plainly enough to act on:
    #: the sender is asked to confirm it instead.
    unsure: bool = False

    @property
    def ok(self) -> bool:
        return self.intent is not None


#: The word people are told to answer with, per intent and language (help and confirmations).
ANSWER_WORDS: dict[Intent, dict[str, str]] = {
    Intent.CONTINUE: {"de": "ja", "en": "yes"},
    Intent.DECLINE: {"de": "nein", "en": "no"},
    Intent.UNDECIDED: {"de": "unentschieden", "en": "undecided"},
    Intent.MET: {"de": "getroffen", "en": "met"},
    Intent.SNOOZE: {"de": "später", "en": "later"},
    Intent.HELP: {"de": "Hilfe", "en": "help"},
    Intent.STOP: {"de": "Stop", "en": "stop"},
    Intent.SHADOWING: {"de": "Hospitation", "en": "shadowing"},
    Intent.PHASE_DONE: {"de": "neue Phase", "en": "new phase"},
}

#: Answers that end or redirect a tandem: acted on only when said plainly, else asked back.
DESTRUCTIVE = frozenset({Intent.STOP, Intent.DECLINE, Intent.PHASE_DONE})

#: What to reply to confirm a destructive answer we asked back about (read as plain).
CONFIRM_WORDS: dict[Intent, dict[str, str]] = {
    Intent.STOP: {"de": "Ja, beenden", "en": "Yes, end it"},
    Intent.DECLINE: {"de": "Ja, ablehnen", "en": "Yes, decline"},
    Intent.PHASE_DONE: {"de": "Ja, neue Phase", "en": "Yes, new phase"},
}

#: The order intents are listed in help mails.
INTENT_ORDER = (
    Intent.CONTINUE,
    Intent.DECLINE,
    Intent.UNDECIDED,
    Intent.MET,
    Intent.SNOOZE,
    Intent.SHADOWING,
    Intent.PHASE_DONE,
    Intent.HELP,
    Intent.STOP,
)


def allowed_intents(kind: RequestKind) -> list[Intent]:
    """What a request allows, in the order help mails list it."""
    return [i for i in INTENT_ORDER if i in ALLOWED[kind]]


# -- text preparation --------------------------------------------------------------------------


def is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


_ATTRIBUTION_RE = re.compile(
    r"^\s*(?:(?:am|on)\b.*\b(?:schrieb|wrote)\b.*|(?:schrieb|wrote)\b.*"
    r"|[*\s]*(?:von|from|gesendet|sent|an|to|cc|betreff|subject|datum|date)\s*:.*"
    r"|-{3,}.*(?:original|ursprüngliche).*-{3,}|[-_]{8,})\s*$",
    re.IGNORECASE,
)


def cut_at_marker(text: str) -> str:
    """Everything above our "reply above this line" marker; the whole text when there is no
    marker, or when only quotes and quote headers stand above it (an answer below the quote).
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _MARKER_RE.match(line):
            above = lines[:i]
            if any(
                ln.strip() and not is_quoted(ln) and not _ATTRIBUTION_RE.match(ln) for ln in above
            ):
                return "\n".join(above)
            return text
    return text


def content_lines(text: str) -> list[str]:
    """Non-empty, unquoted lines, in order (each cut to a sane length)."""
    return [
        ln.strip()[:_MAX_LINE_CHARS] for ln in text.splitlines() if ln.strip() and not is_quoted(ln)
    ]


# -- vocabulary --------------------------------------------------------------------------------


class _Weak(StrEnum):
    """Words whose meaning depends on the question: "ja" to a nudge means "we met"."""

    YES = "yes"
    NO = "no"
    NOT_YET = "not_yet"


_Category = Intent | _Weak

_PHRASES: dict[tuple[str, ...], _Category] = {}


def _add(category: _Category, *phrases: str) -> None:
    for phrase in phrases:
        _PHRASES[tuple(phrase.split())] = category


_add(
    Intent.CONTINUE,
    "weiter",
    "weitermachen",
    "fortsetzen",
    "fortfuehren",
    "weiterfuehren",
    "continue",
    "go on",
    "carry on",
    "keep going",
)
_add(
    Intent.DECLINE,
    "ablehnen",
    "decline",
    "kein interesse",
    "not interested",
)
_add(
    Intent.UNDECIDED,
    "unentschieden",
    "unentschlossen",
    "unsicher",
    "noch unsicher",
    "unklar",
    "noch unklar",
    "weiss nicht",
    "weiss noch nicht",
    "weiss ich nicht",
    "weiss ich noch nicht",
    "vielleicht",
    "undecided",
    "unsure",
    "not sure",
    "not sure yet",
    "maybe",
    "don't know",
    "dont know",
    "don't know yet",
)
_add(
    Intent.MET,
    "getroffen",
    "met",
    "telefoniert",
    "gesprochen",
    "stattgefunden",
    "kontakt gehabt",
    "hatten kontakt",
    "had contact",
    "talked",
    "spoke",
)
_add(Intent.SNOOZE, "spaeter", "snooze", "later", "verschieben", "postpone")
_add(Intent.HELP, "hilfe", "help", "rueckruf", "unterstuetzung", "call me", "rufen sie mich an")
_add(
    Intent.STOP,
    "stop",
    "stopp",
    "beenden",
    "aufhoeren",
    "abbrechen",
    "quit",
    "unsubscribe",
    "end the tandem",
    "end the mentoring",
)
_add(Intent.SHADOWING, "hospitation", "hospitieren", "hospitiere", "shadowing", "shadow")
_add(
    Intent.PHASE_DONE,
    "neue phase",
    "naechste phase",
    "phase begonnen",
    "phase hat begonnen",
    "phasenwechsel",
    "phase gewechselt",
    "phase done",
    "new phase",
    "next phase",
    "phase started",
    "phase has started",
)
_add(
    _Weak.YES,
    "ja",
    "jawohl",
    "jep",
    "gerne",
    "gern",
    "klar",
    "natuerlich",
    "selbstverstaendlich",
    "yes",
    "yep",
    "yeah",
    "sure",
    "of course",
)
_add(
    _Weak.NO,
    "nein",
    "nee",
    "no",
    "nope",
    "nein danke",
    "no thanks",
    "leider nicht",
    "unfortunately not",
)
_add(
    _Weak.NOT_YET,
    "noch nicht",
    "noch kein",
    "noch keine",
    "noch keinen",
    "bisher nicht",
    "not yet",
    "not so far",
)

_LONGEST = max(len(p) for p in _PHRASES)

#: Words that negate a phrase following within a few words of the same clause.
_NEGATORS = frozenset(
    (
        "nicht",
        "nie",
        "niemals",
        "not",
        "never",
        "didn't",
        "didnt",
        "haven't",
        "havent",
        "hasn't",
        "hasnt",
        "don't",
        "dont",
        "won't",
        "wont",
        "can't",
        "cant",
    )
)
#: Negate only the next word or two ("no help needed", "keine Hilfe").
_SHORT_NEGATORS = frozenset(["no", "kein", "keine", "keinen", "keinem"])
_NEGATION_WINDOW = 4

#: What a yes / a no / a "not yet" means, per request.
_WEAK_MEANS: dict[_Weak, dict[RequestKind, Intent]] = {
    _Weak.YES: {
        RequestKind.DECISION: Intent.CONTINUE,
        RequestKind.SHADOWING: Intent.CONTINUE,
        RequestKind.NUDGE: Intent.MET,
        RequestKind.INTRODUCTION: Intent.MET,
        RequestKind.PHASE_CHECK: Intent.PHASE_DONE,
        RequestKind.OFFICE: Intent.CONTINUE,
    },
    _Weak.NO: {
        RequestKind.DECISION: Intent.DECLINE,
        RequestKind.SHADOWING: Intent.DECLINE,
        RequestKind.NUDGE: Intent.SNOOZE,
        RequestKind.PHASE_CHECK: Intent.SNOOZE,
        RequestKind.OFFICE: Intent.DECLINE,
    },
    _Weak.NOT_YET: {
        RequestKind.DECISION: Intent.UNDECIDED,
        RequestKind.NUDGE: Intent.SNOOZE,
        RequestKind.PHASE_CHECK: Intent.SNOOZE,
        RequestKind.OFFICE: Intent.UNDECIDED,
    },
}

_GREETINGS = (
    "hallo",
    "hi",
    "hey",
    "moin",
    "servus",
    "liebe",
    "lieber",
    "liebes",
    "sehr geehrte",
    "sehr geehrter",
    "guten tag",
    "guten morgen",
    "guten abend",
    "dear",
    "hello",
    "good morning",
    "good afternoon",
    "danke",
    "vielen dank",
    "herzlichen dank",
    "thanks",
    "thank you",
    "many thanks",
    # sign-offs the signature cutter may have left
    "viele gruesse",
    "liebe gruesse",
    "beste gruesse",
    "herzliche gruesse",
    "mit freundlichen gruessen",
    "freundliche gruesse",
    "gruss",
    "gruesse",
    "lg",
    "vg",
    "mfg",
    "best",
    "best regards",
    "kind regards",
    "regards",
    "cheers",
)

# -- numbers, durations and dates -------------------------------------------------------------

_NUMBER_WORDS = {
    "ein": 1,
    "eine": 1,
    "einer": 1,
    "einem": 1,
    "einen": 1,
    "a": 1,
    "an": 1,
    "one": 1,
    "zwei": 2,
    "two": 2,
    "drei": 3,
    "three": 3,
    "vier": 4,
    "four": 4,
    "fuenf": 5,
    "five": 5,
    "sechs": 6,
    "six": 6,
    "sieben": 7,
    "seven": 7,
    "acht": 8,
    "eight": 8,
    "neun": 9,
    "nine": 9,
    "zehn": 10,
    "ten": 10,
    "elf": 11,
    "eleven": 11,
    "zwoelf": 12,
    "twelve": 12,
}
_NUM = r"(\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_UNIT = r"(tagen|tage|tag|days?|wochen|woche|weeks?|monaten|monate|monat|months?)"
_FUTURE_RE = re.compile(rf"\b(?:in|nach|after|for)\s+{_NUM}\s+{_UNIT}\b")
_LATER_RE = re.compile(rf"\b{_NUM}\s+{_UNIT}\s+(?:spaeter|later)\b")
_NEXT_RE = re.compile(r"\b(?:naechste|naechsten|next)\s+(woche|week|monat|month)\b")
_AGO_RE = re.compile(rf"\b(?:vor\s+{_NUM}\s+{_UNIT}|{_NUM}\s+{_UNIT}\s+ago)\b")
_RELATIVE_DAYS = {"heute": 0, "today": 0, "gestern": 1, "yesterday": 1, "vorgestern": 2}
_RELATIVE_RE = re.compile(r"\b(" + "|".join(_RELATIVE_DAYS) + r")\b")

_MONTHS = {
    "januar": 1,
    "jan": 1,
    "january": 1,
    "februar": 2,
    "feb": 2,
    "february": 2,
    "maerz": 3,
    "mrz": 3,
    "mar": 3,
    "march": 3,
    "april": 4,
    "apr": 4,
    "mai": 5,
    "may": 5,
    "juni": 6,
    "jun": 6,
    "june": 6,
    "juli": 7,
    "jul": 7,
    "july": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "oktober": 10,
    "okt": 10,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "dezember": 12,
    "dez": 12,
    "december": 12,
    "dec": 12,
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_ISO_RE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DOTTED_RE = re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.(?:\s?(\d{4}|\d{2})\b)?")
_DAY_MONTH_RE = re.compile(
    rf"\b(\d{{1,2}})(?:\.|st|nd|rd|th)?\s+{_MONTH}\b\.?(?:,?\s+(\d{{4}})\b)?"
)
_MONTH_DAY_RE = re.compile(rf"\b{_MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?")

#: Each date form and the groups holding (year, month, day).
_DATE_FORMS: tuple[tuple[re.Pattern[str], tuple[int, int, int]], ...] = (
    (_ISO_RE, (1, 2, 3)),
    (_DOTTED_RE, (3, 2, 1)),
    (_DAY_MONTH_RE, (3, 2, 1)),
    (_MONTH_DAY_RE, (3, 1, 2)),
)


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else _NUMBER_WORDS.get(text)


def _weeks(amount: int, unit: str) -> int:
    if unit.startswith(("tag", "day")):
        return math.ceil(amount / 7)
    if unit.startswith(("monat", "month")):
        return round(amount * 4.345)
    return amount


def _days(amount: int, unit: str) -> int:
    if unit.startswith(("tag", "day")):
        return amount
    if unit.startswith(("monat", "month")):
        return round(amount * 30.4)
    return amount * 7


def _make_date(year: int | None, month: int, day: int, today: date) -> date | None:
    """A date someone met on: a year-less date lies in the past; the future is no answer."""
    try:
        found = date(year if year is not None else today.year, month, day)
    except ValueError:
        return None
    if year is None and found > today:
        try:
            found = found.replace(year=found.year - 1)
        except ValueError:
            return None
    return found if found <= today + timedelta(days=1) else None


def _year(text: str | None) -> int | None:
    if not text:
        return None
    value = int(text)
    return 2000 + value if value < 100 else value


@dataclass
class _Facts:
    """Dates and durations found in one line, and the line with them blanked out."""

    text: str
    met_on: date | None = None
    snooze_weeks: int | None = None
    #: "in 3 Wochen" without another word means "later".
    duration_only: bool = False


def _blank(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def _extract_facts(text: str, today: date) -> _Facts:
    facts = _Facts(text)
    for regex in (_FUTURE_RE, _LATER_RE):
        for m in list(regex.finditer(facts.text)):
            amount = _number(m.group(1))
            if amount is not None and facts.snooze_weeks is None:
                facts.snooze_weeks = min(max(_weeks(amount, m.group(2)), 1), 52)
                facts.duration_only = True
            facts.text = _blank(facts.text, m)
    for m in list(_NEXT_RE.finditer(facts.text)):
        if facts.snooze_weeks is None:
            facts.snooze_weeks = 1 if m.group(1) in ("woche", "week") else 4
            facts.duration_only = True
        facts.text = _blank(facts.text, m)
    for m in list(_AGO_RE.finditer(facts.text)):
        amount = _number(m.group(1) or m.group(3))
        unit = m.group(2) or m.group(4)
        if amount is not None and facts.met_on is None and amount <= 400:
            facts.met_on = today - timedelta(days=_days(amount, unit))
        facts.text = _blank(facts.text, m)
    for regex, (y, mo, d) in _DATE_FORMS:
        for m in list(regex.finditer(facts.text)):
            month = m.group(mo)
            found = _make_date(
                _year(m.group(y)),
                int(month) if month.isdigit() else _MONTHS[month],
                int(m.group(d)),
                today,
            )
            if found is not None and facts.met_on is None:
                facts.met_on = found
            facts.text = _blank(facts.text, m)
    for m in list(_RELATIVE_RE.finditer(facts.text)):
        if facts.met_on is None:
            facts.met_on = today - timedelta(days=_RELATIVE_DAYS[m.group(1)])
        facts.text = _blank(facts.text, m)
    return facts


# -- reading -----------------------------------------------------------------------------------


_SPELLINGS = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("\u2019", "'"), ("`", "'"))


def normalize(text: str) -> str:
    """Lower case, umlauts spelt out (``später`` = ``spaeter``), one kind of apostrophe."""
    text = unicodedata.normalize("NFKC", text).lower()
    for src, dst in _SPELLINGS:
        text = text.replace(src, dst)
    return text


_CLAUSE_SPLIT = re.compile('[,;.!?:()\\[\\]"\u00ab\u00bb\u201e\u201c\u201d\u2013\u2014]+|\\s-\\s')
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass
class _LineReading:
    strong: list[Intent] = field(default_factory=list)
    weak: list[_Weak] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.strong and not self.weak


def _read_clause(words: list[str], found: _LineReading) -> None:
    matches: list[tuple[int, _Category]] = []
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            category = _PHRASES.get(tuple(words[i : i + size]))
            if category is not None:
                matches.append((i, category))
                i += size
                break
        else:
            i += 1
    negated: dict[int, bool] = {}
    used_as_negator: set[int] = set()  # "no help needed": that "no" is no answer of its own
    for start, category in matches:
        negated[start] = False
        for j in range(max(0, start - _NEGATION_WINDOW), start):
            if words[j] in _NEGATORS:
                negated[start] = True
            elif words[j] in _SHORT_NEGATORS and start - j <= 2:
                negated[start] = True
                if not isinstance(category, _Weak):
                    used_as_negator.add(j)
    for start, category in matches:
        if start in used_as_negator:
            continue
        if isinstance(category, _Weak):
            found.weak.append(_Weak.NO if negated[start] and category is _Weak.YES else category)
        elif not negated[start]:
            found.strong.append(category)
        elif category is Intent.CONTINUE:
            found.strong.append(Intent.DECLINE)
        elif category is Intent.MET:
            found.weak.append(_Weak.NO)


def _read_line(text: str) -> _LineReading:
    found = _LineReading()
    for clause in _CLAUSE_SPLIT.split(text):
        _read_clause(_WORD.findall(clause), found)
    return found


def _is_greeting(normalized: str) -> bool:
    words = _WORD.findall(normalized)
    joined = " ".join(words)
    return len(words) <= 6 and any(joined == g or joined.startswith(g + " ") for g in _GREETINGS)


def read_reply(text: str, kind: RequestKind, *, today: date, subject: str = "") -> Reading:
    """The answer in ``text`` (the reply with quotes and signature already cut) to a request
    of ``kind``; ``today`` dates "am 3.5." (a past date) and "vor 2 Wochen"."""
    allowed = ALLOWED[kind]
    counted = 0
    for line in content_lines(cut_at_marker(text)):
        norm = normalize(line)
        facts = _extract_facts(norm, today)
        found = _read_line(facts.text)
        if found.empty and _is_greeting(norm):
            continue
        if found.empty and facts.duration_only:
            found.strong.append(Intent.SNOOZE)
        if found.empty:
            counted += 1
            if counted >= MAX_LINES:
                break
            continue
        return _decide(found, kind, allowed, facts)
    return Reading(None, problem="empty" if counted == 0 else "not_understood")


def _decide(
    found: _LineReading, kind: RequestKind, allowed: frozenset[Intent], facts: _Facts
) -> Reading:
    strong = list(dict.fromkeys(found.strong))
    if strong:
        fitting = [i for i in strong if i in allowed]
        if len(fitting) > 1:
            return Reading(None, problem="ambiguous")
        if not fitting:
            return Reading(
                None,
                problem="not_allowed" if len(strong) == 1 else "ambiguous",
                found=strong[0] if len(strong) == 1 else None,
            )
        return Reading(fitting[0], details=_details(fitting[0], facts))
    weak = set(found.weak)
    if _Weak.NOT_YET in weak:
        weak.discard(_Weak.NO)
    if len(weak) > 1:
        return Reading(None, problem="ambiguous")
    meaning = _WEAK_MEANS[weak.pop()].get(kind)
    if meaning is None:
        return Reading(None, problem="not_understood")
    if meaning not in allowed:
        return Reading(None, problem="not_allowed", found=meaning)
    return Reading(meaning, details=_details(meaning, facts))


def _details(intent: Intent, facts: _Facts) -> AnswerDetails:
    if intent is Intent.MET:
        return AnswerDetails(met_on=facts.met_on)
    if intent is Intent.SNOOZE:
        return AnswerDetails(snooze_weeks=facts.snooze_weeks)
    return AnswerDetails()
