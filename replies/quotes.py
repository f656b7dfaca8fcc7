"""Where the words someone wrote end and the quoted original (or a signature) begins.

A reply is read line by line, top down, and cut at the first line that starts

- the quoted original: a ">" line, an attribution ("On … wrote:", "Am … schrieb …:",
  "Le … a écrit :", "W dniu … napisał:", "… написал(а):", "… tarihinde … şunu yazdı:",
  "El … escribió:", "Il … ha scritto:", "Op … schreef …:", Gmail's "2016-08-16 12:52
  GMT+02:00 X <x@y>:"), also when a client broke it over up to four lines; a header block
  ("Von:/From:/De :/Od:/От:/Kimden:/Da:/Van: …" with "Gesendet:/Sent:/Envoyé :/…",
  bold ``*From:*`` too); a separator ("-----Ursprüngliche Nachricht-----", "---------- Forwarded
  message ---------", an Outlook underscore line); our own "reply above this line" marker;
- or a signature: "-- ", a mobile footer ("Sent from my iPhone", "Von meinem iPhone gesendet",
  "Gesendet von Outlook für Android", "Get Outlook for iOS", …), a sign-off line
  ("Mit freundlichen Grüßen", "Best regards", "Cordialement", "Pozdrawiam", …).

When nothing but a greeting stands above the quote, the answer may have been written below it
(bottom-posting): the ">" block (with its attribution) is skipped and the rest read the same
way. An original that is not ">"-quoted (Outlook's header block, a forwarded message, our
marker without ">") has no answer below it.

Work is bounded: the text is capped in characters and lines, every line in length, and the few
regular expressions are anchored or searched once per line with no nested or overlapping
quantifiers, so hostile input (a 40,000-space line, 100,000 short lines) costs milliseconds.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

#: Only the top of a reply matters; these caps bound the work any mail can cause.
MAX_TEXT_CHARS = 64_000
MAX_SCAN_LINES = 2_000
MAX_SCAN_LINE_CHARS = 1_000
#: The reply handed on: at most this many lines of at most this many characters.
MAX_LINES = 60
MAX_LINE_CHARS = 200
#: An attribution broken by a client spans at most this many lines, and this many characters.
_ATTRIBUTION_LINES = 4
_ATTRIBUTION_CHARS = 500
#: How often an answer below a quote is looked for below a further quote.
_MAX_DEPTH = 3

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\t\u3000"), " ")

_MARKER_RE = re.compile(
    r"^-{2,} ?(?:bitte oberhalb dieser zeile antworten|please reply above this line) ?-{2,}$"
)

# -- attributions ------------------------------------------------------------------------------

#: The verb of an attribution line, any of the languages our readers and their clients use.
_VERB_RE = re.compile(
    r"(?:^|[\s>\"'),])(?:wrote|writes|schrieb|schreibt|a [ée]crit|[ée]crit|escribi[óo]"
    r"|ha scritto|scritto|schreef|geschreven|napisa[łl](?:\(a\)|a)?|pisze|написал(?:\(а\)|а)?"
    r"|пишет|yazd[ıi]|skrev|skriver|escreveu|kirjoitti)(?=$|[\s:,.\-*])"
)
#: An attribution ends its line with its verb or a colon (dashes and stars around it aside).
_ENDS_LIKE_ATTRIBUTION_RE = re.compile(
    r"(?::|wrote|schrieb|[ée]crit|escribi[óo]|scritto|schreef|geschreven|napisa[łl]|pisze"
    r"|написал|написала|пишет|yazd[ıi]|skrev|sent:)$"
)
#: How attributions begin: "On", "Am", "Le", "El", "Il (giorno)", "Op", "W dniu", "Dnia",
#: "Den", "På", "Em", or a date.
_START_RE = re.compile(
    r"^(?:on|am|le|el|il|op|w dniu|dnia|den|på|em|в|\d|(?:mon|tue|wed|thu|fri|sat|sun"
    r"|mo|di|mi|do|fr|sa|so|lun|mar|mer|jeu|ven|sam|dim|пн|вт|ср|чт|пт|сб|вс)[.,])"
    r"(?=[\s\d.,(/-])"
)
#: Gmail's "2016-08-16 12:52 GMT+02:00 X <x@y>:" and "2013/7/20 X <x@y>" (no verb).
_DATE_SENDER_RE = re.compile(r"^\d{2,4}[-/.]\d{1,2}[-/.]\d{1,4}\b")
_DIGIT_RE = re.compile(r"\d")
#: "… reply On Wed, …" sharing a line with the attribution: where the attribution starts.
_INNER_START_RE = re.compile(r"(?:\s|--) ?(?:on|am|le|el|il|op|w dniu) (?=\w)")

# -- header blocks -----------------------------------------------------------------------------

_HEADER_KEYS = (
    # from
    "from|von|de|od|от|kimden|da|van|fra|från|"
    # sent / date
    "sent|gesendet|envoyé|envoye|wysłano|wysłane|отправлено|gönderildi|gönderilen|enviado"
    "|enviada em|inviato|verzonden|sendt|skickat|date|datum|data|fecha|tarih|дата|"
    # to / cc / reply-to
    "to|an|à|a|para|do|кому|kime|aan|till|til|cc|bcc|kopie|копия|reply-to|antwort an|"
    # subject
    "subject|betreff|objet|temat|тема|konu|asunto|assunto|oggetto|onderwerp|ämne|emne"
)
_HEADER_RE = re.compile(rf"^\*{{0,2}}(?:{_HEADER_KEYS}) ?\*{{0,2}} ?:")
_FROM_RE = re.compile(r"^\*{0,2}(?:from|von|de|od|от|kimden|da|van|fra|från) ?\*{0,2} ?:")
#: "Date: … From: … To: … Subject: …" on one line: a key after a space, at least twice more.
_INLINE_KEY_RE = re.compile(r" (?:from|to|subject|sent|von|an|betreff|gesendet|de|para) ?:")
#: Lines a header block may look ahead for its second header line.
_HEADER_WINDOW = 6

# -- separators and signatures -----------------------------------------------------------------

_SEPARATOR_PHRASES = (
    "original message",
    "original-nachricht",
    "ursprüngliche nachricht",
    "ursprungliche nachricht",
    "forwarded message",
    "weitergeleitete nachricht",
    "reply message",
    "antwort nachricht",
    "mensaje original",
    "mensaje reenviado",
    "message d'origine",
    "message original",
    "message transféré",
    "messaggio originale",
    "messaggio inoltrato",
    "oorspronkelijk bericht",
    "origineel bericht",
    "doorgestuurd bericht",
    "wiadomość oryginalna",
    "oryginalna wiadomość",
    "przekazana wiadomość",
    "исходное сообщение",
    "пересылаемое сообщение",
    "пересланное сообщение",
    "orijinal mesaj",
    "özgün ileti",
    "iletilen ileti",
    "oprindelig meddelelse",
    "ursprungligt meddelande",
)
_FORWARD_LINES = (
    "begin forwarded message:",
    "anfang der weitergeleiteten nachricht:",
    "début du message réexpédié :",
    "début du message réexpédié:",
    "inizio messaggio inoltrato:",
    "comienzo del mensaje reenviado:",
    "begin doorgestuurd bericht:",
)
_MOBILE_PREFIXES = (
    "sent from my ",
    "sent from ",
    "sent via ",
    "sent using ",
    "get outlook for ",
    "von meinem ",
    "gesendet von ",
    "gesendet vom ",
    "gesendet mit ",
    "gesendet über ",
    "outlook für ",
    "holen sie sich outlook",
    "envoyé de mon ",
    "envoyé depuis ",
    "envoyé à partir de ",
    "obtenir outlook pour ",
    "wysłane z ",
    "wysłano z ",
    "pobierz outlook ",
    "отправлено с ",
    "отправлено из ",
    "получить outlook ",
    "enviado desde ",
    "enviado do meu ",
    "enviado de mi ",
    "obtener outlook para ",
    "inviato da ",
    "inviato dal mio ",
    "scarica outlook per ",
    "verzonden vanaf ",
    "verstuurd vanaf ",
    "verzonden met ",
    "outlook voor ",
)
_MOBILE_SUFFIXES = ("gönderildi", "den gönderildi")
_SIGN_OFFS = (
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "mit freundlichem gruß",
    "mit freundlichem gruss",
    "freundliche grüße",
    "freundliche grüsse",
    "viele grüße",
    "viele grüsse",
    "liebe grüße",
    "liebe grüsse",
    "beste grüße",
    "beste grüsse",
    "herzliche grüße",
    "herzliche grüsse",
    "schöne grüße",
    "schöne grüsse",
    "grüße",
    "grüsse",
    "gruß",
    "gruss",
    "lg",
    "vg",
    "mfg",
    "best regards",
    "kind regards",
    "warm regards",
    "regards",
    "best wishes",
    "best",
    "cheers",
    "sincerely",
    "yours sincerely",
    "cordialement",
    "bien cordialement",
    "bien à vous",
    "salutations",
    "pozdrawiam",
    "z poważaniem",
    "pozdrowienia",
    "с уважением",
    "всего доброго",
    "saygılarımla",
    "saygılar",
    "iyi çalışmalar",
    "saludos",
    "un saludo",
    "atentamente",
    "cordiales saludos",
    "cordiali saluti",
    "distinti saluti",
    "saluti",
    "un saluto",
    "met vriendelijke groet",
    "met vriendelijke groeten",
    "vriendelijke groet",
    "groeten",
    "groet",
    "med venlig hilsen",
    "venlig hilsen",
    "mvh",
    "med vänliga hälsningar",
    "hälsningar",
)
_LONG_SIGN_OFFS = tuple(p for p in _SIGN_OFFS if " " in p or "grü" in p or "gru" in p)
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
    "bonjour",
    "salut",
    "cher",
    "chère",
    "dzień dobry",
    "cześć",
    "witam",
    "здравствуйте",
    "добрый день",
    "привет",
    "merhaba",
    "sayın",
    "hola",
    "estimado",
    "estimada",
    "buenos días",
    "ciao",
    "buongiorno",
    "gentile",
    "hoi",
    "beste",
    "geachte",
    "goedemorgen",
    "goedendag",
)


class Stop(Enum):
    """Why the words written on top end at a line."""

    QUOTE = "quote"  # a ">" line or an attribution: an answer may follow the quote
    ORIGINAL = "original"  # an unquoted original (header block, separator, marker)
    SIGNATURE = "signature"


@dataclass(frozen=True)
class _Cut:
    index: int  # first line not written on top
    stop: Stop | None  # None: the text ends
    #: For a ``QUOTE``: the first line after its attribution.
    resume: int = 0
    #: Text before the attribution on the cut line ("reply On … wrote:").
    head: str = ""


def _norm(line: str) -> str:
    """A line as the patterns see it: cut, no invisible characters, plain spaces, lower case."""
    line = line[:MAX_SCAN_LINE_CHARS].translate(_INVISIBLE).translate(_SPACES)
    return unicodedata.normalize("NFC", line).strip().lower()


def is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _trim(text: str) -> str:
    return text.strip(" -_*=\u2013\u2014")


def _is_attribution(window: str) -> bool:
    """Whether ``window`` (lines joined by spaces, normalized) is a whole attribution."""
    text = _trim(window)
    if not text or len(text) > _ATTRIBUTION_CHARS:
        return False
    if not _ENDS_LIKE_ATTRIBUTION_RE.search(text[-12:]):
        return _DATE_SENDER_RE.match(text) is not None and "@" in text and text.endswith(">")
    if _VERB_RE.search(text) is None:
        # Gmail in some locales names no verb: "пн, 3 окт. 2016 г. в 10:00, X <x@y>:".
        return text.endswith((">:", ">):")) and "@" in text and _DIGIT_RE.search(text) is not None
    if _START_RE.match(text) or "@" in text or _DIGIT_RE.search(text) is not None:
        return True
    # "Tandem Office wrote:", "Büro schrieb:": a short line ending in its verb and a colon.
    # Safer to lose a sentence like "Here is what she wrote:" than to read the original.
    return text.endswith(":") and len(text.split()) <= 6


def _continues_attribution(line: str) -> bool:
    """Whether a line above may be the first part of an attribution broken over lines: not
    empty, not quoted, no finished sentence ("On Friday we met.")."""
    return bool(line) and not line.startswith(">") and not line.endswith((".", "!", "?"))


def _attribution_at(norm: list[str], i: int) -> tuple[int, str] | None:
    """When line ``i`` ends an attribution: the index of its first line, and any reply text
    that stands before it on that line."""
    line = norm[i]
    if not line or line.startswith(">"):
        return None
    ends_like_one = _ENDS_LIKE_ATTRIBUTION_RE.search(_trim(line)[-12:]) is not None
    if not ends_like_one and not (
        _DATE_SENDER_RE.match(line) and line.endswith(">") and "@" in line
    ):
        return None
    # The longest window that begins like an attribution: a word ("On", "Am", …) before a
    # date, so that "On Nov 30, …, X <\n4165…@x>\nwrote:" is taken whole.
    by_word: int | None = None
    by_digit: int | None = None
    for j in range(i, max(-1, i - _ATTRIBUTION_LINES), -1):
        if j < i and not _continues_attribution(norm[j]):
            break
        window = _trim(" ".join(norm[j : i + 1]))
        if _START_RE.match(window) and _is_attribution(window):
            if window[0].isdigit():
                by_digit = j
            else:
                by_word = j
    if by_word is not None or by_digit is not None:
        return (by_word if by_word is not None else by_digit), ""  # type: ignore[return-value]
    for j in range(i, max(-1, i - _ATTRIBUTION_LINES), -1):
        if j < i and not _continues_attribution(norm[j]):
            break
        window = " ".join(norm[j : i + 1])
        if _is_attribution(window):
            inner = _INNER_START_RE.search(norm[j])
            if inner and j == i and _is_attribution(norm[j][inner.start() :]):
                return j, norm[j][: inner.start()]
            return j, ""
    inner = _INNER_START_RE.search(line)
    if inner and _is_attribution(line[inner.start() :]):
        return i, line[: inner.start()]
    return None


def _is_header(norm: list[str], i: int) -> bool:
    """Whether a header block of a quoted original starts at line ``i``."""
    line = norm[i]
    if not _HEADER_RE.match(line):
        return False
    if len(_INLINE_KEY_RE.findall(line)) >= 2:
        return True
    if _FROM_RE.match(line) and "@" in line and len(line.split()) <= 6:
        return True  # "From: Name <address>" alone
    for seen, nxt in enumerate(norm[i + 1 : i + 1 + _HEADER_WINDOW]):
        if _HEADER_RE.match(nxt):
            return True
        if not nxt or seen >= 2:  # "From: … [mailto:" wrapped over a line or two, no further
            break
    return False


def _is_separator(line: str, raw: str) -> bool:
    if line in _FORWARD_LINES or _MARKER_RE.match(line):
        return True
    stripped = raw.strip()
    if len(stripped) >= 8 and not stripped.strip("_"):
        return True  # Outlook's underscore line
    if len(stripped) >= 20 and not stripped.strip("-"):
        return True
    if not (line.startswith("--") or line.startswith("__") or line.startswith("**")):
        return False
    inner = _trim(line).strip()
    return inner.startswith(_SEPARATOR_PHRASES)


def _is_mobile_footer(line: str) -> bool:
    words = line.split()
    if len(line) > 60 or len(words) > 7:
        return False
    if line.startswith(_MOBILE_PREFIXES) and ":" not in line[:12]:
        return True
    return 2 <= len(words) <= 6 and line.rstrip(".!").endswith(_MOBILE_SUFFIXES)


def _words(line: str) -> str:
    return " ".join(line.replace(",", " ").replace("!", " ").replace(".", " ").split())


def _is_sign_off(line: str) -> bool:
    if len(line) > 60:
        return False
    text = _words(line.split(" / ")[0])
    if text in _SIGN_OFFS:
        return True
    # "Regards, Roman", "Viele Grüße, Anna", "Mit freundlichen Grüßen / Kind regards"
    head = _words(line.split(",")[0].split(" / ")[0])
    if head in _SIGN_OFFS and len(text.split()) <= len(head.split()) + 3:
        return True
    # "Herzliche Grüße aus Berlin", "Danke und viele Grüße": only the longer sign-offs, as
    # "Best time is Monday" is no sign-off.
    words = text.split()
    if len(words) > 6:
        return False
    return any(
        text.startswith(phrase + " ") or text.endswith(" " + phrase) for phrase in _LONG_SIGN_OFFS
    )


def _is_greeting(line: str) -> bool:
    text = _words(line)
    return len(text.split()) <= 5 and any(text == g or text.startswith(g + " ") for g in _GREETINGS)


def _introduction(norm: list[str], start: int, i: int) -> int:
    """Where the lines introducing the ">" block at ``i`` begin: the last line above it when
    it ends with a colon or holds an address, with the lines it continues (up to the blank
    line above) when they hold an address; ``i`` when there is no such line."""
    j = i - 1
    while j >= start and not norm[j]:
        j -= 1
    if j < start or not (norm[j].endswith(":") or "@" in norm[j]):
        return i
    first = j
    while (
        first - 1 >= start
        and norm[first - 1]
        and not norm[first - 1].endswith((".", "!", "?"))
        and j - first < _ATTRIBUTION_LINES - 1
    ):
        first -= 1
    block = " ".join(norm[first : j + 1])
    return first if "@" in block and "@" not in norm[j] else j


def _find_cut(raw: list[str], norm: list[str], start: int) -> _Cut:
    """The first line at or after ``start`` that is not written on top."""
    wrote_something = False
    for i in range(start, len(norm)):
        line = norm[i]
        if not line:
            continue
        if line.startswith(">"):
            # The lines just above a ">" block that name a sender introduce it.
            first = _introduction(norm, start, i)
            return _Cut(first, Stop.QUOTE, resume=i)
        if _is_separator(line, raw[i]):
            return _Cut(i, Stop.ORIGINAL)
        if _is_header(norm, i):
            return _Cut(i, Stop.ORIGINAL)
        if raw[i].rstrip() in ("--", "-- ", "__") or raw[i].strip() == "--":
            return _Cut(i, Stop.SIGNATURE)
        found = _attribution_at(norm, i)
        if found is not None:
            first, head = found
            return _Cut(first, Stop.QUOTE, resume=i + 1, head=raw[first][: len(head)])
        if _is_mobile_footer(line):
            return _Cut(i, Stop.SIGNATURE)
        if wrote_something and _is_sign_off(line):
            return _Cut(i, Stop.SIGNATURE)
        if not _is_greeting(line):
            wrote_something = True
    return _Cut(len(norm), None)


def _has_words(lines: list[str]) -> bool:
    return any(ln.strip() and not _is_greeting(_norm(ln)) for ln in lines)


def _top(raw: list[str], norm: list[str], start: int, depth: int) -> list[str]:
    cut = _find_cut(raw, norm, start)
    top = raw[start : cut.index]
    if cut.head.strip(" -"):
        top = [*top, cut.head.rstrip(" -")]
    if cut.stop is not Stop.QUOTE or _has_words(top) or depth >= _MAX_DEPTH:
        return top
    # Nothing but a greeting on top: the answer may stand below the quote.
    i = cut.resume
    while i < len(norm) and not norm[i]:
        i += 1
    if i >= len(norm) or not norm[i].startswith(">"):
        return top  # an unquoted original follows the attribution
    while i < len(norm) and (not norm[i] or norm[i].startswith(">")):
        i += 1
    below = _top(raw, norm, i, depth + 1)
    while top and not top[-1].strip():
        top.pop()
    if not any(ln.strip() for ln in below):
        return top
    return [*top, "", *below] if top else below


def reply_top(text: str) -> str:
    """What the sender wrote above the quoted original (or below it, when nothing stands
    above), without signature: at most ``MAX_LINES`` lines of ``MAX_LINE_CHARS``."""
    raw = text[:MAX_TEXT_CHARS].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    raw = [ln.translate(_INVISIBLE) for ln in raw[:MAX_SCAN_LINES]]
    norm = [_norm(ln) for ln in raw]
    lines = [ln[:MAX_LINE_CHARS].rstrip() for ln in _top(raw, norm, 0, 0)]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines[:MAX_LINES]).strip()
