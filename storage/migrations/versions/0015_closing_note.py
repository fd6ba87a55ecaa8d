"""cases.closing_note: the short note an officer writes when closing a case

Closing used to record only the outcome; it now asks for a short note as well, shown back
with the outcome before the officer confirms.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("closing_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("closing_note")
