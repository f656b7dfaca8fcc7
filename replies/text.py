"""The words someone wrote on top of a reply: body part chosen, HTML reduced to what a reader
sees, then quotes, our "reply above this line" marker and signatures cut (``replies.quotes``).

HTML-only mail is flattened to text first: invisible elements (``display:none``,
``visibility:hidden``, ``hidden``, ``aria-hidden``, ``mso-hide:all``, zero font size, height
or opacity, ``<style>``, ``<script>``, ``<head>``, ``<template>``, comments) and quoted parts
(``<blockquote>``, Gmail's ``gmail_quote``, Yahoo's ``yahoo_quoted``, Thunderbird's
``moz-cite-prefix``) are dropped, and everything after Outlook's reply header
(``divRplyFwdMsg``, its top-bordered header div) is left out. Parsing is linear; input is capped.
"""

from __future__ import annotations

from collections import Counter
from email.message import EmailMessage
from html.parser import HTMLParser

from replies.quotes import MAX_TEXT_CHARS, reply_top

#: HTML is mostly markup and style: more of it is read than of plain text (parsing is linear).
MAX_HTML_CHARS = 256_000
#: Elements read of an HTML mail at most (its top is what counts; each costs some microseconds).
MAX_HTML_TAGS = 10_000


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
    if part.get_content_subtype() == "html":
        return html_to_text(content[:MAX_HTML_CHARS])
    return content[:MAX_TEXT_CHARS]


def reply_text(text: str) -> str:
    """What the sender wrote above the quoted original (or below it, when nothing stands
    above), without signature."""
    return reply_top(text)


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
_SKIPPED = frozenset(
    ("blockquote", "style", "script", "head", "title", "template", "noscript", "svg", "object")
)
#: Classes of quoted originals and signatures (Gmail, Yahoo, Thunderbird, Proton, Apple, …).
_QUOTE_CLASSES = (
    "gmail_quote",
    "gmail_signature",
    "yahoo_quoted",
    "moz-cite-prefix",
    "moz-forward-container",
    "moz-signature",
    "protonmail_quote",
    "protonmail_signature_block",
    "applemail-quote",
    "ms-outlook-mobile-reference-message",
)
#: Ids from which on everything is the quoted original (Outlook, Outlook on the web).
_STOP_IDS = (
    "divrplyfwdmsg",
    "x_divrplyfwdmsg",
    "appendonsend",
    "x_appendonsend",
    "mail-editor-reference-message-container",
    "stopspelling",
    "ms-outlook-mobile-signature",
)
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


def _style(value: str) -> dict[str, str]:
    """A style attribute's declarations, names and values without spaces."""
    declarations: dict[str, str] = {}
    for item in value[:2_000].split(";"):
        name, _, val = item.partition(":")
        declarations[name.strip()] = "".join(val.split()).removesuffix("!important")
    return declarations


def _is_zero(value: str) -> bool:
    """Whether a CSS length or number is zero: "0", "0px", "0.0pt", "0%"."""
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz%")
    try:
        return float(number) == 0
    except ValueError:
        return False


def _hidden(values: dict[str, str], css: dict[str, str]) -> bool:
    """Whether an element is not seen by a reader of the mail."""
    if "hidden" in values or values.get("aria-hidden") == "true":
        return True
    if not css:
        return False
    if css.get("display") == "none" or css.get("visibility") in ("hidden", "collapse"):
        return True
    if css.get("mso-hide") == "all" or _is_zero(css.get("opacity", "1")):
        return True
    if css.get("color") == "transparent":
        return True
    if _is_zero(css.get("font-size", "1")) or _is_zero(css.get("max-height", "1")):
        return True
    clipped = _is_zero(css.get("height", "1")) or _is_zero(css.get("width", "1"))
    return css.get("overflow") == "hidden" and clipped


def _starts_original(tag: str, values: dict[str, str], css: dict[str, str]) -> bool:
    """Outlook's reply header: ids, or a div with a top border and no other border."""
    if values.get("id", "") in _STOP_IDS:
        return True
    if tag != "div" or not css:
        return False
    return css.get("border-top", "").startswith("solid") and css.get("border") in (None, "none")


class _Flattener(HTMLParser):
    """Text of an HTML mail without its quoted or invisible parts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0  # > 0 while inside a quoted or invisible element
        self.stack: list[tuple[str, bool]] = []  # open elements: (tag, starts a skipped part)
        self.open: Counter[str] = Counter()  # how many of each tag are open (a linear lookup)
        self.stopped = False
        self.tags = 0

    def _pop(self) -> str:
        tag, skipped = self.stack.pop()
        self.skip_depth -= skipped
        self.open[tag] -= 1
        return tag

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        self.tags += 1
        if self.tags > MAX_HTML_TAGS:
            self.stopped = True  # the top of the mail is what counts
            return
        values = {k: (v or "").lower() for k, v in attrs[:50]}
        css = _style(values["style"]) if "style" in values else {}
        if _starts_original(tag, values, css) and self.skip_depth == 0:
            self.stopped = True  # Outlook: everything from here on is the quoted original
            return
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag in _VOID:
            return
        if tag in _BLOCKS and self.stack and self.stack[-1][0] == "p":
            self._pop()  # a block closes an open paragraph
        classes = values.get("class", "").split()[:20]
        skipped = tag in _SKIPPED or any(c.startswith(_QUOTE_CLASSES) for c in classes)
        skipped = skipped or values.get("data-marker", "") == "__quoted_text__"
        skipped = skipped or _hidden(values, css)
        self.stack.append((tag, skipped))
        self.open[tag] += 1
        if skipped:
            self.skip_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.stopped or tag in _VOID or self.open[tag] <= 0:
            return
        while self.stack and self._pop() != tag:
            pass  # HTML mail leaves elements open: close up to the matching one
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.stopped and self.skip_depth == 0:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """What a reader of an HTML mail sees of it, quoted parts left out, as lines of text."""
    parser = _Flattener()
    try:
        for start in range(0, len(html), 16_384):
            parser.feed(html[start : start + 16_384])
            if parser.stopped:
                break
        parser.close()
    except (AssertionError, ValueError):
        pass  # what was read so far is the top of the mail, which is what counts
    text = "".join(parser.parts).replace("\xa0", " ")
    lines: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if line or (lines and lines[-1]):  # at most one empty line in a row
            lines.append(line)
    return "\n".join(lines).strip()
