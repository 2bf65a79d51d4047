"""The search index's statements: SQLite FTS5 (`article_search`, a virtual table) or PostgreSQL
tsvectors with GIN indexes. The engine that builds lookups and pages is search.py. Reads go
through the search reads (`db.search_reads`, one call per statement); the entries are
written by search_rebuild, in the transaction of the change that made them.

Every entry carries a sort key: `(publication second) << 32 | article id` for a
published or scheduled article, the bare id for any other. "Live now, newest first" is then
one range of the key walked downwards (`LIVE_FLOOR` up to the current second), which FTS5 does
in its doclists (the rowid is the key) and PostgreSQL in a B-tree, stopping at the LIMIT
however many articles a common word matches; on PostgreSQL a bounded probe of that walk
tells a rare word, which the GIN indexes then find (see PROBE). Drafts and archived articles
are indexed but below the range, so nothing joins the article table to find what is live.
An entry is written again whenever its article's status or publication time changes.

On SQLite an entry's body goes into the column of its visibility (`body_public`,
`body_members`, `body_paid`), so what a reader may match is a set of columns: one column
filter, walked in the doclists, where a visibility token ANDed with the text walked every
entry of that visibility. The titles have an FTS5 table of their own
(`article_search_title`, same keys): title matches rank first and feed the type-ahead, and
in the main table a title-only match of common words would walk every entry that has them
anywhere. Both tables keep column detail only (no positions) and prefix indexes of 2 to 6
letters: a longer prefix is merged from every word it begins before the first row comes
back, which cost 6 ms a query on the bench archive (BENCHMARKS.md).

The language is fixed in the index when migrations run: FTS5's tokenizer (porter for
English) on SQLite, `article_search_vector` / `article_search_query` on PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from app.access.rules import Visibility
from app.core.db import IN_IDS, Query, Reads, ids_param

SEARCH_TABLE = "article_search"
TITLE_TABLE = "article_search_title"
# The visibilities whose bodies are indexed: a `tiers` article's body is not (the index does
# not tell tiers apart), so it is found by its title and public text only.
INDEXED_BODIES = (Visibility.public, Visibility.members, Visibility.paid)
ALL_VISIBILITIES = {v.value for v in INDEXED_BODIES}
KEY_SHIFT = 32
LIVE_FLOOR = 1 << KEY_SHIFT
_ID_MASK = LIVE_FLOOR - 1
_LIVE_STATUSES = ("published", "scheduled")
# SQLite: the body column of each visibility; an unknown one is the strictest (fail closed).
BODY_COLUMNS = {v.value: f"body_{v.value}" for v in INDEXED_BODIES}
_STRICTEST = BODY_COLUMNS[Visibility.paid.value]
PREFIXES = "2 3 4 5 6"
LONGEST_INDEXED_PREFIX = 6
# Statements are composed from our table names, fixed fragments and placeholders (the S608
# exceptions); a reader's words only ever travel as the bound :q.


@dataclass(frozen=True)
class SearchDocument:
    article_id: int
    status: str
    published_at: datetime | None
    visibility: str
    title: str
    public_text: str  # subtitle, teaser, tag and author names: what anyone may match
    body_text: str
    tag_ids: tuple[int, ...] = ()
    author_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Lookup:
    """One search as the index runs it: words (the last maybe a prefix), access, filters."""

    words: tuple[str, ...]
    prefix: bool
    readable: tuple[str, ...]
    tag_id: int | None = None
    author_id: int | None = None
    low: int = LIVE_FLOOR
    high: int = LIVE_FLOOR

    @property
    def everything(self) -> bool:
        return set(self.readable) >= ALL_VISIBILITIES


def second_key(moment: datetime) -> int:
    """Give back the sort key's high part for `moment`: its second, rounded down.

    Keys compare to the second: an article can enter the live range up to a second before
    its time, which the exact live rule of the cards' read (repository.live_cards) then drops.
    """
    return math.floor(moment.timestamp()) << KEY_SHIFT


def sort_key(article_id: int, status: str, published_at: datetime | None) -> int:
    """Give back an entry's sort key (above LIVE_FLOOR only for published and scheduled)."""
    if status not in _LIVE_STATUSES or published_at is None:
        return article_id
    return second_key(published_at) | article_id


