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
    #: "treffen", "meet", "Kontakt": no answer by itself, but "noch nicht getroffen" is.
    MEETING = "meeting"


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
        "schwer zu sagen",
        "hard to say",
        "kann ich noch nicht sagen",
        "can't say yet",
        "noch offen",
        "weiss es noch nicht",
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
        "treffen war",
        "troffen",
        "ham uns troffen",
        "haben uns ausgetauscht",
        "ausgetauscht",
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
        "mich anrufen",
        "mich mal anrufen",
        "mich bitte anrufen",
        "mich zurueckrufen",
        "mich bitte zurueckrufen",
        "zurueckrufen",
        "mich kontaktieren",
        "me a call",
        "contact me",
        "ring me",
        "telefonieren wir",
        "koennen wir telefonieren",
        "nachhaken",
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
        "steige aus",
        "steigen aus",
        "take me off",
        "remove me",
        "abmelden",
        "melde mich ab",
        "nehmen sie mich aus",
        "aus dem programm nehmen",
        "opt out",
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
        "wieso nicht",
        "warum nicht",
        "why not",
        "don't see why not",
        "dont see why not",
        "nichts dagegen",
        "spricht nichts dagegen",
        "no objection",
        "no objections",
        "das geht",
        "geht klar",
        "geht in ordnung",
        "klappt",
        "das klappt",
        "bin dabei",
        "sind dabei",
        "i'm in",
        "count me in",
        "basst",
        "passt schon",
        "alles klar",
        "freilich",
        "gladly",
        "with pleasure",
        "welcome",
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
        "im moment nicht",
        "gerade nicht",
        "derzeit nicht",
        "momentan nicht",
        "zurzeit nicht",
        "not right now",
        "not at the moment",
        "not now",
        "not this term",
        "geht nicht",
        "geht leider nicht",
        "geht gerade nicht",
        "klappt nicht",
        "klappt leider nicht",
        "won't work",
        "wont work",
        "doesn't work",
        "does not work",
        "funktioniert nicht",
        "not possible",
    ),
    Weak.MEETING: (
        "treffen",
        "meet",
        "kontakt",
        "contact",
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
        "still waiting",
        "warte noch",
        "warten noch",
        "noch warten",
    ),
}

#: German verbs whose particle goes to the end: "Ich höre als Mentor auf", "wir machen
#: trotz allem weiter". particle -> verb forms -> meaning.
SEPARABLE: dict[str, tuple[tuple[str, ...], Category]] = {
    "auf": (("hoere", "hoeren", "hoert", "hoer"), Intent.STOP),
    "aus": (("steige", "steigen", "steigt", "trete", "treten", "tritt"), Intent.STOP),
    "ab": (("breche", "brechen", "bricht", "melde", "melden"), Intent.STOP),
    "weiter": (("mache", "machen", "macht"), Intent.CONTINUE),
    "fort": (("setze", "setzen", "setzt", "fuehre", "fuehren"), Intent.CONTINUE),
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

#: Words that put what a clause says ahead: "ab nächster Woche", "starting Monday".
FUTURE = frozenset(
    ("morgen", "tomorrow", "uebermorgen", "starting", "beginnt", "starts", "los", "bald", "soon")
)

#: Words after which a leading "ja"/"nein" is an answer of its own ("Nein, ich möchte …").
SENTENCE_STARTS = frozenset(
    """
    ich wir es das sie er der die mein meine unser unsere leider danke bitte sorry also
    i we it that this the my our unfortunately thanks thank please you
    """.split()  # noqa: SIM905 - a word list reads better as text
)

#: Words that make what their clause says hypothetical: nothing in it is an answer.
CONDITIONS = frozenset(
    (
        "wenn",
        "falls",
        "sofern",
        "ob",
        "vorausgesetzt",
        "if",
        "unless",
        "whether",
        "provided",
        # still to be settled with someone else
        "abklaeren",
        "klaeren",
        "ruecksprache",
        "abstimmen",
    )
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
        "grundsaetzlich",
        "prinzipiell",
        "principle",
        "fast",
        "almost",
        "nearly",
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
        "partner",
        "partnerin",
        "husband",
        "wife",
        "boyfriend",
        "girlfriend",
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
    schon bereits phase weiterbildung facharzt residency job stelle have has just gerade
    i'd i'm we'd i'll we'll rather auf aus ab fort
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
