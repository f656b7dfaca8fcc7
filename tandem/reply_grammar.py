"""What a reply mail says, German or English. Pure and deterministic: no I/O.

People answer with a word or a sentence ("Ja", "später in 3 Wochen", "Weitermachen möchte
ich nicht", "we haven't met yet"). The text is cut into sentences and clauses; in each
clause the phrases of ``tandem/reply_words.py`` are found, and a negation ("nicht", "kein",
"not", "auf keinen Fall") turns the phrase nearest to it. A question echoed before its
answer ("Weitermachen? Nein.") takes the answer's polarity; questions, conditions ("wenn",
"if") and narration about others assert nothing. Only intents the request allows
(``tandem.answers.ALLOWED``) are taken: anything else is refused with a list of what is
possible, never guessed. A destructive answer (stop, decline, phase_done) counts as *plain*
only when nothing but plain words stands beside it; otherwise the reading is ``unsure`` and
the sender is asked to confirm it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Literal

from tandem.answers import ALLOWED, AnswerDetails, Intent, RequestKind
from tandem.reply_dates import Facts, extract_facts
from tandem.reply_words import (
    CLAUSE_BREAKS,
    CONDITIONS,
    EMOJI,
    FUTURE,
    GREETINGS,
    HEDGES,
    NEGATORS,
    PHRASES,
    PLAIN,
    SENTENCE_STARTS,
    SEPARABLE,
    THIRD_PARTY,
    Category,
    Weak,
)

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
MAX_LINES = 15
_MAX_LINE_CHARS = 300
_MAX_SUBJECT_CHARS = 200

Problem = Literal["empty", "not_understood", "ambiguous", "not_allowed", "automatic"]


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


def is_destructive(intent: Intent, kind: RequestKind) -> bool:
    """Whether acting on ``intent`` wrongly would end or redirect a tandem. ("Not possible"
    to a shadowing request only declines a visit.)"""
    return intent in DESTRUCTIVE and not (
        intent is Intent.DECLINE and kind in (RequestKind.SHADOWING, RequestKind.PROPOSAL)
    )


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
    lines = capped_lines(text)
    for i, line in enumerate(lines):
        if _MARKER_RE.match(line):
            above = lines[:i]
            if any(
                ln.strip() and not is_quoted(ln) and not _ATTRIBUTION_RE.match(ln) for ln in above
            ):
                return "\n".join(above)
            return "\n".join(lines)
    return "\n".join(lines)


_BLANKS = re.compile(r"[ \t\u00a0]{2,}")
_MAX_TEXT_CHARS = 64_000
_MAX_TEXT_LINES = 1_000


def capped_lines(text: str) -> list[str]:
    """The lines the reading looks at, bounded before any pattern sees them: at most 1,000
    lines of 300 characters, runs of blanks squeezed to one (a pattern over 40,000 spaces
    must not take seconds)."""
    lines = text[:_MAX_TEXT_CHARS].splitlines()[:_MAX_TEXT_LINES]
    return [_BLANKS.sub(" ", line[: _MAX_LINE_CHARS * 4])[:_MAX_LINE_CHARS] for line in lines]


def content_lines(text: str) -> list[str]:
    """Non-empty, unquoted lines, in order (each cut to a sane length)."""
    return [ln.strip() for ln in capped_lines(text) if ln.strip() and not is_quoted(ln)]


# -- the phrase table, compiled ----------------------------------------------------------------


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    #: The last word is a stem ("beend*").
    stem: bool
    category: Category


def _compile() -> tuple[dict[str, list[_Phrase]], dict[str, Category]]:
    by_first: dict[str, list[_Phrase]] = {}
    singles: dict[str, Category] = {}
    for category, phrases in PHRASES.items():
        for text in phrases:
            words = text.split()
            stem = words[-1].endswith("*")
            if stem:
                words[-1] = words[-1][:-1]
            phrase = _Phrase(tuple(words), stem, category)
            key = words[0] if len(words) > 1 or not stem else "*"
            by_first.setdefault(key, []).append(phrase)
            if len(words) == 1 and not stem and len(words[0]) >= 6:
                singles[words[0]] = category
    for candidates in by_first.values():
        candidates.sort(key=lambda p: -len(p.words))
    return by_first, singles


_BY_FIRST, _SINGLES = _compile()
_STEMS = list(_BY_FIRST.get("*", []))


def _word_matches(word: str, pattern: str, stem: bool) -> bool:
    return word.startswith(pattern) if stem else word == pattern


@lru_cache(maxsize=4096)
def _near_word(word: str) -> Category | None:
    """A misspelt single word ("weitermachn", "getrofen"): one edit away from a phrase word of
    six letters or more. Deterministic: the first in table order wins."""
    if len(word) < 6 or not word.isalpha():
        return None
    for known, category in _SINGLES.items():
        if abs(len(known) - len(word)) <= 1 and _one_edit(word, known):
            return category
    return None


def _one_edit(a: str, b: str) -> bool:
    """Levenshtein distance 1, or one swap of neighbours (Damerau)."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and (a[diff[1]] == b[diff[0]])
        )
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