def article_id_of(key: int) -> int:
    return key & _ID_MASK


# Per dialect, the statements that write one entry (parameters: entry_params).
INSERT_SQL = {
    "sqlite": [
        f"INSERT INTO {SEARCH_TABLE} (rowid, facets, title, public_text, "  # noqa: S608
        + ", ".join(BODY_COLUMNS.values())
        + ") VALUES (:key, :facets, :title, :public, "
        + ", ".join(f":{column}" for column in BODY_COLUMNS.values())
        + ")",
        f"INSERT INTO {TITLE_TABLE} (rowid, title) VALUES (:key, :title)",  # noqa: S608
    ],
    "postgresql": [
        f"INSERT INTO {SEARCH_TABLE} (article_id, sort_key, visibility, tag_ids, "  # noqa: S608
        "author_ids, title_tsv, public_tsv, full_tsv) VALUES (:id, :key, :visibility, :tags, "
        ":authors, article_search_vector(:title), "
        "article_search_vector(:title || ' ' || :public), "
        "strip(article_search_vector(:title || ' ' || :public || ' ' || :body)))"
    ],
}


def entry_params(doc: SearchDocument) -> dict[str, Any]:
    """Give back the parameters of INSERT_SQL for `doc` (both dialects)."""
    facets = [f"i{doc.article_id}"]
    facets += [f"t{t}" for t in doc.tag_ids] + [f"a{a}" for a in doc.author_ids]
    body_column = BODY_COLUMNS.get(doc.visibility, _STRICTEST)
    bodies = {c: doc.body_text if c == body_column else "" for c in BODY_COLUMNS.values()}
    return {
        **bodies,
        "id": doc.article_id,
        "key": sort_key(doc.article_id, doc.status, doc.published_at),
        "visibility": doc.visibility,
        "facets": " ".join(facets),
        "tags": list(doc.tag_ids),
        "authors": list(doc.author_ids),
        "title": doc.title,
        "public": doc.public_text,
        "body": doc.body_text,
    }


# SQLite: one FTS5 expression per lookup. Every word is quoted, so FTS5 syntax in a query
# (OR, NEAR, *, :, quotes) is plain text here.


def _terms_fts(words: Sequence[str], prefix: bool) -> str:
    quoted = ['"' + word.replace('"', "") + '"' for word in words]
    if prefix and quoted:
        quoted[-1] += "*"
    return " ".join(quoted)


TIERS = ("title", "public", "all")


def fts_expression(lookup: Lookup, tier: str = "all") -> str:
    """Give back the FTS5 MATCH text of `lookup` in the main table: in the title, in the
    public text, or anywhere (the bodies only of the visibilities the reader may read)."""
    terms = _terms_fts(lookup.words, lookup.prefix)
    if tier == "title":
        match = f"title : ({terms})"
    else:
        columns = ["title", "public_text"]
        if tier == "all":
            columns += [BODY_COLUMNS[v] for v in lookup.readable if v in BODY_COLUMNS]
        match = "{" + " ".join(columns) + "} : (" + terms + ")"
    facets = [f'"t{lookup.tag_id}"'] if lookup.tag_id is not None else []
    facets += [f'"a{lookup.author_id}"'] if lookup.author_id is not None else []
    for facet in facets:
        match = f"({match}) AND (facets : {facet})"
    return match


# PostgreSQL: the query text is built from words only (letters and digits), each quoted.


def tsquery_text(words: Sequence[str], prefix: bool) -> str:
    """Give back the to_tsquery text of `words`: all of them, the last maybe as a prefix."""
    quoted = ["'" + word.replace("'", "") + "'" for word in words]
    if prefix and quoted:
        quoted[-1] += ":*"
    return " & ".join(quoted)


def _pg_matches(query: str) -> dict[str, str]:
    return {
        "title": f"title_tsv @@ {query}",
        "public": f"public_tsv @@ {query}",
        "full": f"full_tsv @@ {query}",
        "readable": "visibility = ANY(CAST(:readable AS varchar[]))",
    }


