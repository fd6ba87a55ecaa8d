"""identities.heard_at, identities.sent_since_heard: the messaging window of each address

Zalo lets an OA send only a few messages (8 in 48 hours) after the person last wrote. The
bot now counts, per address, the messages sent since the person last wrote and when that
was, so it can ask for a tap (which opens the window again) or use another channel before
the budget runs out.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("heard_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sent_since_heard", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("sent_since_heard")
        batch.drop_column("heard_at")