# -- text preparation ---------------------------------------------------------------------------

_SPELLINGS = (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("\u2019", "'"), ("`", "'"))
#: Lower-case "sie", "ihr" and "ihre" mid-sentence are "she" and "her"; capitalised they are
#: the formal "you": only the lower-case forms mark a clause as being about someone else.
_LOWER_THIRD_PERSON = re.compile(r"(?<=[a-zäöüß,] )(?:sie|ihr|ihre|ihren|ihrem|ihrer)\b")
_ADDRESS_OR_LINK = re.compile(r"\S{0,100}@\S{1,100}|\b(?:https?://|www\.)\S{0,200}")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_EMOJI_RE = re.compile("|".join(EMOJI))
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f]")
_COMMENT = re.compile(r"<!--.{0,300}?-->")
#: "(gern mit Datum, z. B. „getroffen am 14.03.“)": an example copied from our mail is no fact.
_EXAMPLE = re.compile(r"\b(?:z\.\s?b\.|zb\.|e\.\s?g\.|zum beispiel|for example)[^)\n]{0,200}", re.I)


def normalize(text: str) -> str:
    """Lower case, umlauts spelt out (``später`` = ``spaeter``), one kind of apostrophe,
    letters said three times said once (``jaaa`` = ``ja``)."""
    text = unicodedata.normalize("NFKC", text).lower()
    for src, dst in _SPELLINGS:
        text = text.replace(src, dst)
    return _REPEATS.sub(r"\1", text)


def _prepare(line: str) -> str:
    line = _EXAMPLE.sub(" ", _ADDRESS_OR_LINK.sub(" ", _COMMENT.sub(" ", line)))
    line = _LOWER_THIRD_PERSON.sub("drittperson", line)
    line = _EMOJI_RE.sub(lambda m: EMOJI[m.group(0)], _SKIN_TONES.sub("", line))
    return normalize(line)


_SENTENCE = re.compile(r"[^.!?;]+[.!?;]*|[.!?;]+")
_CLAUSE_SPLIT = re.compile('[,:()\\[\\]"\u00ab\u00bb\u201e\u201c\u201d\u2013\u2014/]+|\\s-\\s')
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_ANSWER_WORDS = frozenset(("ja", "nein", "yes", "no", "jo", "jap", "nee", "nope", "yep"))


# -- one clause ---------------------------------------------------------------------------------


@dataclass
class _Hit:
    start: int
    end: int
    category: Category
    fuzzy: bool = False
    negated_by: int | None = None


@dataclass
class _Clause:
    words: list[str]
    question: bool
    hits: list[_Hit] = field(default_factory=list)

    @property
    def conditional(self) -> bool:
        return any(w in CONDITIONS for w in self.words)

    @property
    def hedged(self) -> bool:
        return any(w in HEDGES for w in self._free_words())

    @property
    def about_others(self) -> bool:
        return any(w in THIRD_PARTY or w == "drittperson" for w in self._free_words())

    def _free_words(self) -> list[str]:
        used = {i for h in self.hits for i in range(h.start, h.end)}
        return [w for i, w in enumerate(self.words) if i not in used]

    def plain(self) -> bool:
        """Nothing but answer words, their negation and plain words."""
        used = {i for h in self.hits for i in range(h.start, h.end)}
        negated = any(h.negated_by is not None for h in self.hits)
        return all(
            i in used or w in PLAIN or (negated and w in NEGATORS) for i, w in enumerate(self.words)
        )


