"""Email templates: per-user language with a fallback, autoescaped HTML, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightshift.notifications.errors import TemplateFailed, UnknownTemplate
from nightshift.notifications.rendering import EmailTemplates

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def templates() -> EmailTemplates:
    return EmailTemplates(default_locale="en")


@pytest.mark.parametrize(
    ("locale", "subject", "greeting", "html_phrase"),
    [
        ("en", "Welcome to Nightshift, Ada!", "Hello Ada,\n", "Your account is ready."),
        ("fr", "Bienvenue sur Nightshift, Ada !", "Bonjour Ada,\n", "Votre compte est prêt."),
    ],
)
def test_welcome_in_each_language(
    templates: EmailTemplates, locale: str, subject: str, greeting: str, html_phrase: str
) -> None:
    rendered = templates.render("welcome", locale, {"display_name": "Ada"})

    assert rendered.locale == locale
    assert rendered.subject == subject
    assert rendered.text.startswith(greeting)
    assert f'<html lang="{locale}">' in rendered.html
    assert html_phrase in rendered.html


@pytest.mark.parametrize(
    ("user_locale", "expected"),
    [("fr-CA", "fr"), ("fr_BE", "fr"), ("FR", "fr"), ("de", "en"), ("", "en"), (None, "en")],
)
def test_locale_falls_back_to_the_language_then_the_default(
    templates: EmailTemplates, user_locale: str | None, expected: str
) -> None:
    assert templates.render("welcome", user_locale, {"display_name": "Ada"}).locale == expected


def test_default_locale_is_configurable() -> None:
    assert EmailTemplates(default_locale="fr").render("welcome", "de", {"display_name": "Ada"}).locale == "fr"


def test_html_escapes_the_display_name_and_text_keeps_it(templates: EmailTemplates) -> None:
    rendered = templates.render("welcome", "en", {"display_name": SCRIPT})

    assert SCRIPT not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert rendered.text.startswith(f"Hello {SCRIPT},")


def test_subject_is_one_line_whatever_the_name(templates: EmailTemplates) -> None:
    rendered = templates.render("welcome", "en", {"display_name": "Ada\r\nBcc: x@example.org"})

    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject


def test_unknown_template_is_permanent_and_named(templates: EmailTemplates) -> None:
    with pytest.raises(
        UnknownTemplate,
        match=(
            r"unknown email template 'farewell' "
            r"\(known: digest, export_ready, gdpr_export_ready, ops_alert, webhook_disabled, welcome\)"
        ),
    ):
        templates.render("farewell", "en", {"display_name": "Ada"})


def test_missing_variable_is_a_template_error(templates: EmailTemplates) -> None:
    with pytest.raises(TemplateFailed, match=r"'welcome' \(en\): UndefinedError: 'display_name' is undefined"):
        templates.render("welcome", "en", {})


def test_template_without_the_default_locale_is_refused(tmp_path: Path) -> None:
    (tmp_path / "digest").mkdir()
    for suffix in (".subject.txt", ".txt", ".html"):
        (tmp_path / "digest" / f"de{suffix}").write_text("Hallo")

    with pytest.raises(TemplateFailed, match="has no 'en' version"):
        EmailTemplates(tmp_path).render("digest", "fr", {})


@pytest.mark.parametrize(
    ("locale", "subject", "phrase"),
    [
        ("en", "Your Nightshift export is ready", "The link works for 72 hours"),
        ("fr", "Votre export Nightshift est prêt", "Le lien fonctionne pendant 72 heures"),
    ],
)
def test_export_ready_carries_the_link_in_each_language(
    templates: EmailTemplates, locale: str, subject: str, phrase: str
) -> None:
    link = "https://files.example.test/exports/7/x.csv.gz?expires=1&signature=ab&filename=a&b"
    context = {
        "display_name": "Ada",
        "ids": {"export_id": 7, "rows": 1200, "link_hours": 72},
        "links": {"download": link},
    }
    rendered = templates.render("export_ready", locale, context)

    assert rendered.subject == subject
    assert link in rendered.text and phrase in rendered.text and "1200" in rendered.text
    assert 'href="https://files.example.test/exports/7/x.csv.gz?expires=1&amp;signature=ab&amp;filename=a&amp;b"' in (
        rendered.html
    )
