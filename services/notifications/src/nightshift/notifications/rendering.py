"""Email templates: Jinja2, one folder per template, one file per locale and part.

``templates/welcome/fr.subject.txt``, ``fr.txt`` and ``fr.html`` are the
French welcome email. HTML parts are autoescaped (a display name is user input);
subject and text parts are plain text and are not. Undefined variables are
errors, not empty strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from nightshift.common import runtime
from nightshift.notifications.errors import TemplateFailed, UnknownTemplate
from nightshift.notifications.mailers.mime import one_line
from nightshift.notifications.settings import NotificationsSettings

#: The templates shipped with the service.
TEMPLATES_DIR = Path(__file__).parent / "templates"
#: The file of the subject; a locale exists for a template when this file does.
SUBJECT_SUFFIX = ".subject.txt"
#: The file of a push notification: its first line is the title, the rest the body.
PUSH_SUFFIX = ".push.txt"


@dataclass(frozen=True)
class RenderedEmail:
    """The parts of one email in one locale."""

    subject: str
    text: str
    html: str
    locale: str


class EmailTemplates:
    """The email templates of a folder, rendered in the best locale available.

    Parameters:
      directory: The templates folder.
      default_locale: Used when a user's locale has no version of a template.
    """

    def __init__(self, directory: str | Path = TEMPLATES_DIR, *, default_locale: str = "en") -> None:
        self.default_locale = default_locale
        self.environment = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        self.locales = _locales_by_template(self.environment.list_templates())
        self.push_locales = _locales_by_template(self.environment.list_templates(), suffix=PUSH_SUFFIX)

    def locale_for(self, name: str, locale: str | None) -> str:
        """The locale *name* is rendered in for a user whose locale is *locale*.

        ``fr``, ``fr-CA`` and ``fr_CA`` all pick the French version; a language
        the template lacks falls back to the default locale.

        Raises:
          UnknownTemplate: No template is called *name*.
          TemplateFailed: Neither the language nor the default locale exists.
        """
        available = self.locales.get(name)
        if not available:
            known = ", ".join(sorted(self.locales)) or "none"
            raise UnknownTemplate(f"unknown email template {name!r} (known: {known})")
        language = (locale or "").replace("_", "-").split("-", 1)[0].lower()
        for candidate in (language, self.default_locale):
            if candidate in available:
                return candidate
        raise TemplateFailed(f"email template {name!r} has no {self.default_locale!r} version")

    def render(self, name: str, locale: str | None, context: Mapping[str, Any]) -> RenderedEmail:
        """Render every part of template *name* for a user whose locale is *locale*.

        Raises:
          UnknownTemplate: No template is called *name*.
          TemplateFailed: The template could not be rendered (its error type and, for
            Jinja errors, its message; never the values it was given).
        """
        chosen = self.locale_for(name, locale)
        variables = {**context, "locale": chosen}
        try:
            subject, text, html = (
                self.environment.get_template(f"{name}/{chosen}{suffix}").render(variables)
                for suffix in (SUBJECT_SUFFIX, ".txt", ".html")
            )
        except TemplateError as error:
            raise TemplateFailed(f"email template {name!r} ({chosen}): {type(error).__name__}: {error}") from None
        except Exception as error:
            raise TemplateFailed(f"email template {name!r} ({chosen}): {type(error).__name__}") from None
        return RenderedEmail(subject=one_line(subject), text=text, html=html, locale=chosen)


@dataclass(frozen=True)
class RenderedPush:
    """A push notification in one locale."""

    title: str
    body: str
    locale: str


def render_push(templates: EmailTemplates, name: str, locale: str | None, context: Mapping[str, Any]) -> RenderedPush:
    """Render push template ``<name>/<locale>.push.txt`` (title on the first line) for *locale*.

    Raises:
      UnknownTemplate: No push version of *name*.
      TemplateFailed: It could not be rendered.
    """
    available = templates.push_locales.get(name)
    if not available:
        raise UnknownTemplate(f"unknown push template {name!r} (known: {', '.join(sorted(templates.push_locales))})")
    language = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    chosen = language if language in available else templates.default_locale
    if chosen not in available:
        raise TemplateFailed(f"push template {name!r} has no {templates.default_locale!r} version")
    try:
        rendered = templates.environment.get_template(f"{name}/{chosen}{PUSH_SUFFIX}").render(
            {**context, "locale": chosen}
        )
    except Exception as error:
        raise TemplateFailed(f"push template {name!r} ({chosen}): {type(error).__name__}") from None
    title, _, body = rendered.strip().partition("\n")
    return RenderedPush(title=one_line(title), body=body.strip(), locale=chosen)


def configured_templates() -> EmailTemplates:
    """The shipped templates with the configured default locale; built once through ``runtime.resource``."""
    return EmailTemplates(default_locale=runtime.service_settings(NotificationsSettings).default_locale)


def _locales_by_template(names: Iterable[str], *, suffix: str = SUBJECT_SUFFIX) -> dict[str, frozenset[str]]:
    locales: defaultdict[str, set[str]] = defaultdict(set)
    for path in names:
        folder, _, file = path.partition("/")
        if file.endswith(suffix) and "/" not in file:
            locales[folder].add(file.removesuffix(suffix))
    return {name: frozenset(found) for name, found in locales.items()}