# The walks run on generic plans (core/db/database.SEARCHES): the query is worked out once
# per statement (an InitPlan), not once per row, and it is what the GIN indexes look up.
# Counts are planned for their words, where the query folds to a constant the statistics
# can judge.
_WALK = _pg_matches("(SELECT article_search_query(:q))")
_COUNT = _pg_matches("article_search_query(:q)")


def _pg_filters(lookup: Lookup) -> str:
    where = ""
    if lookup.tag_id is not None:
        where += " AND tag_ids @> ARRAY[CAST(:tag AS integer)]"
    if lookup.author_id is not None:
        where += " AND author_ids @> ARRAY[CAST(:author AS integer)]"
    return where


def _pg_anywhere(lookup: Lookup, m: dict[str, str]) -> str:
    if lookup.everything:
        return m["full"]
    if lookup.readable:
        return f"({m['public']} OR ({m['readable']} AND {m['full']}))"
    return m["public"]


def _pg_tiers(lookup: Lookup) -> list[str]:
    """The relevance tiers as disjoint conditions, best first: in the title, in the public
    text, anywhere else the reader may read (titles are in the public text, and the public
    text in the full text).

    SQLite tries the words whole before the last one as a prefix in each tier; here the
    twelve branches that takes cost more than they save (BENCHMARKS.md), so a tier's
    whole-word and prefix matches come newest first together."""
    q = _WALK
    tiers = [q["title"], f"NOT ({q['title']}) AND {q['public']}"]
    if not lookup.readable:
        return tiers
    # The cheap tests first: an entry's full text is its largest column.
    past = "" if lookup.everything else f"{q['readable']} AND "
    return [*tiers, f"{past}NOT ({q['public']}) AND {q['full']}"]


def _pg_tier(lookup: Lookup, filters: str) -> str:
    """An entry's tier of _pg_tiers as one CASE (NULL: no match), each text tested at most
    once: the full text holds the public text, which holds the title, so most entries fail
    on their first test."""
    q = _WALK
    public = f"CASE WHEN {q['title']} THEN 0 ELSE 1 END"
    if lookup.everything:
        tier = f"CASE WHEN NOT ({q['full']}) THEN NULL WHEN {q['public']} THEN {public} ELSE 2 END"
    else:  # with nothing readable in full, the visibility test is false for every entry
        tier = (
            f"CASE WHEN {q['public']} THEN {public} WHEN {q['readable']} AND {q['full']} THEN 2 END"
        )
    return f"CASE WHEN TRUE{filters} THEN {tier} END" if filters else tier


# PostgreSQL's statistics cannot tell a word in one article from one in a thousand (only
# the most common words have frequencies), so no plan chosen from them is right for both.
# Each tier is walked in stages instead, in one statement: first over the newest PROBE live
# entries in key order (a common word fills the page there), each given its tier once. If
# that fell short, the probe tells how dense a tier is. Sparse (fewer than DENSE matches in
# the probe: a rare word), the GIN indexes find the rest below the probe. Dense (a word in a
# few per cent of the entries that just missed the page), the GIN indexes would fetch and
# sort all its thousands of matches (7 ms a query on the bench archive) where the next
# NEARBY entries in key order hold the few missing; only below those do the GIN indexes
# take over. A LIMIT over UNION ALL runs its branches in order and stops pulling once it has
# its rows, so a page found early never starts the later branches, and a branch whose stage
# does not apply stops at its one-time filter. The tiers and stages are disjoint, so the
# walk is the ranked page with no duplicate. Past the B-tree stages the key is compared as
# `sort_key + 0`, which no index serves: with sequential scans off, the GIN indexes are the
# one way left (the key's B-tree would walk every older entry).
PROBE = 300
DENSE = 5
NEARBY = 1500
_COLUMNS = "sort_key, visibility, tag_ids, author_ids, title_tsv, public_tsv, full_tsv"