def _find_hits(words: list[str]) -> list[_Hit]:
    hits: list[_Hit] = []
    i = 0
    while i < len(words):
        hit = _match_at(words, i)
        if hit is None:
            i += 1
            continue
        hits.append(hit)
        i = hit.end
    if len(words) > 2 and words[-1] in SEPARABLE and not any(h.end == len(words) for h in hits):
        verbs, category = SEPARABLE[words[-1]]
        used = {k for h in hits for k in range(h.start, h.end)}
        for k, word in enumerate(words[:-1]):
            if word in verbs and k not in used:  # "ich höre als Mentor auf"
                hits.append(_Hit(k, k + 1, category))
                break
    return sorted(hits, key=lambda h: h.start)


def _match_at(words: list[str], i: int) -> _Hit | None:
    for phrase in _BY_FIRST.get(words[i], []):
        n = len(phrase.words)
        if i + n <= len(words) and all(
            _word_matches(words[i + k], phrase.words[k], phrase.stem and k == n - 1)
            for k in range(n)
        ):
            return _Hit(i, i + n, phrase.category)
    for phrase in _STEMS:
        if words[i].startswith(phrase.words[0]):
            return _Hit(i, i + 1, phrase.category)
    near = _near_word(words[i])
    if near is not None:
        return _Hit(i, i + 1, near, fuzzy=True)
    return None


_NEGATION_REACH = 3


def _negate(clause: _Clause) -> None:
    """Attach each negator to the phrase it turns: the next phrase within three words
    ("nicht aufhören", "keine Hilfe"), else the one before it ("Weitermachen möchte ich
    nicht", "Hilfe brauche ich keine"). "kein" before a word that is no phrase negates that
    word ("keine Zeit"), not the answer."""
    words, hits = clause.words, clause.hits
    used = {i for h in hits for i in range(h.start, h.end)}
    for j, word in enumerate(words):
        if j in used or (word not in NEGATORS and not word.endswith("n't")):
            continue
        after = [h for h in hits if 0 <= h.start - j <= _NEGATION_REACH]
        if after:
            after[0].negated_by = j
            continue
        if word.startswith("kein") and j + 1 < len(words) and words[j + 1] != "mehr":
            continue
        before = [h for h in hits if 0 < j - h.end + 1 <= _NEGATION_REACH + 1]
        if before:
            before[-1].negated_by = j
    # "Aufhören möchten wir auf keinen Fall", "die Phase hat noch nicht begonnen": a no or a
    # not-yet in a clause with an answer phrase turns that phrase and is used up by it.
    turnable = [h for h in hits if isinstance(h.category, Intent) or h.category is Weak.YES]
    for h in list(hits):
        bare = h.end - h.start == 1 and clause.words[h.start] in _ANSWER_WORDS
        if bare and not any(isinstance(t.category, Intent) for t in turnable):
            continue  # "ja nein" contradicts itself; it does not negate
        if h.category in (Weak.NO, Weak.NOT_YET) and turnable:
            target = min(turnable, key=lambda s: abs(s.start - h.start))
            if target.negated_by is None:
                target.negated_by = h.start
            hits.remove(h)
    # "keine Hospitation möglich", "not possible for me": a clause that negates says no.
    if any(h.negated_by is not None for h in hits):
        for h in hits:
            if h.category is Weak.YES and h.negated_by is None:
                h.negated_by = h.start


def _split_clauses(sentence: str) -> list[_Clause]:
    """The clauses of one sentence; only the last one of a question is asked."""
    clauses = _clauses(sentence)
    if clauses and "?" in sentence:
        asked = clauses[-1:] if clauses[-1].words[0] in _QUESTION_WORDS else clauses
        for clause in asked:
            clause.question = True
    return clauses


