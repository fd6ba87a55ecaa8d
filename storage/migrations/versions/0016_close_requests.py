"""close_requests: closing a high-risk case before its plan is approved waits for the
chairman

Issue 13, item 9: when a commune asks for it ([closing] high_risk_needs_chairman), a close
of such a case by anyone but the chairman is a request: the outcome and note proposed, who
proposed it, and once the chairman answers, the decision. A row, so a request outlives a
restart.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "close_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["requested_by"], ["people.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_close_requests_case_id", "close_requests", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_close_requests_case_id", table_name="close_requests")
    op.drop_table("close_requests")