def _pg_walk(conditions: Sequence[str], tier: str, filters: str) -> str:
    """The walk of disjoint `conditions`, best first; `tier` gives an entry's condition by
    number as one expression (NULL for none)."""
    live = "sort_key BETWEEN :low AND :high"

    def stage(name: str, where: str, size: int) -> str:
        # The entries' keys and tiers, not their texts: the stages test each text once.
        return (
            f"{name} AS MATERIALIZED (SELECT sort_key, {tier} AS tier FROM "  # noqa: S608
            f"(SELECT {_COLUMNS} FROM {SEARCH_TABLE} WHERE {where} "
            f"ORDER BY sort_key DESC LIMIT {int(size)}) AS {name}_entries)"
        )

    ctes = [
        stage("newest", live, PROBE),
        stage("nearby", f"{live} AND sort_key < (SELECT min(sort_key) FROM newest)", NEARBY),  # noqa: S608
    ]
    branches = []
    for n, condition in enumerate(conditions):
        dense = f"(SELECT count(*) FROM newest WHERE tier = {n}) >= {int(DENSE)}"  # noqa: S608
        # The GIN stage starts below the last entry walked in key order.
        walked_to = (
            f"(SELECT CASE WHEN {dense} THEN (SELECT min(sort_key) FROM nearby) "  # noqa: S608
            "ELSE (SELECT min(sort_key) FROM newest) END)"
        )
        branches += [
            f"(SELECT sort_key FROM newest WHERE tier = {n})",  # noqa: S608
            f"(SELECT sort_key FROM nearby WHERE {dense} AND tier = {n})",  # noqa: S608
            f"(SELECT sort_key FROM {SEARCH_TABLE} WHERE sort_key + 0 BETWEEN :low AND :high "  # noqa: S608
            f"AND sort_key + 0 < {walked_to} AND {condition}{filters} "
            "ORDER BY sort_key + 0 DESC LIMIT :n)",
        ]
    walked = " UNION ALL ".join(branches)
    return f"WITH {', '.join(ctes)} SELECT sort_key FROM ({walked}) AS walked LIMIT :n"  # noqa: S608


def _pg_params(lookup: Lookup) -> dict[str, Any]:
    return {
        "low": lookup.low,
        "high": lookup.high,
        "q": tsquery_text(lookup.words, lookup.prefix),
        "readable": list(lookup.readable),
        "tag": lookup.tag_id,
        "author": lookup.author_id,
    }


# SQLite runs one statement per tier.


def _sqlite_source(lookup: Lookup, tier: str) -> tuple[str, str]:
    # Titles without facet filters come from the title table, where only titles hold words.
    if tier == "title" and lookup.tag_id is None and lookup.author_id is None:
        return TITLE_TABLE, f"title : ({_terms_fts(lookup.words, lookup.prefix)})"
    return SEARCH_TABLE, fts_expression(lookup, tier)


def _sqlite_from(lookup: Lookup, tier: str) -> tuple[str, dict[str, Any]]:
    """The FROM and WHERE of a lookup in one tier, and its parameters."""
    table, q = _sqlite_source(lookup, tier)
    where = f"FROM {table} WHERE {table} MATCH :q AND rowid BETWEEN :low AND :high"  # noqa: S608
    return where, {"low": lookup.low, "high": lookup.high, "q": q}


def _sqlite_variants(lookup: Lookup) -> list[Lookup]:
    # FTS5 reads a prefix of up to six letters from its prefix indexes (PREFIXES), as cheaply
    # as a word. A longer one it merges from every word it begins before the first row comes
    # back, so there the words go whole first, and the prefix only when they fall short.
    if lookup.prefix and len(lookup.words[-1]) > LONGEST_INDEXED_PREFIX:
        return [replace(lookup, prefix=False), lookup]
    return [lookup]


@lru_cache(maxsize=256)
def _query(sql: str, planned_per_call: bool = False) -> Query:
    # A lookup's statement text depends on its shape only (the words are bound): a few dozen.
    return Query.portable(sql, planned_per_call=planned_per_call)


async def _keys(reads: Reads, sql: str, params: dict[str, Any]) -> list[int]:
    return [int(row[0]) for row in await reads.all(_query(sql), params)]


