"""Hashtag extraction: one tag however a word is cased, composed or widened."""

from __future__ import annotations

import pytest

from nightshift.posts.hashtags import MAX_TAGS_PER_POST, extract_hashtags, normalize_tag


def test_case_accents_composition_and_width_make_one_tag() -> None:
    text = "#café #Café #CAFÉ #cafe\u0301 #ＣＡＦÉ"
    assert extract_hashtags(text) == ["café"]


def test_case_folding_goes_beyond_lowercase() -> None:
    assert extract_hashtags("#Straße #STRASSE") == ["strasse"]
    assert normalize_tag("ΣΊΣΥΦΟΣ") == normalize_tag("σίσυφος")


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("no tags here", []),
        ("#1 and #2024 are numbers, #2024paris is a tag", ["2024paris"]),
        ("mail me: a#b, &#39; entities, ##doubled", []),
        ("#hello, #world! (#nested) #under_score", ["hello", "world", "nested", "under_score"]),
        ("日本語の #東京 と #नमस्ते", ["東京", "नमस्ते"]),
        ("#a" + "b" * 100, []),
    ],
)
def test_what_is_and_is_not_a_hashtag(text: str, tags: list[str]) -> None:
    assert extract_hashtags(text) == tags


def test_at_most_the_first_tags_are_kept_in_order() -> None:
    text = " ".join(f"#tag{n}x" for n in range(MAX_TAGS_PER_POST + 5))
    assert extract_hashtags(text) == [f"tag{n}x" for n in range(MAX_TAGS_PER_POST)]
