"""sim_messages.outbox_id: the simulator's log is written once per outbox message

The simulator used to write its log row inside the delivery worker's transaction, which is
why a channel's send took a database session. Now it writes like any other channel, on its
own, and the outbox message's id (unique here) makes a resend after a crash a no-op: the
simulator is the one channel with an idempotency key. Rows from before carry none.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sim_messages") as batch:
        batch.add_column(sa.Column("outbox_id", sa.Integer(), nullable=True))
        batch.create_unique_constraint("uq_sim_messages_outbox_id", ["outbox_id"])


def downgrade() -> None:
    with op.batch_alter_table("sim_messages") as batch:
        batch.drop_constraint("uq_sim_messages_outbox_id", type_="unique")
        batch.drop_column("outbox_id")
