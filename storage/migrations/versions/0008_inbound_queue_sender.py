"""inbound_queue.sender: one person's webhook events are handled in the order they came

Several processes share the inbound queue; without knowing whose event a row is, two of them
could each take one event of the same person and handle them out of order (a "confirm"
before the description it confirms). The worker claims only the oldest unhandled event of
each sender, which needs the sender as a column and an index to find it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_queue") as batch:
        batch.add_column(sa.Column("sender", sa.String(length=64), nullable=False,
                                   server_default=""))
    op.create_index("ix_inbound_queue_sender", "inbound_queue",
                    ["sender", "processed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_queue_sender", table_name="inbound_queue")
    with op.batch_alter_table("inbound_queue") as batch:
        batch.drop_column("sender")
