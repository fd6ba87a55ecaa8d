"""top_digests: the top of the escalation chain gets one digest a day, not an alert per case
per period

A case at the top level used to re-alert the chairman and the province contact every
period, day and night. Now each of them has one row here: when their next digest of the
cases still waiting on them falls due (empty when none waits), when the last one went and
how many went; processes claim a due row with a lease, as they claim timers.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "top_digests",
        sa.Column("person_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_index("ix_top_digests_due_at", "top_digests", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_top_digests_due_at", table_name="top_digests")
    op.drop_table("top_digests")
