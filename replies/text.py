"""The words someone wrote on top of a reply: body part chosen, HTML flattened, our own
"reply above this line" marker, quotes and signatures cut.

Quote headers of mail clients ("Am … schrieb …:", "On … wrote:", Outlook's "Von:/Gesendet:"
block) and signatures ("Viele Grüße", "-- ", "Gesendet von meinem iPhone") are found by
``mail-parser-reply``; HTML-only mail is flattened to text first, dropping quoted blocks
(``<blockquote>``, Gmail's ``gmail_quote``) and everything after Outlook's reply header.
Input is capped before the regular expressions see it: they are not linear on hostile text.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

from tandem.reply_grammar import cut_at_marker, is_quoted

#: Only the top of a reply matters; these caps bound the work any mail can cause.
MAX_TEXT_CHARS = 64_000
MAX_LINES = 60
MAX_LINE_CHARS = 200

_PARSER = EmailReplyParser(languages=["de", "en"])
_WROTE_HEADER = re.compile(r"^\s*(?:am|on)\s.*\s(?:schrieb|wrote)\b", re.IGNORECASE | re.DOTALL)


class UndecodableBody(ValueError):
    """The text part cannot be decoded (unknown charset, broken transfer encoding)."""


def body_text(msg: EmailMessage) -> str:
    """The reply's text: its plain part, else its HTML part flattened; '' when it has none.

    Raises ``UndecodableBody`` when the chosen part cannot be decoded.
    """
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError) as err:
        raise UndecodableBody(type(err).__name__) from None
    if not isinstance(content, str):
        return ""
    content = content[:MAX_TEXT_CHARS]
    if part.get_content_subtype() == "html":
        return html_to_text(content)
    return content


def reply_text(text: str) -> str:
    """What the sender wrote above the quoted original, without signature."""
    text = cut_at_marker(text)
    lines = [ln[:MAX_LINE_CHARS] for ln in text.splitlines() if not is_quoted(ln)][:MAX_LINES]
    message = _PARSER.read("\n".join(lines))
    for reply in message.replies:
        if not reply.headers:
            return str(reply.body)
        # The top was empty. Someone who writes below an "Am … schrieb:" line answered below
        # the quote (its ">" lines are gone already); Outlook's header block starts the
        # original instead, which is no answer.
        return str(reply.body) if _WROTE_HEADER.match(reply.headers) else ""
    return ""


# -- HTML --------------------------------------------------------------------------------------

_BLOCKS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "ul",
        "ol",
        "pre",
        "hr",
        "address",
        "section",
        "article",
    ]
)
_SKIPPED = frozenset(("blockquote", "style", "script", "head", "title", "template"))
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-forward-container", "protonmail_quote")
_STOP_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")
_VOID = frozenset(
    [
        "br",
        "hr",
        "img",
        "input",
        "meta",
        "link",
        "area",
        "base",
        "col",
        "embed",
        "source",
        "track",
        "wbr",
    ]
)


class _Flattener(HTMLParser):
    """Text of an HTML mail without its quoted parts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0  # > 0 while inside a quoted or invisible element
        self.stack: list[tuple[str, bool]] = []  # open elements: (tag, starts a skipped part)
        self.stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        values = {k: (v or "").lower() for k, v in attrs}
        if values.get("id", "") in _STOP_IDS:
            self.stopped = True  # Outlook: everything from here on is the quoted original
            return
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag in _VOID:
            return
        skipped = tag in _SKIPPED or any(c in values.get("class", "") for c in _QUOTE_CLASSES)
        skipped = skipped or values.get("data-marker", "") == "__quoted_text__"
        self.stack.append((tag, skipped))
        if skipped:
            self.skip_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.stopped or tag in _VOID or all(t != tag for t, _ in self.stack):
            return
        while self.stack:  # HTML mail leaves elements open: close up to the matching one
            open_tag, skipped = self.stack.pop()
            self.skip_depth -= skipped
            if open_tag == tag:
                break
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.stopped and self.skip_depth == 0:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Flattener()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        pass  # what was read so far is the top of the mail, which is what counts
    text = "".join(parser.parts).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
