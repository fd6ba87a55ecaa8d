"""Delivery that keeps order, survives crashes and outages (issue 12)

- outbox.waiting_on and an index of each chat's waiting rows: one chat's rows are claimed
  strictly in id order, and rows held back by a channel outage are due again at once when
  a send on that channel succeeds.
- claim_locks: claimers of the outbox take turns, so two processes never split one chat.
- processes: each process's heartbeat; rows leased by one that stopped beating are freed.
- channel_health: since when a channel fails, and whether the administrators were told.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("waiting_on", sa.String(length=16), nullable=True))
    op.create_index("ix_outbox_chat_waiting", "outbox", ["channel", "address", "id"],
                    sqlite_where=sa.text("status = 'pending'"),
                    postgresql_where=sa.text("status = 'pending'"))
    locks = op.create_table(
        "claim_locks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(locks, [{"name": "outbox", "taken": 0}])
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_processes_name", "processes", ["name"])
    op.create_table(
        "channel_health",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admins_told_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("channel"),
    )


def downgrade() -> None:
    op.drop_table("channel_health")
    op.drop_index("ix_processes_name", table_name="processes")
    op.drop_table("processes")
    op.drop_table("claim_locks")
    op.drop_index("ix_outbox_chat_waiting", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("waiting_on")
