"""zalo_tokens: at most one active pair per OA (a unique index on the active rows)

Two processes seeding the token store at the same first start, or storing a refreshed pair
at the same moment, must not leave two "active" rows: the refresh token is single use, so
the second would be spent for nothing and the OA's authorisation reported lost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_zalo_tokens_active", "zalo_tokens", ["oa_id"], unique=True,
                    sqlite_where=sa.text("status = 'active'"),
                    postgresql_where=sa.text("status = 'active'"))


def downgrade() -> None:
    op.drop_index("uq_zalo_tokens_active", table_name="zalo_tokens")