async def _sqlite_newest(reads: Reads, lookup: Lookup, tier: str, limit: int) -> list[int]:
    where, params = _sqlite_from(lookup, tier)
    params["n"] = limit
    return await _keys(reads, f"SELECT rowid {where} ORDER BY rowid DESC LIMIT :n", params)


async def newest(reads: Reads, lookup: Lookup, tier: str, limit: int) -> list[int]:
    """Give back the sort keys of the newest `limit` matches of `lookup` in `tier` ("title",
    or "all": anywhere the reader may match)."""
    if reads.dialect == "sqlite":
        return await _sqlite_newest(reads, lookup, tier, limit)
    condition = _WALK["title"] if tier == "title" else _pg_anywhere(lookup, _WALK)
    filters = _pg_filters(lookup)
    sql = _pg_walk([condition], f"CASE WHEN {condition}{filters} THEN 0 END", filters)
    return await _keys(reads, sql, {**_pg_params(lookup), "n": limit})


async def ranked(reads: Reads, lookup: Lookup, limit: int) -> list[int]:
    """Give back the sort keys of the best `limit` matches: in the title, then in the public
    text, then anywhere the reader may read, newest first within each."""
    if reads.dialect != "sqlite":
        filters = _pg_filters(lookup)
        sql = _pg_walk(_pg_tiers(lookup), _pg_tier(lookup, filters), filters)
        return await _keys(reads, sql, {**_pg_params(lookup), "n": limit})
    found: dict[int, None] = {}
    for tier in TIERS:
        for variant in _sqlite_variants(lookup):
            if len(found) >= limit:
                break
            for key in await _sqlite_newest(reads, variant, tier, limit):
                found.setdefault(key, None)
    return list(found)[:limit]


async def count(reads: Reads, lookup: Lookup, cap: int) -> int:
    """Give back how many entries match `lookup`, counting no further than `cap`."""
    if reads.dialect != "sqlite":
        sql = (
            f"SELECT count(*) FROM (SELECT 1 FROM {SEARCH_TABLE} "  # noqa: S608
            f"WHERE {_pg_anywhere(lookup, _COUNT)}{_pg_filters(lookup)} "
            "AND sort_key BETWEEN :low AND :high LIMIT :cap) AS hits"
        )
        return await _count(
            reads, _query(sql, planned_per_call=True), {**_pg_params(lookup), "cap": cap}
        )
    counted = 0
    for variant in _sqlite_variants(lookup):
        where, params = _sqlite_from(variant, "all")
        sql = f"SELECT count(*) FROM (SELECT 1 {where} LIMIT :cap) AS hits"  # noqa: S608
        counted = await _count(reads, _query(sql), {**params, "cap": cap})
        if counted >= cap:
            break
    return counted


async def _count(reads: Reads, query: Query, params: dict[str, Any]) -> int:
    row = await reads.one(query, params)
    return int(row[0]) if row else 0


async def title_keys(
    reads: Reads, words: Sequence[str], low: int, high: int, limit: int
) -> list[int]:
    """Give back the sort keys of the newest live articles whose title matches `words`, the
    last as a prefix (titles are public for every article)."""
    titled = Lookup(words=tuple(words), prefix=True, readable=(), low=low, high=high)
    return await newest(reads, titled, "title", limit)


_TITLES = Query(
    sqlite=f"SELECT id, slug, title FROM article WHERE id {IN_IDS['sqlite']}",  # noqa: S608
    postgres=f"SELECT id, slug, title FROM article WHERE id {IN_IDS['postgres']}",  # noqa: S608
)


async def titles(reads: Reads, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Give back the slug and title of these articles."""
    if not ids:
        return {}
    rows = await reads.all(_TITLES, {"ids": ids_param(reads.dialect, ids)})
    return {int(row[0]): (row[1], row[2]) for row in rows}


_TAG_ID = Query.portable("SELECT id FROM tag WHERE slug = :slug")


async def tag_id(reads: Reads, slug: str) -> int | None:
    """Give back the id of the tag with this slug."""
    found = await reads.one(_TAG_ID, {"slug": slug})
    return int(found[0]) if found else None
