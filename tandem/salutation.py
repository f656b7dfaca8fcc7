"""How a mail addresses a person: "Sehr geehrte Frau Dr. Weber", "Dear Professor Weber".

One rule for every mail, pure. A person may have a ``salutation`` (``Frau``, ``Herr`` or
none) and a ``title`` (free text as the office writes it: ``Dr. med.``, ``Prof. Dr.``,
``PD Dr.``). The greeting uses the title as it is said, not as it is written: ``Dr.`` and
``Prof.`` only (``Frau Dr. Weber`` for a ``Dr. med.``, ``PD`` and faculty suffixes are
not spoken); the full title stays for the contact details of an introduction.

Without a salutation nobody is guessed a gender: German mails say "Guten Tag Alex Weber"
(``Guten Tag Dr. Alex Weber`` with a title), English ones "Dear Alex Weber". Objects without
``salutation`` or ``title`` (older callers) are addressed as without.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

__all__ = [
    "MAX_TITLE",
    "SALUTATIONS",
    "Salutation",
    "full_name",
    "greeting",
    "named",
    "parse_salutation",
    "parse_title",
]

Salutation = Literal["", "Frau", "Herr"]
SALUTATIONS: tuple[Salutation, ...] = ("Frau", "Herr")
#: Longer is no title but something else in the wrong column ("Prof. Dr. med. Dr. h. c." fits).
MAX_TITLE = 40

#: What offices write, lower-case without the full stop -> the salutation it means. A
#: neutral form (``divers``, ``Mx``) is addressed without a salutation: nobody is guessed one.
_SALUTATION_WORDS: dict[str, Salutation] = {
    "frau": "Frau",
    "fr": "Frau",
    "mrs": "Frau",
    "ms": "Frau",
    "miss": "Frau",
    "herr": "Herr",
    "herrn": "Herr",
    "hr": "Herr",
    "hrn": "Herr",
    "mr": "Herr",
    "divers": "",
    "mx": "",
    "-": "",
}
_TITLE_WORD = re.compile(r"(?i)(?:prof|dr|pd|priv\.?-doz|dipl)\b")
#: Abbreviations offices write without their full stop ("Dr med") -> as written in German.
_DOTTED = {
    w: f"{w}."
    for w in ("Dr", "Prof", "med", "dent", "vet", "rer", "nat", "phil", "habil", "univ", "jur")
}
_PROFESSOR = re.compile(r"(?i)prof(?:\.|essor(?:in)?)?")
_DOCTOR = re.compile(r"(?i)(?:mu)?dr\b.*")
#: A full stop with a letter right after it: two abbreviations written together.
_GLUED = re.compile(r"\.(?=[^\W\d_])")


class Addressee(Protocol):
    @property
    def first_name(self) -> str: ...

    @property
    def last_name(self) -> str: ...


def parse_salutation(raw: str) -> Salutation:
    """``Frau``, ``Herr`` or ``""`` for what an office's file holds (``Fr.``, ``Hr.``, ``Mrs``,
    ``Ms``, ``Mr``, any case). ``ValueError`` with a short reason that repeats nothing of the
    value (it may be a name in the wrong column)."""
    word = " ".join(raw.split()).lower().rstrip(".")
    if word in _SALUTATION_WORDS or not word:
        return _SALUTATION_WORDS.get(word, "")
    first = word.split(" ", 1)[0].rstrip(".")
    if _TITLE_WORD.match(word) or (first in _SALUTATION_WORDS and " " in word):
        raise ValueError("only Frau or Herr here (a title such as Dr. belongs in the title column)")
    raise ValueError("must be Frau or Herr (also Fr., Hr., Mrs, Ms, Mr), or empty")


def parse_title(raw: str) -> str:
    """The title as mails print it: spaces tidied, ``Dr``/``Prof`` given their full stop.
    ``ValueError`` (a short reason, never the value) for what cannot be a title."""
    words = _words(raw)
    if not words:
        return ""
    if words[0].lower().rstrip(".") in _SALUTATION_WORDS:
        raise ValueError("Frau or Herr belongs in the salutation column")
    title = " ".join(_DOTTED.get(w, w) for w in words)
    if "@" in title:
        raise ValueError("not a title (an e-mail address belongs in the email column)")
    if len(title) > MAX_TITLE:
        raise ValueError(f"too long (at most {MAX_TITLE} characters)")
    return title


def _words(title: str) -> list[str]:
    """A title's words; ``Prof.Dr.med.`` written together counts as ``Prof. Dr. med.``."""
    return _GLUED.sub(". ", title).split()


def _salutation(person: Addressee) -> str:
    value = getattr(person, "salutation", "") or ""
    return value if value in SALUTATIONS else ""


def _title(person: Addressee) -> str:
    return " ".join(str(getattr(person, "title", "") or "").split())


def _spoken(title: str) -> list[str]:
    """The ranks of a title that are said: ``Prof. Dr. med.`` -> ``["Prof.", "Dr."]``."""
    ranks = []
    for word in _words(title):
        if _PROFESSOR.fullmatch(word):
            ranks.append("Prof.")
        elif _DOCTOR.fullmatch(word):
            ranks.append("Dr.")
    return ranks


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def greeting(person: Addressee, language: str) -> str:
    """The first line of a mail, without its comma.

    German: "Sehr geehrte Frau Dr. Weber", "Sehr geehrter Herr Prof. Dr. Weber", "Guten Tag
    Dr. Alex Weber", "Guten Tag Alex Weber". English (British, no full stop after Dr):
    "Dear Professor Weber", "Dear Dr Weber", "Dear Ms Weber", "Dear Mr Weber", "Dear Alex
    Weber"."""
    salutation, ranks = _salutation(person), _spoken(_title(person))
    first, last = person.first_name, person.last_name
    if language == "en":
        if "Prof." in ranks:
            return f"Dear Professor {last}"
        if "Dr." in ranks:
            return f"Dear Dr {last}"
        if salutation:
            return f"Dear {'Ms' if salutation == 'Frau' else 'Mr'} {last}"
        return f"Dear {_join(first, last)}"
    if salutation:
        opening = "Sehr geehrte" if salutation == "Frau" else "Sehr geehrter"
        return _join(opening, salutation, *ranks, last)
    return _join("Guten Tag", *ranks, first, last)


def named(person: Addressee, language: str, case: Literal["nom", "dat"] = "nom") -> str:
    """The person mentioned in a sentence: "Frau Dr. Weber", "mit Herrn Dr. Weber"
    (``case="dat"``), "Dr. Alex Weber", "Alex Weber"; English "Dr Alex Weber", "Professor
    Alex Weber", "Alex Weber" (Ms/Mr are for greetings only)."""
    salutation, ranks = _salutation(person), _spoken(_title(person))
    first, last = person.first_name, person.last_name
    if language == "en":
        rank = "Professor" if "Prof." in ranks else "Dr" if "Dr." in ranks else ""
        return _join(rank, first, last)
    if salutation:
        word = "Herrn" if salutation == "Herr" and case == "dat" else salutation
        return _join(word, *ranks, last)
    return _join(*ranks, first, last)


def full_name(person: Addressee) -> str:
    """Title as written, first and last name: the contact details of an introduction."""
    return _join(_title(person), person.first_name, person.last_name)
