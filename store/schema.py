"""The store's schema, built by named migrations.

A migration is applied once and recorded by name (sqlite-utils' Migrations),
so an old database is brought up to date on open and a new one is built by
the same steps. Never edit an applied migration: add a new one.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("feeds.store")


@migrations(name="0001_items_and_seed_files")
def _items_and_seed_files(db: Database) -> None:
    db.table("items").create(
        {
            "id": str,
            "key": str,  # folded title: identity of a story across forms and files
            "slug": str,
            "title": str,
            "kind": str,
            "section": str,  # label as shown
            "section_slug": str,
            "link": str,
            "canonical_link": str,
            "summary": str,
            "content_html": str,
            "body": str,  # JSON list of paragraphs
            "dateline": str,
            "author": str,
            "published": str,  # RFC 3339, UTC, "Z"
            "updated": str,
            "first_seen": str,
            "content_hash": str,
        },
        pk="id",
        not_null={"key", "slug", "title", "kind", "published", "updated", "first_seen", "content_hash"},
    )
    db.table("items").create_index(["key"])
    db.table("items").create_index(["slug"], unique=True)
    db.table("items").create_index(["canonical_link"])
    db.table("items").create_index(["section_slug", "published"])
    db.table("items").create_index(["published"])
    db.table("origins").create(
        {
            "item_id": str,
            "kind": str,  # "seed" or "source"
            "name": str,
            "url": str,
            "title": str,
            "entry_id": str,
            "first_seen": str,
            "last_seen": str,
        },
        pk=("item_id", "kind", "name"),
        foreign_keys=[("item_id", "items", "id")],
    )
    db.table("origins").create_index(["kind", "name", "entry_id"])
    db.table("seed_files").create(
        {
            "name": str,
            "sha256": str,
            "size": int,
            "items": int,
            "ingested_at": str,
        },
        pk="name",
    )


@migrations(name="0002_sources")
def _sources(db: Database) -> None:
    # What the updater remembers about each remote source between fetches
    # (feeds.model.SourceState); times are RFC 3339 text like the items'.
    db.table("sources").create(
        {
            "name": str,
            "url": str,
            "current_url": str,
            "etag": str,
            "last_modified": str,
            "body_hash": str,
            "last_attempt": str,
            "last_success": str,
            "last_status": int,
            "last_error": str,
            "error_count": int,
            "backoff_until": str,
            "next_due": str,
            "min_interval": float,
            "disabled": int,
            "title": str,
            "warning": str,
            "skip_hours": str,  # JSON list
            "skip_days": str,  # JSON list
        },
        pk="name",
        not_null={"url", "error_count", "disabled"},
        defaults={"error_count": 0, "disabled": 0},
    )
    # Every new remote item claims a unique `updated`, looked up by day.
    db.table("items").create_index(["updated"])


@migrations(name="0003_items_search", transactional=False)
def _items_search(db: Database) -> None:
    # Full-text search over what a reader reads (feeds search, /search.*): an
    # FTS5 index with the items table as its content, kept in step by the
    # insert/update/delete triggers sqlite-utils writes, so every writer and
    # every deletion updates it in the same transaction. remove_diacritics
    # lets "turkiye" find "Türkiye". enable_fts runs a script (which commits),
    # hence a non-transactional migration; replace=True makes a rerun after
    # a crash rebuild the index rather than fail.
    db.table("items").enable_fts(
        ["title", "summary", "body", "content_html"],
        fts_version="FTS5",
        create_triggers=True,
        tokenize="unicode61 remove_diacritics 2",
        replace=True,
    )


@migrations(name="0004_no_updated_index")
def _no_updated_index(db: Database) -> None:
    # Items no longer claim a unique `updated` (times are the source's own),
    # so nothing looks items up by it; the index only cost every write.
    db.execute("DROP INDEX IF EXISTS idx_items_updated")


@migrations(name="0005_source_episodes")
def _source_episodes(db: Database) -> None:
    # Each unbroken run of a source's failures (feeds.model.ErrorEpisode):
    # `feeds status` says since when a source fails, /healthz which fail for
    # longer than their interval, and /feeds/_sources.atom has one entry each.
    # An open episode has no `ended`; at most one per source is open.
    db.table("source_episodes").create(
        {
            "id": int,
            "source": str,
            "started": str,
            "last_failure": str,
            "last_error": str,
            "failures": int,
            "ended": str,
        },
        pk="id",
        not_null={"source", "started", "last_failure", "last_error", "failures"},
    )
    db.table("source_episodes").create_index(["source", "ended"])
    db.table("source_episodes").create_index(["started"])


@migrations(name="0006_archive_sequence")
def _archive_sequence(db: Database) -> None:
    # RFC 5005 archive pages need boundaries that never move: an item takes
    # the next number of each feed it enters ("all" and its section) when it
    # is stored, and keeps it. A page holds a fixed range of numbers, so new
    # items (whatever their dates) only ever fill the newest page, and a
    # deletion leaves a hole instead of shifting every later page. Triggers
    # number every writer's items in the same transaction.
    db.execute(
        """
        CREATE TABLE feed_sequence (
            feed TEXT NOT NULL,
            seq INTEGER NOT NULL,
            item_id TEXT NOT NULL,
            PRIMARY KEY (feed, seq)
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX idx_feed_sequence_item ON feed_sequence (item_id, feed)")
    db.execute(
        """
        CREATE TRIGGER items_sequence_ai AFTER INSERT ON items BEGIN
            INSERT INTO feed_sequence (feed, seq, item_id) VALUES (
                'all', coalesce((SELECT max(seq) FROM feed_sequence WHERE feed = 'all'), 0) + 1, new.id);
            INSERT INTO feed_sequence (feed, seq, item_id)
                SELECT new.section_slug,
                    coalesce((SELECT max(seq) FROM feed_sequence WHERE feed = new.section_slug), 0) + 1,
                    new.id
                WHERE new.section_slug IS NOT NULL;
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER items_sequence_au AFTER UPDATE OF section_slug ON items
        WHEN new.section_slug IS NOT old.section_slug BEGIN
            DELETE FROM feed_sequence WHERE item_id = old.id AND feed = old.section_slug;
            INSERT INTO feed_sequence (feed, seq, item_id)
                SELECT new.section_slug,
                    coalesce((SELECT max(seq) FROM feed_sequence WHERE feed = new.section_slug), 0) + 1,
                    new.id
                WHERE new.section_slug IS NOT NULL;
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER items_sequence_ad AFTER DELETE ON items BEGIN
            DELETE FROM feed_sequence WHERE item_id = old.id;
        END
        """
    )
    # Number a store's existing items in the order they were first stored.
    db.execute(
        "INSERT INTO feed_sequence (feed, seq, item_id)"
        " SELECT 'all', row_number() OVER (ORDER BY first_seen, published, id), id FROM items"
    )
    db.execute(
        "INSERT INTO feed_sequence (feed, seq, item_id)"
        " SELECT section_slug,"
        " row_number() OVER (PARTITION BY section_slug ORDER BY first_seen, published, id), id"
        " FROM items WHERE section_slug IS NOT NULL"
    )


@migrations(name="0007_items_publisher_fields")
def _items_publisher_fields(db: Database) -> None:
    # What remote publishers send beside the story (feeds.model.Item):
    # authors, categories and enclosures are JSON lists, NULL when empty.
    items = db.table("items")
    for column in ("authors", "categories", "enclosures", "image", "comments"):
        items.add_column(column, str)


# Every write that can change a published byte logs the item's slug and
# section; a write that changes nothing a reader sees (a sighting's
# last_seen, a re-stored unchanged item) is not logged.
_CHANGE_TRIGGERS = (
    """CREATE TRIGGER item_changes_insert AFTER INSERT ON items BEGIN
        INSERT INTO item_changes (slug, section_slug) VALUES (new.slug, new.section_slug);
    END""",
    """CREATE TRIGGER item_changes_update AFTER UPDATE ON items
    WHEN old.content_hash IS NOT new.content_hash OR old.published IS NOT new.published
        OR old.updated IS NOT new.updated OR old.section IS NOT new.section
        OR old.section_slug IS NOT new.section_slug OR old.slug IS NOT new.slug
        OR old.link IS NOT new.link OR old.title IS NOT new.title
        OR old.authors IS NOT new.authors OR old.categories IS NOT new.categories
        OR old.enclosures IS NOT new.enclosures OR old.image IS NOT new.image
        OR old.comments IS NOT new.comments
    BEGIN
        INSERT INTO item_changes (slug, section_slug) VALUES (new.slug, new.section_slug);
        INSERT INTO item_changes (slug, section_slug) SELECT old.slug, old.section_slug
            WHERE old.slug IS NOT new.slug OR old.section_slug IS NOT new.section_slug;
    END""",
    """CREATE TRIGGER item_changes_delete AFTER DELETE ON items BEGIN
        INSERT INTO item_changes (slug, section_slug) VALUES (old.slug, old.section_slug);
    END""",
    """CREATE TRIGGER origin_changes_insert AFTER INSERT ON origins BEGIN
        INSERT INTO item_changes (slug, section_slug)
            SELECT slug, section_slug FROM items WHERE id = new.item_id;
    END""",
    """CREATE TRIGGER origin_changes_update AFTER UPDATE ON origins
    WHEN old.name IS NOT new.name OR old.url IS NOT new.url OR old.title IS NOT new.title
        OR old.first_seen IS NOT new.first_seen
    BEGIN
        INSERT INTO item_changes (slug, section_slug)
            SELECT slug, section_slug FROM items WHERE id = new.item_id;
    END""",
)


@migrations(name="0008_publish_changes")
def _publish_changes(db: Database) -> None:
    # What the publisher needs to republish only what changed, whoever wrote
    # it (this process, `feeds refresh` beside a running daemon, a retention
    # sweep): every write that can change a published byte appends the item's
    # slug and section to item_changes, in the writer's own transaction. A
    # consumer remembers the last seq it published.
    db.execute(
        "CREATE TABLE item_changes"
        " (seq INTEGER PRIMARY KEY AUTOINCREMENT, slug TEXT NOT NULL, section_slug TEXT)"
    )
    for trigger in _CHANGE_TRIGGERS:
        db.execute(trigger)
    # When each published file's bytes last changed (its Last-Modified), by
    # path and digest, so a restart keeps the dates of unchanged files.
    db.table("published").create({"path": str, "digest": str, "modified": str}, pk="path")


@migrations(name="0009_search_pending")
def _search_pending(db: Database) -> None:
    # The search index is filled in bulk (store.search.index_pending) rather
    # than by a trigger per inserted row: tokenising 50 items in each of a
    # thousand per-source transactions wrote a new FTS5 segment per commit
    # and merged them again, a fifth of a cold refresh. A written row's rowid
    # waits in search_pending, in the same transaction as the write, until
    # the writer indexes the batch; a search indexes whatever still waits
    # first, so it finds every stored item. A row still waiting was never
    # indexed, so an update or deletion removes old words only from rows
    # that were.
    db.execute("CREATE TABLE search_pending (rowid INTEGER PRIMARY KEY)")
    for name in ("items_ai", "items_au", "items_ad"):
        db.execute(f"DROP TRIGGER IF EXISTS [{name}]")
    db.execute(
        "CREATE TRIGGER items_search_ai AFTER INSERT ON items BEGIN"
        " INSERT OR IGNORE INTO search_pending (rowid) VALUES (new.rowid); END"
    )
    db.execute(
        """
        CREATE TRIGGER items_search_au AFTER UPDATE ON items
        WHEN old.title IS NOT new.title OR old.summary IS NOT new.summary OR old.body IS NOT new.body
            OR old.content_html IS NOT new.content_html OR old.rowid IS NOT new.rowid BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, summary, body, content_html)
                SELECT 'delete', old.rowid, old.title, old.summary, old.body, old.content_html
                WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE rowid = old.rowid);
            INSERT OR IGNORE INTO search_pending (rowid) VALUES (new.rowid);
        END
        """
    )
    db.execute(
        """
        CREATE TRIGGER items_search_ad AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, summary, body, content_html)
                SELECT 'delete', old.rowid, old.title, old.summary, old.body, old.content_html
                WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE rowid = old.rowid);
            DELETE FROM search_pending WHERE rowid = old.rowid;
        END
        """
    )


@migrations(name="0010_retention")
def _retention(db: Database) -> None:
    # [store] keep deletes old items, except those their source's feed still
    # carries: source_documents holds the entry keys of each source's last
    # fetched document (replaced on every fetch that parsed one; a 304 keeps
    # it). Each deleted item leaves a tombstone, kept for keep_tombstones, so
    # the Atom feeds it was in can say it is gone (RFC 6721). `feeds` is a
    # JSON list: "all" and the item's section.
    db.execute(
        "CREATE TABLE source_documents"
        " (source TEXT NOT NULL, entry_id TEXT NOT NULL, PRIMARY KEY (source, entry_id))"
    )
    db.execute(
        "CREATE TABLE tombstones (item_id TEXT PRIMARY KEY, slug TEXT NOT NULL,"
        " feeds TEXT NOT NULL, published TEXT NOT NULL, deleted TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_tombstones_deleted ON tombstones (deleted)")
