"""stored_files.token: the secret part of a stored file's download link

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Files stored before this column have an empty token, which no link can match.
    with op.batch_alter_table("stored_files") as batch:
        batch.add_column(sa.Column("token", sa.String(length=32), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("stored_files") as batch:
        batch.drop_column("token")
