"""The words of replies, German and English: what each phrase means, what negates, hedges
or reports, and which words are plain enough to act on a destructive answer. Phrases are
written normalised (lower case, umlauts spelt out: ``spaeter``); a word ending in ``*`` is a
stem (``beend*`` is "beenden", "beende", "beendet").

A new word that people use goes here, with a case in ``tests/corpus/replies.yaml``.
"""

from __future__ import annotations

from enum import StrEnum

from tandem.answers import Intent


class Weak(StrEnum):
    """Words whose meaning depends on the question: "ja" to a nudge means "we met"."""

    YES = "yes"
    NO = "no"
    NOT_YET = "not_yet"
    #: "nicht aufhören", "don't want to stop": to a decision, that is a yes.
    KEEP = "keep"


Category = Intent | Weak

PHRASES: dict[Category, tuple[str, ...]] = {
    Intent.CONTINUE: (
        "weiter",
        "weitermach*",
        "weiterzumachen",
        "machen weiter",
        "mache weiter",
        "macht weiter",
        "fortsetz*",
        "fortzusetzen",
        "setzen fort",
        "setze fort",
        "fortfuehr*",
        "weiterfuehr*",
        "dabei bleiben",
        "bleiben dabei",
        "bleibe dabei",
        "continue",
        "continuing",
        "go on",
        "carry on",
        "keep going",
        "stay in",
    ),
    Intent.DECLINE: (
        "ablehn*",
        "lehne ab",
        "lehnen ab",
        "decline",
        "kein interesse",
        "not interested",
        "andere mentorin",
        "anderen mentor",
        "another mentor",
        "different mentor",
    ),
    Intent.UNDECIDED: (
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
        "nicht sicher",
        "noch nicht sicher",
        "nicht entschieden",
        "noch nicht entschieden",
        "vielleicht",
        "undecided",
        "unsure",
        "not sure",
        "not sure yet",
        "maybe",
        "don't know",
        "dont know",
        "don't know yet",
        "haven't decided",
        "not decided",
    ),
    Intent.MET: (
        "getroffen",
        "met",
        "trafen",
        "telefoniert",
        "gesprochen",
        "geskypt",
        "gezoomt",
        "stattgefunden",
        "kontakt gehabt",
        "hatten kontakt",
        "haben kontakt",
        "kontakt hatten",
        "uns gesehen",
        "kennengelernt",
        "had contact",
        "have been in touch",
        "been in touch",
        "were in touch",
        "talked",
        "spoke",
        "had a call",
        "had a chat",
        "caught up",
        "met up",
    ),
    Intent.SNOOZE: (
        "spaeter",
        "snooze",
        "later",
        "verschieb*",
        "postpone",
        "zu einem spaeteren zeitpunkt",
    ),
    Intent.HELP: (
        "hilfe",
        "help",
        "rueckruf",
        "unterstuetzung",
        "call me",
        "rufen sie mich an",
        "melden sie sich",
        "bitte melden",
        "gespraech mit ihnen",
    ),
    Intent.STOP: (
        "stop",
        "stopp",
        "beend*",
        "aufhoer*",
        "hoeren auf",
        "hoere auf",
        "abbrech*",
        "abzubrechen",
        "brechen ab",
        "breche ab",
        "quit",
        "unsubscribe",
        "austreten",
        "aussteigen",
        "end it",
        "end this",
        "end the tandem",
        "end our tandem",
        "end the mentoring",
        "end the mentorship",
        "stop the tandem",
        "withdraw",
    ),
    Intent.SHADOWING: (
        "hospitation",
        "hospitieren",
        "hospitiere",
        "zu hospitieren",
        "shadowing",
        "shadow",
        "begleiten",
        "mitlaufen",
    ),
    Intent.PHASE_DONE: (
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
        "phase has begun",
        "has begun",
        "have started",
        "hat begonnen",
        "hat angefangen",
        "habe angefangen",
        "habe begonnen",
        "bin gestartet",
    ),
    Weak.YES: (
        "ja",
        "jo",
        "joa",
        "jap",
        "japp",
        "jep",
        "jup",
        "jupp",
        "jawohl",
        "jaja",
        "gerne",
        "gern",
        "klar",
        "na klar",
        "natuerlich",
        "selbstverstaendlich",
        "passt",
        "passt scho",
        "okay",
        "ok",
        "okey",
        "einverstanden",
        "unbedingt",
        "auf jeden fall",
        "sehr gerne",
        "kein problem",
        "kein thema",
        "moeglich",
        "ist moeglich",
        "yes",
        "yep",
        "yup",
        "yeah",
        "yea",
        "ya",
        "sure",
        "of course",
        "absolutely",
        "definitely",
        "certainly",
        "sounds good",
        "happy to",
        "no problem",
        "no worries",
        "possible",
    ),
    Weak.NO: (
        "nein",
        "nee",
        "noe",
        "no",
        "nope",
        "nah",
        "nein danke",
        "no thanks",
        "no thank you",
        "leider nicht",
        "leider nein",
        "eher nicht",
        "lieber nicht",
        "auf keinen fall",
        "keinesfalls",
        "unfortunately not",
        "rather not",
        "not really",
        "no way",
        "definitely not",
    ),
    Weak.NOT_YET: (
        "noch nicht",
        "noch kein",
        "noch keine",
        "noch keinen",
        "bisher nicht",
        "bisher kein",
        "bisher keinen",
        "not yet",
        "not so far",
        "yet to",
    ),
}

