"""people.account_id: one person holding roles in several communes

A police officer covering two communes, or an officer listed in two commune files, is one
account: a row per commune (its role, village and duty there) and one set of channel
addresses. The first row is the account; each other row names it in `account_id`, and
only the account's row has addresses, so every alert to any of the rows reaches the same
chat.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_people_account", "people", ["account_id"], ["id"])
        batch.create_index("ix_people_account_id", ["account_id"])


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_index("ix_people_account_id")
        batch.drop_constraint("fk_people_account", type_="foreignkey")
        batch.drop_column("account_id")