#: A last clause starting with one of these is the question ("…, warum sollte ich nicht?").
_QUESTION_WORDS = frozenset(
    [
        "warum",
        "wieso",
        "weshalb",
        "wie",
        "was",
        "wann",
        "wo",
        "wer",
        "why",
        "how",
        "what",
        "when",
        "where",
        "who",
    ]
)


def _clauses(sentence: str) -> list[_Clause]:
    question = False
    clauses: list[_Clause] = []
    for part in _CLAUSE_SPLIT.split(sentence.rstrip(".!?; ")):
        words = _WORD.findall(part)
        current: list[str] = []
        for k, word in enumerate(words):
            if word in CLAUSE_BREAKS and current:
                clauses.append(_Clause(current, question))
                current = []
                continue
            current.append(word)
            if k == 0 and word in _ANSWER_WORDS and len(words) > 1 and words[1] in SENTENCE_STARTS:
                clauses.append(_Clause(current, question))  # "nein ich möchte nicht …"
                current = []
        if current:
            clauses.append(_Clause(current, question))
    return clauses


_THANKS_FOR = re.compile(
    r"^(?:danke|vielen dank|herzlichen dank|besten dank|thanks|thank you"
    r"|many thanks)\s+(?:fuer|for)\b"
)


def _clause_sayings(clause: _Clause, kind: RequestKind) -> list[_Said]:
    """What one clause says: each phrase with its negation resolved."""
    clause.hits = _find_hits(clause.words)
    if not clause.hits:
        return []
    if _THANKS_FOR.match(" ".join(clause.words)):
        clause.hits = []  # "danke für die Hilfe" thanks for something, asks nothing
        return []
    _negate(clause)
    said: list[_Said] = []
    for hit in clause.hits:
        category = _resolve(hit.category, hit.negated_by is not None, kind)
        if category is not None:
            said.append(_Said(category, fuzzy=hit.fuzzy))
    return said


def _resolve(category: Category, negated: bool, kind: RequestKind) -> Category | None:
    """A phrase's meaning after negation: "nicht weitermachen" is a no, "nicht aufhören" a
    wish to go on, "noch nicht getroffen" a not-yet; "keine Hilfe" says nothing."""
    if category is Intent.SHADOWING and kind is RequestKind.SHADOWING:
        return Weak.NO if negated else None  # the topic of the question, not an answer
    if category is Weak.MEETING:  # "noch nicht getroffen" says not yet; "treffen" nothing
        return Weak.NOT_YET if negated else None
    if not negated:
        return category
    return _NEGATED.get(category)


#: What a question may ask for: a call, a later date, a visit. Anything else it only asks.
_ASKABLE = frozenset({Intent.HELP, Intent.SNOOZE, Intent.SHADOWING})

_NEGATED: dict[Category, Category] = {
    Intent.CONTINUE: Intent.DECLINE,
    Intent.STOP: Weak.KEEP,
    Intent.DECLINE: Weak.KEEP,
    Intent.MET: Weak.NOT_YET,
    Intent.PHASE_DONE: Weak.NOT_YET,
    Weak.YES: Weak.NO,
}


@dataclass
class _Said:
    category: Category
    fuzzy: bool = False
    #: Echoed question, hedge, narration, condition nearby: not plain enough to act on if
    #: destructive.
    unsure: bool = False


@dataclass
class _Text:
    """Everything read from a reply's lines."""

    said: list[_Said] = field(default_factory=list)
    facts: Facts = field(default_factory=lambda: Facts(""))
    plain: bool = True
    unsure: bool = False
    #: A condition stands beside the answer ("wenn", "falls", "if").
    conditional: bool = False
    #: Something ahead is spoken of ("ab nächster Woche", "starting Monday").
    future: bool = False
    lines: int = 0