#: Words that negate the nearest phrase of their clause.
NEGATORS = frozenset(
    (
        "nicht",
        "nie",
        "niemals",
        "kein",
        "keine",
        "keinen",
        "keinem",
        "keiner",
        "keines",
        "keinesfalls",
        "not",
        "never",
        "no",
        "without",
        "ohne",
    )
)

#: Words that make what their clause says hypothetical: nothing in it is an answer.
CONDITIONS = frozenset(
    ("wenn", "falls", "sofern", "ob", "vorausgesetzt", "if", "unless", "whether", "provided")
)

#: Words that make a clause unsure: a destructive answer in it is asked back.
HEDGES = frozenset(
    (
        "eventuell",
        "evtl",
        "wahrscheinlich",
        "vermutlich",
        "ueberlege",
        "ueberlegen",
        "ueberlegt",
        "eigentlich",
        "irgendwann",
        "demnaechst",
        "bald",
        "wohl",
        "probably",
        "perhaps",
        "possibly",
        "might",
        "considering",
        "thinking",
        "soon",
        "actually",
        "wollte",
        "wollten",
        "sollte",
        "sollten",
        "koennte",
        "koennten",
        "should",
        "could",
        "frage",
        "fragen",
        "wonder",
        "wondering",
    )
)

#: Words that say a clause is about someone else: "meine Freundin will ihr Studium abbrechen".
THIRD_PARTY = frozenset(
    (
        "er",
        "ihr",
        "ihre",
        "ihren",
        "sein",
        "seine",
        "seinen",
        "freundin",
        "freund",
        "kollegin",
        "kollege",
        "kollegen",
        "kommilitonin",
        "kommilitone",
        "schwester",
        "bruder",
        "mutter",
        "vater",
        "tochter",
        "sohn",
        "jemand",
        "patient",
        "patientin",
        "studium",
        "job",
        "stelle",
        "he",
        "she",
        "his",
        "her",
        "they",
        "their",
        "friend",
        "colleague",
        "sister",
        "brother",
        "someone",
        "somebody",
        "studies",
        "degree",
        "residency",
    )
)

#: Conjunctions that start a new clause (negation and conditions stop there).
CLAUSE_BREAKS = frozenset(
    ("aber", "jedoch", "sondern", "allerdings", "und", "oder", "but", "however", "and", "or")
)

#: Words that may stand beside a destructive answer without making it less plain.
PLAIN = frozenset(
    """
    ich wir i we moechte moechten will wollen wuerde wuerden gerne gern bitte hiermit das
    den die dem unser unsere unseren unserem mein meine meinen es dies dieses diesen tandem
    mentoring mentoringtandem mentorship programm program programme teilnahme participation
    leider jetzt nun sofort ab hier ja yes please hereby unfortunately now would like to
    want the our my it this me am is be mich uns mir gleich direkt lieber zeit dann also ok
    okay sehr danke vielen herzlichen thanks thank you fuer alles for everything schade
    sorry bin habe hat haben seit since begonnen angefangen gestartet started begun already
    schon bereits phase weiterbildung facharzt residency job stelle have has just gerade i'd i'm we'd
    i'll we'll rather
    dank
    """.split()  # noqa: SIM905 - a word list reads better as text
)

#: Greetings, thanks and sign-offs: a line that is only one of these says nothing.
GREETINGS = (
    "hallo",
    "hi",
    "hey",
    "moin",
    "servus",
    "gruss gott",
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
    "besten dank",
    "thanks",
    "thank you",
    "many thanks",
    "viele gruesse",
    "liebe gruesse",
    "beste gruesse",
    "herzliche gruesse",
    "mit freundlichen gruessen",
    "mit besten gruessen",
    "freundliche gruesse",
    "schoene gruesse",
    "gruss",
    "gruesse",
    "lg",
    "vg",
    "mfg",
    "best",
    "best regards",
    "best wishes",
    "kind regards",
    "regards",
    "cheers",
)

#: Emoji people answer with, as the word they stand for.
EMOJI = {
    "\U0001f44d": " ja ",  # thumbs up
    "\U0001f44c": " ja ",  # ok hand
    "\u2705": " ja ",  # check mark button
    "\u2714": " ja ",  # heavy check mark
    "\U0001f44e": " nein ",  # thumbs down
    "\u274c": " nein ",  # cross mark
}
