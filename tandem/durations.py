"""Durations as people say them: "alle 91 Tage", "jede Minute", "every 2 weeks".

One place for the words, so a mail, the Temporal UI and an operator's result all say the
same: programme files hold exact durations (``91d``, ``1m``), the workflow carries the
rhythm as a float of days (``0.000694444`` for a minute), and both come out as whole
minutes, hours, days or weeks when they are whole, never as "0.000694444 days" and never
rounded to something they are not ("about once a quarter" for a rhythm of one minute).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

__all__ = ["ago", "every", "human_duration", "within"]

_MINUTE, _HOUR, _DAY, _WEEK = 60, 3600, 86400, 604800
#: Weeks only while counting them is natural ("alle 4 Wochen"); 91 days stay 91 days.
_MAX_WEEKS = 12


class _Unit(NamedTuple):
    seconds: int
    de_one: str  # "1 Minute"
    de_many: str  # "2 Minuten"
    de_many_dative: str  # "in 2 Tagen"
    de_every_one: str  # "jede Minute" (the article follows the noun's gender)
    de_a_dative: str  # "in einer Minute", "vor einem Tag"
    en_one: str
    en_many: str
    en_a: str  # "in an hour", "a minute ago"


_UNITS = {
    unit.seconds: unit
    for unit in (
        _Unit(_WEEK, "Woche", "Wochen", "Wochen", "jede Woche", "einer Woche", "week", "weeks",
              "a week"),
        _Unit(_DAY, "Tag", "Tage", "Tagen", "jeden Tag", "einem Tag", "day", "days", "a day"),
        _Unit(_HOUR, "Stunde", "Stunden", "Stunden", "jede Stunde", "einer Stunde", "hour",
              "hours", "an hour"),
        _Unit(_MINUTE, "Minute", "Minuten", "Minuten", "jede Minute", "einer Minute", "minute",
              "minutes", "a minute"),
        _Unit(1, "Sekunde", "Sekunden", "Sekunden", "jede Sekunde", "einer Sekunde", "second",
              "seconds", "a second"),
    )
}  # fmt: skip


def _seconds(value: timedelta | float | int | str) -> float:
    """Seconds of a timedelta, or of a number of days (a fact's ``"91"`` or ``"0.000694444"``)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value) * _DAY
    if not seconds > 0:  # also refuses NaN
        raise ValueError("a duration must be longer than zero")
    return seconds


def _split(value: timedelta | float | int | str) -> tuple[float, _Unit]:
    """(count, unit): whole weeks, days, hours or minutes where the duration is one; else the
    largest unit, to one decimal. A float of days that lost digits (``:g`` keeps six) still
    counts as whole: 0.000694444 days is one minute. Hours count below four days, minutes
    below six hours (91 days and an hour are "91 Tage", not "2185 Stunden")."""
    seconds = _seconds(value)
    tolerance = max(0.5, seconds * 1e-5)
    for size, below in ((_DAY, float("inf")), (_HOUR, 4 * _DAY), (_MINUTE, 6 * _HOUR)):
        count = round(seconds / size)
        if count >= 1 and seconds < below and abs(seconds - count * size) <= tolerance:
            if size == _DAY and count % 7 == 0 and count // 7 <= _MAX_WEEKS:
                return count // 7, _UNITS[_WEEK]
            return count, _UNITS[size]
    if seconds < _MINUTE:
        return max(1, round(seconds)), _UNITS[1]
    size = next(s for s in (_DAY, _HOUR, _MINUTE) if seconds >= s)
    return round(seconds / size, 1), _UNITS[size]


def _number(count: float, language: str) -> str:
    text = f"{count:g}"
    return text if language == "en" else text.replace(".", ",")


def human_duration(value: timedelta | float | int | str, language: str) -> str:
    """``"91 Tage"``, ``"1 Minute"``, ``"2 weeks"``: a timedelta, or a number of days."""
    count, unit = _split(value)
    number = _number(count, language)
    if language == "en":
        return f"{number} {unit.en_one if count == 1 else unit.en_many}"
    return f"{number} {unit.de_one if count == 1 else unit.de_many}"


def every(value: timedelta | float | int | str, language: str) -> str:
    """A rhythm: ``"alle 91 Tage"``, ``"jede Minute"``, ``"every 2 weeks"``, ``"every day"``."""
    count, unit = _split(value)
    if language == "en":
        return f"every {unit.en_one}" if count == 1 else f"every {human_duration(value, 'en')}"
    return unit.de_every_one if count == 1 else f"alle {_number(count, 'de')} {unit.de_many}"


def _dative(value: timedelta | float | int | str, language: str) -> str:
    """``"einer Minute"``, ``"30 Tagen"``; English ``"a minute"``, ``"30 days"``."""
    count, unit = _split(value)
    if language == "en":
        return unit.en_a if count == 1 else human_duration(value, "en")
    return unit.de_a_dative if count == 1 else f"{_number(count, 'de')} {unit.de_many_dative}"


def within(value: timedelta | float | int | str, language: str) -> str:
    """From now: ``"in 30 Tagen"``, ``"in einer Minute"``, ``"in 2 weeks"``, ``"in an hour"``."""
    return f"in {_dative(value, language)}"


def ago(value: timedelta | float | int | str, language: str) -> str:
    """Back from now: ``"vor 21 Tagen"``, ``"vor einer Minute"``, ``"21 days ago"``."""
    if language == "en":
        return f"{_dative(value, 'en')} ago"
    return f"vor {_dative(value, 'de')}"
