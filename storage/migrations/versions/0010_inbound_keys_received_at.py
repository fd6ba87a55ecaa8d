"""inbound_keys.received_at index: old keys are deleted by age

Keys only need to outlive redeliveries (see bot/services/inbound_queue.py); the hourly
delete finds the old ones through this index instead of reading the whole table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 20:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbound_keys_received_at", "inbound_keys", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_keys_received_at", table_name="inbound_keys")
