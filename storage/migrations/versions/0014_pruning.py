"""Indexes for pruning: old outbox messages, simulator log rows and stored files are
deleted by age

An hourly worker (bot/workers/pruning.py) deletes, in small batches, what only served
delivery once it is older than the commune's retention; these indexes let each batch find
the old rows instead of reading the whole table (stored files hold whole workbooks and
charts, which SQLite would read to reach created_at). Spent timers are found through
ix_timers_due (done_at, fire_at), which exists.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_index("ix_sim_messages_created_at", "sim_messages", ["created_at"])
    op.create_index("ix_stored_files_created_at", "stored_files", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_stored_files_created_at", table_name="stored_files")
    op.drop_index("ix_sim_messages_created_at", table_name="sim_messages")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
