"""Quotes, attributions, header blocks and signatures cut from replies, in the languages and
mail clients our mentors and mentees use; HTML reduced to what a reader sees; hostile input
costs milliseconds. The mails are written for these tests in the manner of real ones.
"""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest

from replies.text import body_text, html_to_text, reply_text

MARKER_DE = "-- Bitte oberhalb dieser Zeile antworten --"
MARKER_EN = "-- Please reply above this line --"
ORIGINAL_DE = (
    f"{MARKER_DE}\n\nHallo Jonas,\n\nwie läuft Ihr Tandem? Antworten Sie mit:\n  ja\n  nein\n"
)
ORIGINAL_EN = f"{MARKER_EN}\n\nDear Lea,\n\nhow is your tandem going? Reply with:\n  yes\n  no\n"


def quoted(text: str, prefix: str = "> ") -> str:
    return "\n".join(f"{prefix}{ln}".rstrip() for ln in text.splitlines()) + "\n"


Q_DE = quoted(ORIGINAL_DE)
Q_EN = quoted(ORIGINAL_EN)

# (name, body, the text that must remain)
CASES: list[tuple[str, str, str]] = [
    # -- German: Gmail, Thunderbird, Apple Mail, Outlook, GMX/Web.de ---------------------------
    ("de-gmail", "Ja, gerne\n\nAm Di., 16. Aug. 2016 um 12:52 Uhr schrieb Büro <b@x.de>:\n" + Q_DE,
     "Ja, gerne"),
    ("de-gmail-two-lines", "Ja\n\nBüro <b@x.de> schrieb am Di., 16. Aug. 2016 um\n12:52 Uhr:\n\n"
     + Q_DE, "Ja"),
    ("de-gmail-address-broken", "nein danke\n\nAm Di., 16. Aug. 2016 um 12:52 Uhr schrieb Büro <\n"
     "b@x.de>:\n\n" + Q_DE, "nein danke"),
    ("de-gmail-name-broken", "später\n\nAm Mo., 3. Okt. 2016 um 09:15 Uhr schrieb Tandem\n"
     "Mentoring <mentoring@x.de>:\n" + Q_DE, "später"),
    ("de-thunderbird", "Wir haben uns getroffen.\n\nAm 01.05.2026 um 10:00 schrieb Büro:\n" + Q_DE,
     "Wir haben uns getroffen."),
    ("de-apple", "Hilfe bitte\n\n> Am 01.05.2026 um 10:00 schrieb Büro <b@x.de>:\n>\n" + Q_DE,
     "Hilfe bitte"),
    ("de-no-space-before-address", "Ja\n\nAm 01.05.2026 schrieb Büro<b@x.de>:\n" + Q_DE, "Ja"),
    ("de-noreply-sender", "Danke für die Nachfrage\n\nAm 01.05.2026 um 10:00 schrieb "
     "no-reply@tandem.example:\n" + Q_DE, "Danke für die Nachfrage"),
    ("de-noreply-broken", "Danke für die Nachfrage, alles gut\n\nAm Fr., 1. Mai 2026 um 10:00 "
     "Uhr schrieb Tandem <\nno-reply@tandem.example>:\n\n" + Q_DE,
     "Danke für die Nachfrage, alles gut"),
    ("de-outlook-block", "weiter\n\nVon: Büro <b@x.de>\nGesendet: Freitag, 1. Mai 2026 10:00\n"
     "An: Jonas\nBetreff: Nachfrage\n\n" + ORIGINAL_DE, "weiter"),
    ("de-outlook-bold", "weiter so\n\n*Von:* Büro <b@x.de>\n*Gesendet:* Freitag, 1. Mai 2026\n"
     "*An:* Jonas\n*Betreff:* Nachfrage\n\n" + ORIGINAL_DE, "weiter so"),
    ("de-outlook-underscores", "ja\n________________________________\nVon: Büro <b@x.de>\n"
     "Gesendet: Freitag, 1. Mai 2026 10:00\nAn: Jonas\n" + ORIGINAL_DE, "ja"),
    ("de-ursprungliche", "Ja, machen wir.\n\n-----Ursprüngliche Nachricht-----\nVon: Büro "
     "[mailto:b@x.de]\nGesendet: Freitag, 1. Mai 2026 10:00\nAn: Jonas\nBetreff: Nachfrage\n\n"
     + ORIGINAL_DE, "Ja, machen wir."),
    ("de-ursprungliche-alone", "getroffen\n\n-----Ursprüngliche Nachricht-----\n\nnein\n",
     "getroffen"),
    ("de-original-nachricht", "ja\n\n-------- Original-Nachricht --------\nBetreff: Nachfrage\n"
     "Datum: 2026-05-01\nVon: Büro\n\nnein\n", "ja"),
    ("de-forwarded", "Zur Info\n\n---------- Weitergeleitete Nachricht ---------\nVon: Büro "
     "<b@x.de>\nDatum: Fr., 1. Mai 2026\nBetreff: Nachfrage\n\nStop\n", "Zur Info"),
    ("de-mfg-signature", "Ja, getroffen.\n\nMit freundlichen Grüßen\nDr. Hanna Muster\n"
     "Hilfe-Hotline: 0123 456\n\nAm 01.05.2026 schrieb Büro <b@x.de>:\n" + Q_DE,
     "Ja, getroffen."),
    ("de-viele-gruesse-name", "später\n\nViele Grüße, Anna\nTel. 0123\n", "später"),
    ("de-lg", "Ja passt\nLG\nTom\n", "Ja passt"),
    ("de-iphone", "Ja\n\nVon meinem iPhone gesendet\n\n> Am 01.05.2026 um 10:00 schrieb Büro "
     "<b@x.de>:\n" + Q_DE, "Ja"),
    ("de-gesendet-von-iphone", "nein\n\nGesendet von meinem iPhone\n", "nein"),
    ("de-outlook-android", "ja\n\nGesendet von Outlook für Android<https://aka.ms/x>\n"
     "________________________________\nVon: Büro <b@x.de>\nGesendet: Freitag\nAn: Jonas\n",
     "ja"),
    ("de-sig-dashes", "Stop\n\n-- \nJonas Beispiel\nHilfe für alle e.V.\n", "Stop"),
    ("de-sig-dashes-no-space", "Stop\n--\nJonas\n", "Stop"),
    ("de-marker-unquoted", "Hilfe\n\n" + ORIGINAL_DE, "Hilfe"),
    ("de-marker-quoted-only", "Unentschieden\n\n" + Q_DE, "Unentschieden"),
    ("de-web-de-app", "ja\n\nGesendet mit der WEB.DE Mail App\n\nAm 01.05.26, 10:00 schrieb Büro "
     "<b@x.de>:\n" + Q_DE, "ja"),
    # -- English ------------------------------------------------------------------------------
    ("en-gmail", "yes\n\nOn Tue, Aug 16, 2016 at 12:52 PM Office <o@x.org> wrote:\n" + Q_EN,
     "yes"),
    ("en-gmail-broken", "yes please\n\nOn Tue, Aug 16, 2016 at 12:52 PM Office <\no@x.org> "
     "wrote:\n\n" + Q_EN, "yes please"),
    ("en-gmail-three-lines", "we met\n\nOn Tue, Sep 25, 2012 at 8:59 AM, Tandem Office\n"
     "<office@x.org>\nwrote:\n\n" + Q_EN, "we met"),
    ("en-wrote-no-space", "later\n\nOn Tue, Sep 25, 2012 at 8:59 AM, Office\n<sugar@example.com>"
     "wrote:\n\n" + Q_EN, "later"),
    ("en-apple-comma", "not yet\n\nOn 1 May 2026, at 10:00, Office <o@x.org> wrote:\n\n" + Q_EN,
     "not yet"),
    ("en-iso-date", "Thanks, all fine\n\n2026-05-01 10:00 GMT+02:00 Office <o@x.org>:\n\n" + Q_EN,
     "Thanks, all fine"),
    ("en-outlook-block", "continue\n\nFrom: Office <o@x.org>\nSent: Friday, May 1, 2026 10:00 AM"
     "\nTo: Lea\nSubject: How is it going\n\n" + ORIGINAL_EN, "continue"),
    ("en-outlook-bold-wrapped", "continue\n\n*From:* Office [mailto:\no@x.org]\n*Sent:* Friday, "
     "May 1, 2026\n*To:* Lea\n*Subject:* Check\n\n" + ORIGINAL_EN, "continue"),
    ("en-outlook-date-first", "ok\n\nDate: Fri, 1 May 2026 10:00:00 +0000\nFrom: o@x.org\n"
     "To: lea@x.org\nSubject: Check\n\nno\n", "ok"),
    ("en-headers-one-line", "ok then\n\nDate: Fri, 1 May 2026 From: o@x.org To: Lea Subject: "
     "Check\n\nno\n", "ok then"),
    ("en-original-message", "yes\n\n-----Original Message-----\nFrom: Office\nSent: Friday\n\n"
     "no\n", "yes"),
    ("en-yahoo-original", "yes\n\n\n----- Original Message -----\nFrom: o@x.org\nTo: lea@x.org\n"
     "Sent: Friday, May 1, 2026\nSubject: Check\n\nno\n", "yes"),
    ("en-forwarded", "FYI, we met\n\n---------- Forwarded message ---------\nFrom: Office "
     "<o@x.org>\nDate: Fri, May 1, 2026\nSubject: Check\nTo: Lea\n\nstop\n", "FYI, we met"),
    ("en-begin-forwarded", "see below\n\nBegin forwarded message:\n\nFrom: Office <o@x.org>\n"
     "Subject: Check\n\nstop\n", "see below"),
    ("en-iphone", "yes\n\nSent from my iPhone\n\nOn May 1, 2026, at 10:00, Office <o@x.org> "
     "wrote:\n" + Q_EN, "yes"),
    ("en-get-outlook-ios", "yes\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n"
     "________________________________\nFrom: Office <o@x.org>\nSent: Friday\nTo: Lea\n", "yes"),
    ("en-sig", "we met yesterday\n-- \nLea Example\nNo-Reply Department\n", "we met yesterday"),
    ("en-best-regards", "undecided\n\nBest regards,\nLea\nPhone +49 123\n", "undecided"),
    ("en-kind-regards-slash", "Sounds good!\n\nMed venlig hilsen / Kind regards\n\nTim\nCEO\n",
     "Sounds good!"),
    ("en-regards-name", "help please\n\nRegards, Roman\n", "help please"),
    ("en-samsung", "yes\n\nSent from Samsung Mobile\n", "yes"),
    ("en-reply-and-attribution-share-line", "yes On Wed, Apr 4, 2012 at 3:59 PM, o@x.org wrote:\n"
     "> no\n", "yes"),
    ("en-reply-dashes-attribution", "yes--- On Wed, Apr 4, 2012 at 3:59 PM, o@x.org wrote:\n"
     "> no\n", "yes"),
    ("en-attribution-in-dashes", "met\n\n------On 12/29/2025 17:32 PM, Office wrote-----\n\nno\n",
     "met"),
    ("en-sent-verb", "yes\n\nOn 11-Apr-2026, at 6:54 PM, Office <o@x.org> sent:\n\n> no\n", "yes"),
    ("en-two-quote-levels", "yes\n\nOn Fri, May 1, 2026 at 10:00 AM Office <o@x.org> wrote:\n"
     "> earlier\n>\n> On Thu, Apr 30, 2026 Lea <l@x.org> wrote:\n>> no\n", "yes"),
    # -- French -------------------------------------------------------------------------------
    ("fr-gmail", "Oui, merci\n\nLe lun. 3 oct. 2016 à 10:00, Bureau <b@x.fr> a écrit :\n" + Q_EN,
     "Oui, merci"),
    ("fr-gmail-broken", "Oui\n\nLe lun. 3 oct. 2016 à 10:00, Bureau Tandem <bureau@x.fr\n> a écrit"
     " :\n\n" + Q_EN, "Oui"),
    ("fr-apple", "D'accord\n\nLe 3 oct. 2016 à 10:00, Bureau <b@x.fr> a écrit:\n\nBonjour\n",
     "D'accord"),
    ("fr-outlook", "Oui\n\nDe : Bureau [mailto:b@x.fr]\nEnvoyé : lundi 3 octobre 2016 10:00\n"
     "À : Lea\nObjet : Suivi\n\nnon\n", "Oui"),
    ("fr-cordialement", "Nous nous sommes rencontrés.\n\nCordialement,\nCamille\n",
     "Nous nous sommes rencontrés."),
    ("fr-iphone", "oui\n\nEnvoyé de mon iPhone\n\n> Le 3 oct. 2016 à 10:00, Bureau <b@x.fr> a "
     "écrit :\n" + Q_EN, "oui"),
    # -- Polish -------------------------------------------------------------------------------
    ("pl-w-dniu", "Tak\n\nW dniu 3 października 2016 10:00 użytkownik Biuro <b@x.pl> napisał:\n"
     + Q_EN, "Tak"),
    ("pl-w-dniu-broken", "Tak, dziękuję\n\nW dniu 28 stycznia 2016 01:53 użytkownik Biuro "
     "<b@x.pl>\nnapisał:\n\nnie\n", "Tak, dziękuję"),
    ("pl-pisze", "Tak\n\nW dniu 03.10.2016 o 10:00, Biuro pisze:\n" + Q_EN, "Tak"),
    ("pl-dnia", "Spotkaliśmy się\n\nDnia 14 lip 2016 o godz. 00:25 Biuro <b@x.pl> napisał(a):\n\n"
     + Q_EN, "Spotkaliśmy się"),
    ("pl-outlook", "tak\n\nOd: Biuro <b@x.pl>\nWysłano: poniedziałek, 3 października 2016\n"
     "Do: Lea\nTemat: Pytanie\n\nnie\n", "tak"),
    ("pl-pozdrawiam", "Tak, dalej.\n\nPozdrawiam\nJan Kowalski\n", "Tak, dalej."),
    # -- Russian ------------------------------------------------------------------------------
    ("ru-gmail", "Да\n\nпн, 3 окт. 2016 г. в 10:00, Офис <o@x.ru>:\n" + Q_EN, "Да"),
    ("ru-napisal", "Да, спасибо\n\n3 октября 2016 г., 10:00 пользователь Офис <o@x.ru> написал:\n"
     + Q_EN, "Да, спасибо"),
    ("ru-napisal-a", "Да\n\n03.10.2016 10:00, Офис пишет:\n" + Q_EN, "Да"),
    ("ru-yandex", "Да\n\n03.10.2016, 10:00, \"Офис\" <o@x.ru>:\n" + Q_EN, "Да"),
    ("ru-napisal-brackets", "Встретились\n\nОфис <o@x.ru> написал(а):\n" + Q_EN, "Встретились"),
    ("ru-outlook", "да\n\nОт: Офис <o@x.ru>\nОтправлено: 3 октября 2016 г. 10:00\nКому: Лея\n"
     "Тема: Вопрос\n\nнет\n", "да"),
    ("ru-s-uvazheniem", "Да, продолжаем.\n\nС уважением,\nИван\n", "Да, продолжаем."),
    # -- Turkish ------------------------------------------------------------------------------
    ("tr-gmail", "Evet\n\n3 Eki 2016 Pzt, saat 10:00 tarihinde Ofis <o@x.com.tr> şunu yazdı:\n"
     + Q_EN, "Evet"),
    ("tr-gmail-broken", "Evet\n\n3 Eki 2016 Pzt, saat 10:00 tarihinde Ofis <\no@x.com.tr> şunu "
     "yazdı:\n\n" + Q_EN, "Evet"),
    ("tr-outlook", "evet\n\nKimden: Ofis <o@x.com.tr>\nGönderildi: 3 Ekim 2016 Pazartesi 10:00\n"
     "Kime: Lea\nKonu: Soru\n\nhayır\n", "evet"),
    ("tr-iphone", "evet\n\niPhone'umdan gönderildi\n", "evet"),
    ("tr-saygilarimla", "Görüştük.\n\nSaygılarımla,\nAyşe\n", "Görüştük."),
    # -- Spanish ------------------------------------------------------------------------------
    ("es-gmail", "Sí\n\nEl lun., 3 oct. 2016 a las 10:00, Oficina (<o@x.es>) escribió:\n" + Q_EN,
     "Sí"),
    ("es-gmail-broken", "Sí, gracias\n\nEl mié, 29 jun 2016 a las 11:08, Oficina (<o@exampl\ne.es>)"
     "\nescribió:\n\n" + Q_EN, "Sí, gracias"),
    ("es-outlook", "sí\n\nDe: Oficina <o@x.es>\nEnviado: lunes, 3 de octubre de 2016 10:00\n"
     "Para: Lea\nAsunto: Pregunta\n\nno\n", "sí"),
    ("es-mensaje-original", "Sí\n\n-----Mensaje original-----\nDe: Oficina\nEnviado: lunes\n\nno\n",
     "Sí"),
    ("es-iphone", "sí\n\nEnviado desde mi iPhone\n", "sí"),
    ("es-saludos", "Nos vimos ayer.\n\nSaludos,\nMiguel\n", "Nos vimos ayer."),
    # -- Italian ------------------------------------------------------------------------------
    ("it-gmail", "Sì\n\nIl giorno lun 3 ott 2016 alle ore 10:00 Ufficio <u@x.it> ha scritto:\n"
     + Q_EN, "Sì"),
    ("it-gmail-broken", "Sì, grazie\n\nIl giorno lun 3 ott 2016 alle ore 10:00 Ufficio "
     "<u@x.i=\nt>\nha scritto:\n\n" + Q_EN, "Sì, grazie"),
    ("it-apple", "Sì\n\n> Il 3 ottobre 2016 alle 10.00 Ufficio <u@x.it> ha scritto:\n>\n" + Q_EN,
     "Sì"),
    ("it-outlook", "sì\n\nDa: Ufficio <u@x.it>\nInviato: lunedì 3 ottobre 2016 10:00\nA: Lea\n"
     "Oggetto: Domanda\n\nno\n", "sì"),
    ("it-iphone", "sì\n\nInviato da iPhone\n", "sì"),
    ("it-cordiali-saluti", "Ci siamo visti.\n\nCordiali saluti\nStefano\n", "Ci siamo visti."),
    # -- Dutch --------------------------------------------------------------------------------
    ("nl-schreef", "Ja\n\nOp ma 3 okt. 2016 om 10:00 schreef Kantoor <k@x.nl>:\n" + Q_EN, "Ja"),
    ("nl-het-volgende-geschreven", "Ja hoor\n\nOp 17-feb.-2016, om 13:18 heeft Kantoor <k@x.nl> "
     "het volgende geschreven:\n\nnee\n", "Ja hoor"),
    ("nl-outlook", "ja\n\nVan: Kantoor <k@x.nl>\nVerzonden: maandag 3 oktober 2016 10:00\n"
     "Aan: Lea\nOnderwerp: Vraag\n\nnee\n", "ja"),
    ("nl-iphone", "ja\n\nVerzonden vanaf mijn iPhone\n", "ja"),
    ("nl-groet", "We hebben elkaar gezien.\n\nMet vriendelijke groet,\nJan\n",
     "We hebben elkaar gezien."),
    # -- bottom-posting and inline answers ----------------------------------------------------
    ("bottom-de", "Am 01.05.2026 um 10:00 schrieb Büro <b@x.de>:\n" + Q_DE + "\nJa, weiter.\n",
     "Ja, weiter."),
    ("bottom-en-with-sig", "On Fri, May 1, 2026 at 10:00 AM Office <o@x.org> wrote:\n" + Q_EN
     + "\nyes\n\n-- \nLea\n", "yes"),
    ("bottom-greeting-on-top", "Hallo Büro,\n\nAm 01.05.2026 um 10:00 schrieb Büro <b@x.de>:\n"
     "> Wie läuft es?\n\nGut, wir haben uns getroffen.\n\nViele Grüße\nJonas\n",
     "Hallo Büro,\n\nGut, wir haben uns getroffen."),
    ("bottom-thunderbird", "On 04/02/2026 06:26 PM, Office wrote:\n> question\nmet\n", "met"),
    ("bottom-quote-without-attribution", "> Wie läuft es?\nGut.\n", "Gut."),
    ("bottom-outlook-no-answer", "\n\nVon: Büro <b@x.de>\nGesendet: Freitag\nAn: Jonas\n"
     "Betreff: Frage\n\nja – ich möchte fortsetzen\n", ""),
    ("bottom-attribution-unquoted-original", "Am 01.05.2026 um 10:00 schrieb Büro <b@x.de>:\n\n"
     "Hallo Jonas,\nnein\n", ""),
    ("only-quote", Q_DE, ""),
    ("only-signature", "--\n0123 456\n", ""),
    # -- things that are no quote -------------------------------------------------------------
    ("on-in-sentence", "On Friday we met.\n\nOn the whole it went well.\n",
     "On Friday we met.\n\nOn the whole it went well."),
    ("am-in-sentence", "Am Freitag getroffen.\nAm Montag wieder.\n",
     "Am Freitag getroffen.\nAm Montag wieder."),
    ("wrote-in-sentence", "She wrote back quickly: yes we met\n",
     "She wrote back quickly: yes we met"),
    ("short-wrote-line-is-an-attribution", "ja\n\nTandem Büro schrieb:\n\nnein\n", "ja"),
    ("short-wrote-line-en", "yes\n\nTandem Office wrote:\nno\n", "yes"),
    ("ru-gmail-no-verb-unquoted", "Да\n\nпн, 3 окт. 2016 г. в 10:00, Офис <o@x.ru>:\n\nнет\n",
     "Да"),
    ("de-sign-off-with-more", "ja\n\nHerzliche Grüße aus Berlin\nAnna\nHilfe e.V.\n", "ja"),
    ("de-danke-und-gruesse", "getroffen\n\nDanke und viele Grüße\nTom\n", "getroffen"),
    ("best-is-no-sign-off", "yes\nBest time is Monday\n", "yes\nBest time is Monday"),
    ("sentence-right-above-attribution", "On Friday we met.\nOn Fri, May 1, 2026 Office "
     "<o@x.org> wrote:\n> no\n", "On Friday we met."),
    ("satz-direkt-ueber-attribution", "Am Freitag getroffen.\nAm 01.05.2026 schrieb Büro "
     "<b@x.de>:\n> nein\n", "Am Freitag getroffen."),
    ("dashes-in-sentence", "ja -- das passt so.\n", "ja -- das passt so."),
    ("from-without-block", "From: the office, I guess\nyes\n",
     "From: the office, I guess\nyes"),
    ("own-address", "Meine Adresse ist jonas@x.de\nja\n", "Meine Adresse ist jonas@x.de\nja"),
    ("hyphen-list", "- ja\n- in 3 Wochen\n", "- ja\n- in 3 Wochen"),
    ("danke-is-no-greeting", "Danke, alles gut\n", "Danke, alles gut"),
    ("invisible-characters", "\u200bJa\u00a0gerne\n\nAm 01.05.2026 schrieb Büro <b@x.de>:\n"
     "> nein\n", "Ja\u00a0gerne"),
    ("crlf", "yes\r\n\r\nOn Fri, May 1, 2026 Office <o@x.org> wrote:\r\n> no\r\n", "yes"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_words_on_top_remain(body: str, expected: str) -> None:
    assert reply_text(body) == expected


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 80
    assert len({name for name, _, _ in CASES}) == len(CASES)


QUOTED_WORDS = ("nein", "Stop", "Hilfe", "no", "stop", "help")


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_no_line_of_the_quote_remains(body: str, expected: str) -> None:
    result = reply_text(body)
    for line in result.splitlines():
        assert not line.lstrip().startswith(">")
        assert MARKER_DE not in line and MARKER_EN not in line
        assert "@x." not in line or "@x." in expected


# -- HTML ---------------------------------------------------------------------------------------


def html_mail(html: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "jonas@example.org"
    msg["Subject"] = "AW: Nachfrage"
    msg.set_content(html, subtype="html")
    return msg


HIDDEN = [
    '<div style="display:none">Hilfe</div>',
    '<span style="display: none !important">Hilfe</span>',
    '<p style="visibility:hidden">Hilfe</p>',
    "<div hidden>Hilfe</div>",
    '<div aria-hidden="true">Hilfe</div>',
    '<span style="mso-hide:all">Hilfe</span>',
    '<span style="font-size:0">Hilfe</span>',
    '<span style="font-size:0px;line-height:0">Hilfe</span>',
    '<div style="max-height:0;overflow:hidden">Hilfe</div>',
    '<div style="height:0;overflow:hidden">Hilfe</div>',
    '<div style="opacity:0">Hilfe</div>',
    '<div style="OPACITY: 0.0">Hilfe</div>',
    "<style>.x:before{content:'Hilfe'}</style>",
    "<script>var a = 'Hilfe';</script>",
    "<template><p>Hilfe</p></template>",
    "<!-- Hilfe -->",
    "<!--[if mso]><p>Hilfe</p><![endif]-->",
    '<blockquote type="cite">Hilfe</blockquote>',
    '<div class="gmail_quote">Am Fr. schrieb Büro:<blockquote>Hilfe</blockquote></div>',
    '<div class="yahoo_quoted">Hilfe</div>',
    '<div class="moz-cite-prefix">Am 01.05.2026 schrieb Büro:</div><blockquote>Hilfe</blockquote>',
    '<div id="divRplyFwdMsg"><b>Von:</b> Büro<br>Hilfe</div><p>Hilfe</p>',
    '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
    "<p><b>Von:</b> Büro</p></div><p>Hilfe</p>",
    '<hr id="stopSpelling">Hilfe',
]


@pytest.mark.parametrize("hidden", HIDDEN)
def test_html_hidden_and_quoted_text_is_not_read(hidden: str) -> None:
    html = (
        "<html><head><title>Hilfe</title></head>"
        f"<body><p>Danke, alles gut</p>{hidden}</body></html>"
    )
    text = reply_text(body_text(html_mail(html)))
    assert text == "Danke, alles gut"
    assert "Hilfe" not in html_to_text(html)


CLIENT_HTML = {
    "gmail": '<div dir="ltr">Danke, alles gut</div><br><div class="gmail_quote '
    'gmail_quote_container"><div dir="ltr" class="gmail_attr">Am Fr., 1. Mai 2026 um 10:00 Uhr '
    'schrieb Büro &lt;<a href="mailto:no-reply@x.de">no-reply@x.de</a>&gt;:<br></div>'
    '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">Hilfe</blockquote></div>',
    "outlook-desktop": "<html><head><style>p.MsoNormal{margin:0}</style></head><body>"
    "<div class=WordSection1><p class=MsoNormal>Danke, alles gut<o:p></o:p></p>"
    "<p class=MsoNormal><o:p>&nbsp;</o:p></p><div><div style='border:none;border-top:solid "
    "#E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal><b>Von:</b> Büro &lt;b@x.de&gt;"
    "<br><b>Gesendet:</b> Freitag<br><b>An:</b> Jonas<br><b>Betreff:</b> Frage</p></div></div>"
    "<p class=MsoNormal>Hilfe</p></div></body></html>",
    "outlook-web": '<div style="font-family:Calibri">Danke, alles gut</div><div id="appendonsend">'
    '</div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" '
    'dir="ltr"><font face="Calibri"><b>From:</b> Office<br><b>Sent:</b> Friday</font></div>'
    "<div>Hilfe</div>",
    "apple-mail": '<html><body style="word-wrap: break-word;">Danke, alles gut<br><div><br>'
    '<blockquote type="cite"><div>Am 01.05.2026 um 10:00 schrieb Büro &lt;b@x.de&gt;:</div>'
    '<br class="Apple-interchange-newline"><div>Hilfe</div></blockquote></div></body></html>',
    "thunderbird": '<html><body><p>Danke, alles gut<br></p><div class="moz-cite-prefix">Am '
    '01.05.26 um 10:00 schrieb Büro:<br></div><blockquote type="cite">Hilfe</blockquote>'
    "</body></html>",
    "ios-mail": '<html><body dir="auto">Danke, alles gut<br><br><div dir="ltr">Von meinem iPhone '
    'gesendet</div><div dir="ltr"><br><blockquote type="cite">Am 01.05.2026 um 10:00 schrieb '
    'Büro &lt;b@x.de&gt;:<br><br></blockquote></div><blockquote type="cite"><div dir="ltr">'
    "Hilfe</div></blockquote></body></html>",
    "yahoo": '<html><body><div class="ydp1"><div>Danke, alles gut</div></div><div '
    'id="yahoo_quoted_123" class="yahoo_quoted"><div>Am Freitag schrieb Büro:</div><div>Hilfe'
    "</div></div></body></html>",
    "proton": '<div>Danke, alles gut</div><div class="protonmail_quote">On Friday, Office wrote:'
    '<blockquote class="protonmail_quote">Hilfe</blockquote></div>',
    "attribution-in-plain-divs": "<div>Danke, alles gut</div><div>On Fri, May 1, 2026 at 10:00 "
    "AM Office &lt;o@x.org&gt; wrote:</div><div>Hilfe</div>",
    "outlook-header-as-paragraphs": "<p>Danke, alles gut</p><p><b>Von:</b> Büro &lt;b@x.de&gt;"
    "<br><b>Gesendet:</b> Freitag<br><b>An:</b> Jonas<br><b>Betreff:</b> Frage</p><p>Hilfe</p>",
}


@pytest.mark.parametrize("html", CLIENT_HTML.values(), ids=CLIENT_HTML.keys())
def test_html_of_mail_clients_gives_the_words_on_top(html: str) -> None:
    assert reply_text(body_text(html_mail(html))) == "Danke, alles gut"


def test_html_hidden_text_before_the_visible_answer() -> None:
    html = (
        '<div style="display:none;max-height:0">Hilfe Hilfe Hilfe</div>'
        '<div dir="ltr">Danke, alles gut<br></div>'
        '<div class="gmail_quote"><div>Am Fr., 1. Mai 2026 um 10:00 Uhr schrieb Büro '
        '&lt;b@x.de&gt;:</div><blockquote class="gmail_quote">Hilfe</blockquote></div>'
    )
    assert reply_text(body_text(html_mail(html))) == "Danke, alles gut"


def test_html_visible_text_keeps_its_lines() -> None:
    html = "<div>Ja,</div><div>wir haben uns getroffen.</div><p style='font-size:0.8em'>Jonas</p>"
    lines = [ln for ln in html_to_text(html).splitlines() if ln]
    assert lines == ["Ja,", "wir haben uns getroffen.", "Jonas"]


def test_html_outlook_header_paragraph_is_cut_as_text() -> None:
    html = (
        "<p>weiter</p><p><b>Von:</b> Büro &lt;b@x.de&gt;<br><b>Gesendet:</b> Freitag<br>"
        "<b>An:</b> Jonas<br><b>Betreff:</b> Frage</p><p>Stop</p>"
    )
    assert reply_text(html_to_text(html)) == "weiter"


def test_html_hotmail_quote_as_text_is_cut() -> None:
    html = "<div>Hello<br><br>&gt; Subject: Test<br>&gt; From: o@x.org<br>&gt; stop</div>"
    assert reply_text(html_to_text(html)) == "Hello"


# -- hostile input: bounded work ------------------------------------------------------------------

PATHOLOGICAL = {
    "space-line": "a" + " " * 40_000 + "b",
    "space-line-then-colon": "Am" + " " * 40_000 + "schrieb:",
    "short-lines": "a\n" * 100_000,
    "empty-lines": "\n" * 100_000,
    "quote-lines": "> x\n" * 100_000,
    "space-lines": (" " * 199 + "\n") * 5_000,
    "header-lines": "From: a@b\n" * 50_000,
    "attribution-like": ("On 1 2 3 " * 5_000 + "wrote:\n") * 20,
    "dashes": "-" * 100_000,
    "at-signs": "@" * 100_000 + ":",
    "many-colons": ("x:" * 50_000 + "\n") * 2,
    "greetings": "Hallo\n" * 100_000,
    "long-lines-ending-in-colons": ("x " * 499 + "x:\n") * 2_000,
    "long-dash-lines-ending-in-colons": ("-" * 999 + ":\n") * 2_000,
    "attribution-verbs-everywhere": ("am 1. schrieb " * 70 + ":\n") * 1_000,
    "nested-angles": ("> " * 20_000 + "x\n") * 3,
    "long-quote-marker": "Hi\n" + ">" * 500_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_hostile_text_takes_milliseconds(text: str) -> None:
    began = time.perf_counter()
    reply_text(text)
    assert time.perf_counter() - began < 1.0


HOSTILE_HTML = {
    "unclosed-divs": "<div>" * 50_000 + "Ja",
    "unclosed-spans-hidden": '<span style="display:none">' * 20_000 + "x",
    "closing-without-opening": "</div>" * 50_000 + "Ja",
    "long-style": '<div style="' + "a:b;" * 50_000 + '">Ja</div>',
    "many-attributes": "<div " + " ".join(f"a{i}=x" for i in range(20_000)) + ">Ja</div>",
    "deep-blockquotes": "<blockquote>" * 30_000 + "x" + "</blockquote>" * 30_000 + "Ja",
}


@pytest.mark.parametrize("html", HOSTILE_HTML.values(), ids=HOSTILE_HTML.keys())
def test_hostile_html_takes_well_under_a_second(html: str) -> None:
    began = time.perf_counter()
    reply_text(body_text(html_mail(html)))
    assert time.perf_counter() - began < 1.0
