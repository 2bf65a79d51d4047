"""re-render every article's free part with the block-cut preview

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00

Free parts rendered before this revision could hold gated text (the whole body of a short
article without a paywall marker; lists, code and tables before the N-th paragraph). Every
article is rendered again with the current rule, and the search index's public text and the
shared content version follow, so no stored or cached copy keeps the old free part.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.articles.markdown import Renderer, preview_rule
from app.articles.search import public_text
from app.core.config import Settings

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500


def upgrade() -> None:
    bind = op.get_bind()
    settings = Settings()
    renderer = Renderer(settings.public_url, preview_rule(settings))
    sqlite = bind.dialect.name == 'sqlite'
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                'SELECT id, body_md, visibility, preview_paragraphs, excerpt_override, title,'
                ' subtitle FROM article WHERE id > :last ORDER BY id LIMIT :n'
            ),
            {'last': last, 'n': BATCH},
        ).all()
        if not rows:
            break
        for row in rows:
            _rerender(bind, renderer, row, sqlite=sqlite)
        last = rows[-1].id
    bind.execute(sa.text('UPDATE content_version SET version = version + 1'))


def _rerender(bind: sa.Connection, renderer: Renderer, row: sa.Row, *, sqlite: bool) -> None:
    out = renderer.render(
        row.body_md,
        gated=row.visibility != 'public',
        preview_blocks=row.preview_paragraphs,
        excerpt_override=row.excerpt_override,
    )
    bind.execute(
        sa.text(
            'UPDATE article SET content_html = :content, preview_html = :preview,'
            ' excerpt = :excerpt, has_paywall_marker = :marker, word_count = :words,'
            ' reading_minutes = :minutes WHERE id = :id'
        ),
        {
            'content': out.content_html,
            'preview': out.preview_html,
            'excerpt': out.excerpt,
            'marker': out.has_marker,
            'words': out.word_count,
            'minutes': out.reading_minutes,
            'id': row.id,
        },
    )
    tags = bind.execute(
        sa.text(
            'SELECT t.name FROM tag t JOIN article_tag at ON at.tag_id = t.id'
            ' WHERE at.article_id = :id'
        ),
        {'id': row.id},
    ).scalars().all()
    public = public_text(row.title, row.subtitle, out.excerpt, list(tags))
    if sqlite:
        bind.execute(
            sa.text('UPDATE article_search SET public_text = :public WHERE rowid = :id'),
            {'public': public, 'id': row.id},
        )
    else:
        bind.execute(
            sa.text(
                "UPDATE article_search SET public_tsv = to_tsvector('simple', :public)"
                ' WHERE article_id = :id'
            ),
            {'public': public, 'id': row.id},
        )


def downgrade() -> None:
    # The old free parts leaked; there is nothing worth restoring.
    pass