def _read_lines(lines: list[str], kind: RequestKind, today: date) -> _Text:
    found = _Text()
    pending_question: list[_Said] = []
    for line in lines:
        norm = _prepare(line)
        facts = extract_facts(norm, today)
        sentences = [s for s in _SENTENCE.findall(facts.text) if _WORD.search(s)]
        line_said: list[tuple[_Clause, list[_Said]]] = []
        for sentence in sentences:
            for clause in _split_clauses(sentence):
                line_said.append((clause, _clause_sayings(clause, kind)))
        nothing_said = not any(said for _, said in line_said) and not facts.duration_only
        if nothing_said and _is_greeting(norm):
            continue
        found.lines += 1
        if found.lines > MAX_LINES:
            break
        _merge_facts(found.facts, facts)
        found.future = found.future or facts.future
        if facts.duration_only and not any(said for _, said in line_said):
            found.said.append(_Said(Intent.SNOOZE))
        for clause, said in line_said:
            if pending_question:
                answer = _echo_answer(said)
                if answer is not None:  # "Weitermachen? Nein."
                    for q in pending_question:
                        category = q.category if answer else _NEGATED.get(q.category)
                        if category is not None:
                            found.said.append(_Said(category, q.fuzzy, unsure=True))
                    pending_question = []
                    continue
                pending_question = []
                found.unsure = True  # a question of theirs, not an answer
            if clause.question and said:
                # "Können Sie mich anrufen?", "Kann ich später antworten?" ask for something;
                # "Kann ich auch aufhören?" only asks.
                if clause.plain() and len(clause.words) <= 2:  # "Hospitation?": an echo
                    pending_question = said
                    continue
                found.said.extend(x for x in said if x.category in _ASKABLE)
                pending_question = [x for x in said if x.category not in _ASKABLE]
                continue
            if clause.conditional:
                found.conditional = True
                continue
            if clause.question:
                found.unsure = True
                found.plain = False
                continue
            destructive_elsewhere = clause.about_others and any(
                s.category in DESTRUCTIVE for s in said
            )
            if destructive_elsewhere:  # "meine Freundin will ihr Studium abbrechen"
                found.unsure = True
                found.plain = False
                said = [s for s in said if s.category not in DESTRUCTIVE]
            if clause.hedged:
                for x in said:
                    x.unsure = True
            if any(w in FUTURE for w in clause.words):
                found.future = True
            found.said.extend(said)
            if not _plain_clause(clause):
                found.plain = False
    if pending_question:
        found.unsure = True
    return found


def _echo_answer(said: list[_Said]) -> bool | None:
    """The answer to a question just echoed: True for yes, False for no, None if none."""
    kinds = {s.category for s in said}
    if kinds and kinds <= {Weak.YES}:
        return True
    if kinds and kinds <= {Weak.NO, Weak.NOT_YET}:
        return False
    return None


def _plain_clause(clause: _Clause) -> bool:
    if clause.hits:
        return clause.plain()
    risky = (
        clause.hedged
        or clause.about_others
        or any(w in NEGATORS or w.endswith("n't") for w in clause.words)
    )
    return not risky and len(clause.words) <= 6


def _merge_facts(into: Facts, facts: Facts) -> None:
    if into.met_on is None:
        into.met_on = facts.met_on
    if into.snooze_weeks is None:
        into.snooze_weeks = facts.snooze_weeks
    into.duration_only = into.duration_only or facts.duration_only


def _is_greeting(normalized: str) -> bool:
    words = _WORD.findall(normalized)
    joined = " ".join(words)
    return len(words) <= 6 and any(joined == g or joined.startswith(g + " ") for g in GREETINGS)


