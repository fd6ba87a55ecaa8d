"""conversations.pace_from, conversations.pace_count: how fast each person is writing;
conversations.forgotten: emptied by the retention job since;
indexes of cases by reporter and time, and
of closed cases by when they closed

One account sending hundreds of messages a minute must not bury everyone else. The bot
counts, per person, the messages of the current minute beside their conversation (the row
every message reads and writes anyway), so several processes agree on it; and counts the
reports one person opened in the last hour, which the index keeps to a few rows. The
conversation's state is sealed (0019), so the retention job marks the ones it emptied
rather than recognising them by their JSON.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("pace_from", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pace_count", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("forgotten", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_index("ix_conversations_to_forget", "conversations", ["forgotten", "updated_at"])
    op.create_index("ix_cases_reporter_created", "cases", ["reporter_id", "created_at"])
    # The retention job looks for closed cases past their period among many open ones.
    op.create_index("ix_cases_closed", "cases", ["status", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_closed", table_name="cases")
    op.drop_index("ix_conversations_to_forget", table_name="conversations")
    op.drop_index("ix_cases_reporter_created", table_name="cases")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("forgotten")
        batch.drop_column("pace_count")
        batch.drop_column("pace_from")
