"""Private fields sealed with the database's keys (storage/crypto.py)

Descriptions, children's names, reporters' names and phones, notes, media references, the
drafts (conversations.state) and the queued messages (outbox, simulator log, Zalo's
inbound events) are written sealed from now on. A sealed value is longer than the plain
one and a sealed JSON document is text, so on PostgreSQL the columns become TEXT (SQLite
does not enforce the declared types). Rows already there are left as they are, and read
as they are: the migration has no keys (it runs in the same way for every process), and
`safechild rotate-keys` seals every row that is not under the first key yet, the plain
ones among them, in small transactions while the bot runs.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# (table, column, type before): the columns that hold sealed values.
COLUMNS = (
    ("people", "name", "VARCHAR(200)"),
    ("people", "phone", "VARCHAR(32)"),
    ("cases", "child_name", "VARCHAR(200)"),
    ("cases", "reporter_phone", "VARCHAR(32)"),
    ("attachments", "file_ref", "VARCHAR(500)"),
    ("conversations", "state", "JSON"),
    ("outbox", "payload", "JSON"),
    ("sim_messages", "payload", "JSON"),
    ("inbound_queue", "payload", "JSON"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, _before in COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE TEXT '
                   f'USING "{column}"::text')


def downgrade() -> None:
    # For a database with plain rows only (a test's): sealed values would not fit the
    # narrower columns, and the code before 0019 could not read them anyway.
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, before in COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE {before} '
                   f'USING "{column}"::{before.lower()}')