#: What a yes / a no / a "not yet" / a "don't stop" means, per request.
_WEAK_MEANS: dict[Weak, dict[RequestKind, Intent]] = {
    Weak.YES: {
        RequestKind.DECISION: Intent.CONTINUE,
        RequestKind.SHADOWING: Intent.CONTINUE,
        RequestKind.NUDGE: Intent.MET,
        RequestKind.INTRODUCTION: Intent.MET,
        RequestKind.PHASE_CHECK: Intent.PHASE_DONE,
        RequestKind.OFFICE: Intent.CONTINUE,
        RequestKind.PROPOSAL: Intent.CONTINUE,
    },
    Weak.NO: {
        RequestKind.DECISION: Intent.DECLINE,
        RequestKind.SHADOWING: Intent.DECLINE,
        RequestKind.NUDGE: Intent.SNOOZE,
        RequestKind.PHASE_CHECK: Intent.SNOOZE,
        RequestKind.OFFICE: Intent.DECLINE,
        RequestKind.PROPOSAL: Intent.DECLINE,
    },
    Weak.NOT_YET: {
        RequestKind.DECISION: Intent.UNDECIDED,
        RequestKind.NUDGE: Intent.SNOOZE,
        RequestKind.PHASE_CHECK: Intent.SNOOZE,
        RequestKind.OFFICE: Intent.UNDECIDED,
    },
    Weak.KEEP: {
        RequestKind.DECISION: Intent.CONTINUE,
        RequestKind.OFFICE: Intent.CONTINUE,
    },
}


#: Out-of-office notes that came without auto-reply headers: never an answer.
_OUT_OF_OFFICE = re.compile(
    r"\b(?:nicht im buero|ausser haus|abwesenheitsnotiz|automatische antwort|in dringenden faellen"
    r"|keinen zugriff auf (?:meine|mein)|eingeschraenkt erreichbar|bin ab dem|ab dem .{0,20}wieder"
    r"|out of (?:the )?office|annual leave|on leave until|limited access to (?:my )?e-?mail"
    r"|automatic reply|in urgent cases|for urgent matters|will be back on|return on)\b"
)


# -- the reading ----------------------------------------------------------------------------------


def read_reply(text: str, kind: RequestKind, *, today: date, subject: str = "") -> Reading:
    """The answer in ``text`` (the reply with quotes and signature already cut) to a request
    of ``kind``; ``today`` dates "am 3.5." (a past date) and "vor 2 Wochen". When the text
    says nothing, the ``subject`` is read (without our own subject's words)."""
    reading = _read(content_lines(cut_at_marker(text)), kind, today)
    if reading.intent is None and reading.problem in ("empty", "not_understood") and subject:
        remainder = subject_remainder(subject)
        if remainder:
            from_subject = _read([remainder], kind, today)
            if from_subject.intent is not None:
                return from_subject
    return reading


def _read(lines: list[str], kind: RequestKind, today: date) -> Reading:
    if any(_OUT_OF_OFFICE.search(normalize(line)) for line in lines[:MAX_LINES]):
        return Reading(None, problem="automatic")
    found = _read_lines(lines, kind, today)
    if not found.said:
        if found.lines == 0:
            return Reading(None, problem="empty")
        return Reading(None, problem="not_understood")
    return _decide(found, kind)


