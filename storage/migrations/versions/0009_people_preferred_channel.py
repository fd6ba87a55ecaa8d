"""people.preferred_channel: the channel alerts try first for someone reachable on several

An officer with both a Zalo and a Telegram account may say where they want alerts (the
commune file's `prefers`). Without it, alerts go where the person last wrote.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("preferred_channel", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("preferred_channel")
