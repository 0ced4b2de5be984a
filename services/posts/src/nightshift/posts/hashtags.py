"""Finding a post's hashtags, Unicode-aware.

A hashtag is ``#`` followed by letters, digits, marks or ``_``, containing at
least one letter, and not glued to a preceding word (``a#b`` and ``&#39;`` are
not hashtags). Tags are normalised so that every way of writing one word is one
tag: NFKC (composed accents, full-width letters made plain), then case-folded
(``ß`` → ``ss``, ``É`` → ``é``), then NFKC again (case folding can decompose).
``#café``, ``#Café``, ``#CAFÉ`` and ``#cafe`` + U+0301 are all ``café``.
"""

from __future__ import annotations

import unicodedata

#: Longest tag kept; longer runs are not hashtags (they are noise or abuse).
MAX_TAG_LENGTH = 100

#: Most tags linked to one post; the rest are ignored (hashtag stuffing).
MAX_TAGS_PER_POST = 30


def normalize_tag(tag: str) -> str:
    """*tag* (without ``#``) in its canonical form: NFKC, case-folded, NFKC."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", tag).casefold())


def _is_tag_char(char: str) -> bool:
    return char == "_" or unicodedata.category(char)[0] in "LMN"


def extract_hashtags(text: str) -> list[str]:
    """The distinct normalised hashtags of *text*, in order of first appearance.

    Parameters:
      text: A post's body.

    Returns:
      At most ``MAX_TAGS_PER_POST`` tags, each at most ``MAX_TAG_LENGTH`` characters.
    """
    text = unicodedata.normalize("NFKC", text)
    found: list[str] = []
    seen: set[str] = set()
    index, length = 0, len(text)
    while index < length and len(found) < MAX_TAGS_PER_POST:
        start = text.find("#", index)
        if start < 0:
            break
        end = start + 1
        while end < length and _is_tag_char(text[end]):
            end += 1
        index = max(end, start + 1)
        if start > 0 and (_is_tag_char(text[start - 1]) or text[start - 1] in "&#"):
            continue
        raw = text[start + 1 : end]
        if not raw or len(raw) > MAX_TAG_LENGTH or not any(unicodedata.category(c)[0] == "L" for c in raw):
            continue
        tag = normalize_tag(raw)
        if tag not in seen:
            seen.add(tag)
            found.append(tag)
    return found