def _decide(found: _Text, kind: RequestKind) -> Reading:
    allowed = ALLOWED[kind]
    strong = list(dict.fromkeys(s.category for s in found.said if isinstance(s.category, Intent)))
    weak = {s.category for s in found.said if isinstance(s.category, Weak)}
    if Weak.NOT_YET in weak or Weak.KEEP in weak:
        weak.discard(Weak.NO)  # "nein, noch nicht", "nein, nicht aufhören": the no agrees
    weak_meanings = {m for w in weak if (m := _WEAK_MEANS[w].get(kind)) is not None}
    fitting = [i for i in strong if i in allowed]
    if (
        Intent.MET in fitting
        and len(fitting) > 1
        and (kind is RequestKind.DECISION or Intent.STOP in fitting)
    ):
        fitting.remove(Intent.MET)  # "getroffen, aber wir möchten aufhören": the wish counts
    if Intent.HELP in fitting:
        fitting = [Intent.HELP]  # whatever else they say, the office calls them
    if fitting == [Intent.MET] and kind is RequestKind.DECISION and weak - {Weak.MEETING}:
        fitting = []  # "Ja, unbedingt. Das erste Treffen war super.": the yes decides
    weak_only = not fitting
    if not fitting and strong:
        negative = {w for w in weak if w in (Weak.NO, Weak.NOT_YET)}
        fallback = {
            m for w in negative if (m := _WEAK_MEANS[w].get(kind)) is not None and m in allowed
        }
        if len(fallback) == 1:  # "Im Moment nicht, vielleicht im Frühjahr": the no counts
            strong, weak_only = [], True
    if fitting:
        if len(fitting) > 1:
            return Reading(None, problem="ambiguous")
        intent = fitting[0]
        weak.discard(Weak.YES)  # "ja, beenden": the yes affirms the answer beside it
        if any(
            is_destructive(m, kind) and m != intent
            for w in weak
            if (m := _WEAK_MEANS[w].get(kind)) is not None
        ):
            return Reading(None, problem="ambiguous")  # "nein, weitermachen"
    elif strong:
        return Reading(
            None,
            problem="not_allowed" if len(strong) == 1 else "ambiguous",
            found=strong[0] if len(strong) == 1 else None,
        )
    else:
        if len(weak_meanings) > 1:
            return Reading(None, problem="ambiguous")
        if not weak_meanings:
            return Reading(None, problem="not_understood")
        intent = weak_meanings.pop()
        if intent not in allowed:
            return Reading(None, problem="not_allowed", found=intent)
    if found.conditional and not is_destructive(intent, kind):
        return Reading(None, problem="ambiguous")  # "ja, aber nur wenn …": not known yet
    if weak_only and any(x.unsure for x in found.said) and not is_destructive(intent, kind):
        return Reading(None, problem="ambiguous")  # "grundsätzlich ja, aber …"
    if weak_only and found.future and intent in (Intent.MET, Intent.PHASE_DONE):
        if intent is Intent.MET:
            return Reading(None, problem="ambiguous")  # "ja, nächste Woche": not yet met
        found.unsure = True  # "ja, ab nächster Woche": asked back
    unsure = is_destructive(intent, kind) and (
        found.unsure
        or found.conditional
        or not found.plain
        or any(s.unsure or s.fuzzy for s in found.said if _means(s, kind) is intent)
    )
    return Reading(intent, details=_details(intent, found.facts), unsure=unsure)


def _means(said: _Said, kind: RequestKind) -> Intent | None:
    if isinstance(said.category, Intent):
        return said.category
    return _WEAK_MEANS[said.category].get(kind)


def _details(intent: Intent, facts: Facts) -> AnswerDetails:
    if intent is Intent.MET:
        return AnswerDetails(met_on=facts.met_on)
    if intent is Intent.SNOOZE:
        return AnswerDetails(snooze_weeks=facts.snooze_weeks)
    return AnswerDetails()


# -- the subject line ------------------------------------------------------------------------------

_REPLY_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|wg|fw|fwd|antw|antwort|sv|vs|odp|rv|r|ynt|ответ)\s*(?:\[\d{1,3}\])?\s*:)+",
    re.IGNORECASE,
)
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
_SUBJECT_BLOCK = re.compile(r"\{% block subject %\}(.*?)\{% endblock %\}", re.DOTALL)


@lru_cache(maxsize=1)
def _our_subject_fragments() -> tuple[str, ...]:
    """The fixed words of every subject we send, normalised, longest first."""
    from tandem.mail import TEMPLATES_DIR

    fragments: set[str] = set()
    for path in TEMPLATES_DIR.glob("*/*.txt.j2"):
        match = _SUBJECT_BLOCK.search(path.read_text(encoding="utf-8"))
        if match is None:
            continue
        for piece in _TEMPLATE_TAG.split(match.group(1)):
            piece = normalize(piece).strip(' :\u201e\u201c"-\u2013')
            if len(piece) >= 4:
                fragments.add(piece)
    return tuple(sorted(fragments, key=len, reverse=True))


def subject_remainder(subject: str) -> str:
    """What someone wrote into the subject: reply prefixes and our own subject removed."""
    text = normalize(_REPLY_PREFIX.sub("", subject[:_MAX_SUBJECT_CHARS]))
    for fragment in _our_subject_fragments():
        text = text.replace(fragment, " ")
    return " ".join(text.split())
