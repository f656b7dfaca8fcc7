"""Dates and durations in a reply: "am 3.11.", "vor zwei Wochen", "letzten Dienstag",
"in drei Wochen", "nach Ostern". Pure; the text comes normalised (lower case, umlauts spelt
out) and capped, and every pattern here is linear on it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, timedelta

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
_NEXT_RE = re.compile(
    r"\b(?:naechste|naechsten|naechster|kommende|kommenden|next|coming)\s+(woche|week|monat|month)\b"
)
_AGO_RE = re.compile(rf"\b(?:vor\s+{_NUM}\s+{_UNIT}|{_NUM}\s+{_UNIT}\s+ago)\b")
_RELATIVE_DAYS = {
    "heute": 0,
    "today": 0,
    "gestern": 1,
    "yesterday": 1,
    "vorgestern": 2,
}
_WEEKDAYS = {
    "montag": 0,
    "monday": 0,
    "dienstag": 1,
    "tuesday": 1,
    "mittwoch": 2,
    "wednesday": 2,
    "donnerstag": 3,
    "thursday": 3,
    "freitag": 4,
    "friday": 4,
    "samstag": 5,
    "sonnabend": 5,
    "saturday": 5,
    "sonntag": 6,
    "sunday": 6,
}
#: "letzten Dienstag", "am Montag", "last friday", "on monday": the most recent such day.
_WEEKDAY_RE = re.compile(
    r"\b(?:(letzten|letzte|vergangenen|last|am|on|naechsten|naechster|kommenden|next|coming|this"
    r"|diesen|ab|from|starting)\s+)?(" + "|".join(_WEEKDAYS) + r")\b"
)
_AHEAD = frozenset(
    {
        "naechsten",
        "naechster",
        "kommenden",
        "next",
        "coming",
        "this",
        "diesen",
        "ab",
        "from",
        "starting",
    }
)
#: Later, but when is not said in weeks: "nach Ostern", "after the holidays", "im Januar".
_VAGUE_LATER_RE = re.compile(
    r"\b(?:nach|after)\s+(?:den\s+|dem\s+|the\s+|my\s+|meinem\s+|meiner\s+)?"
    r"(?:ostern|easter|weihnachten|christmas|ferien|holidays?|urlaub|vacation|feiertagen"
    r"|semesterferien|pruefungen|pruefung|exams?|staatsexamen|jahreswechsel|neujahr)\b"
    r"|\b(?:ab|im|in|after|from)\s+(?:januar|februar|maerz|april|mai|juni|juli|august"
    r"|september|oktober|november|dezember|january|february|march|june|july|october"
    r"|december|fruehjahr|sommer|herbst|winter|spring|summer|autumn|fall)\b"
    r"|\bnaechstes\s+jahr\b|\bnext\s+year\b|\bim\s+neuen\s+jahr\b"
)
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
class Facts:
    """Dates and durations found in one line, and the line with them blanked out."""

    text: str
    met_on: date | None = None
    snooze_weeks: int | None = None
    #: "in 3 Wochen" without another word means "later".
    duration_only: bool = False
    #: A time ahead is named ("nächste Woche", "kommenden Montag").
    future: bool = False


def _blank(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]


def extract_facts(text: str, today: date) -> Facts:
    facts = Facts(text)
    for regex in (_FUTURE_RE, _LATER_RE):
        for m in list(regex.finditer(facts.text)):
            amount = _number(m.group(1))
            if amount is not None and facts.snooze_weeks is None:
                facts.snooze_weeks = min(max(_weeks(amount, m.group(2)), 1), 52)
                facts.duration_only = True
            facts.text = _blank(facts.text, m)
    for m in list(_NEXT_RE.finditer(facts.text)):
        facts.future = True
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
    for m in list(_VAGUE_LATER_RE.finditer(facts.text)):
        facts.duration_only = True
        facts.text = _blank(facts.text, m)
    for m in list(_WEEKDAY_RE.finditer(facts.text)):
        if m.group(1) in _AHEAD:
            facts.future = True
            facts.text = _blank(facts.text, m)
            continue
        back = (today.weekday() - _WEEKDAYS[m.group(2)]) % 7
        if back == 0 and m.group(1) in ("letzten", "letzte", "vergangenen", "last"):
            back = 7
        if facts.met_on is None:
            facts.met_on = today - timedelta(days=back)
        facts.text = _blank(facts.text, m)
    return facts
