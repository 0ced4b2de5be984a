"""Search: accents, hashtags first, deleted posts never, and a rebuild that never empties results."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nightshift.posts.optimize import optimize_search_index
from nightshift.posts.reindex import reindex_search
from nightshift.posts.search import search_posts
from tests.integration.posts.conftest import Content

pytestmark = pytest.mark.integration


def _search(sessions: sessionmaker[Session], query: str) -> list[int]:
    with sessions() as session:
        return [hit.post_id for hit in search_posts(session, query)]


def _documents(content: Content) -> list[tuple[object, ...]]:
    return content.table("SELECT post_id, config, document::text FROM search_documents ORDER BY post_id")


def test_accents_languages_hashtags_first_and_deleted_posts(content: Content, sessions: sessionmaker[Session]) -> None:
    french = content.post("J'ai bu un café près de la gare", language="fr", index=True)
    english = content.post("Best café in town, honestly", language="en", index=True)
    unknown = content.post("CAFÉ!!!", index=True)
    tagged = content.post("Morning ritual #café", language="en", index=True)
    content.post("Tea only, thank you", language="en", index=True)

    found = _search(sessions, "cafe")
    assert found[0] == tagged  # the hashtag match ranks first
    assert sorted(found) == sorted([french, english, unknown, tagged])
    assert _search(sessions, "Café") == found
    assert _search(sessions, "#cafe")[0] == tagged
    assert _search(sessions, '"best cafe"') == [english]  # a phrase
    assert _search(sessions, "gares") == [french]  # French stemming
    assert _search(sessions, "honest") == [english]  # English stemming

    with content.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM posts WHERE id IN (%(a)s, %(b)s)", {"a": tagged, "b": english})
    assert sorted(_search(sessions, "cafe")) == sorted([french, unknown])


def test_older_matches_come_from_the_index_and_rank_with_the_recent_ones(
    content: Content, sessions: sessionmaker[Session]
) -> None:
    tagged = content.post("Old ritual #café", language="en", index=True)
    old = content.post("An old café near the station", language="en", index=True)
    deleted = content.post("A café that closed", language="fr", index=True)
    recent = [content.post(f"Recent café number {n}", language="en", index=True) for n in range(4)]
    content.post("Recent tea", language="en", index=True)
    with content.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM posts WHERE id = %(p)s", {"p": deleted})

    def search(**options: int) -> list[int]:
        with sessions() as session:
            return [hit.post_id for hit in search_posts(session, "cafe", **options)]

    everything = search()  # every document is in the recent tier
    only_index = search(recent=1)  # one recent document, the matches come from the GIN index
    capped = search(recent=2, candidates=3, limit=3)  # the newest match from the recent tier, two from the index

    assert everything == only_index == [tagged, *reversed(recent), old]
    assert len(set(capped)) == 3 and recent[-1] in capped and set(capped) <= set(everything)
    with pytest.raises(ValueError, match="recent"):
        search(recent=0)


def test_reindex_swaps_in_an_identical_index_and_is_idempotent(
    content: Content, sessions: sessionmaker[Session]
) -> None:
    posts = [
        content.post(f"post {n} about #topic{n % 3} and cafés", language=("en", "fr", None)[n % 3], index=True)
        for n in range(30)
    ]
    incremental = _documents(content)

    first = reindex_search(sessions, batch_size=7)
    rebuilt = _documents(content)
    second = reindex_search(sessions, batch_size=7)

    assert (first.status, first.documents, first.batches) == ("done", 30, 5)
    assert (second.status, second.documents) == ("done", 30)
    assert rebuilt == incremental == _documents(content)
    assert content.table("SELECT to_regclass('search_documents_rebuild')") == [(None,)]
    assert sorted(_search(sessions, "topic1")) == sorted(posts[1::3])
    # The swapped-in table keeps the live table's constraints: deleting a post still removes its document.
    with content.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM posts WHERE id = %(p)s", {"p": posts[1]})
    assert posts[1] not in _search(sessions, "topic1")
    assert content.table("SELECT count(*) FROM search_documents") == [(29,)]


def test_an_interrupted_reindex_resumes_where_it_stopped(content: Content, sessions: sessionmaker[Session]) -> None:
    for n in range(25):
        content.post(f"resumable {n}", index=True)
    before = _documents(content)

    paused = reindex_search(sessions, batch_size=10, max_batches=2)
    late = content.post("resumable late #newcomer", index=True)  # indexed live while the rebuild waits
    resumed = reindex_search(sessions, batch_size=10)

    assert (paused.status, paused.batches) == ("paused", 2)
    assert (resumed.status, resumed.resumed, resumed.batches, resumed.run_id) == ("done", True, 1, paused.run_id)
    assert _documents(content) == sorted(
        [
            *before,
            *content.table("SELECT post_id, config, document::text FROM search_documents WHERE post_id = :p", p=late),
        ]
    )
    assert _search(sessions, "newcomer") == [late]


def test_searches_during_a_reindex_never_come_back_empty(content: Content, sessions: sessionmaker[Session]) -> None:
    for n in range(300):
        content.post(f"always findable number {n}", index=True)
    results: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def searcher() -> None:
        while not done.is_set():
            try:
                results.append(len(_search(sessions, "findable")))
            except BaseException as error:
                errors.append(error)

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        for _ in range(3):
            assert reindex_search(sessions, batch_size=25).status == "done"
    finally:
        done.set()
        thread.join()

    assert errors == []
    assert len(results) > 10
    assert set(results) == {20}


def test_optimize_records_what_it_did_and_reindexes_only_when_bloated(
    content: Content, sessions: sessionmaker[Session]
) -> None:
    for n in range(400):
        content.post(f"words {n} " + " ".join(f"w{n * 7 + k}" for k in range(30)), index=True)

    fresh = optimize_search_index(sessions, min_bytes=0)  # no baseline yet: this size becomes it
    again = optimize_search_index(sessions, min_bytes=0)
    with content.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM posts WHERE mod(id, 10) <> 0")  # 90 % of the documents go
    bloated = optimize_search_index(sessions, min_bytes=0)
    after = optimize_search_index(sessions, min_bytes=0)

    assert (fresh.documents, fresh.reindexed, fresh.bloat) == (400, False, None)
    assert not again.reindexed and again.bloat == pytest.approx(1.0, abs=0.05)
    assert bloated.documents == 40 and bloated.reindexed and bloated.bloat is not None and bloated.bloat > 1.5
    assert bloated.index_bytes_after < bloated.index_bytes_before
    assert not after.reindexed and after.bloat == pytest.approx(1.0, abs=0.2)
    runs = content.table("SELECT details->>'reindexed' FROM search_maintenance WHERE kind = 'optimize' ORDER BY id")
    assert runs == [("false",), ("false",), ("true",), ("false",)]
    assert len(_search(sessions, "w70")) == 1  # post 10 survives and is still found
