"""case_events: a hash chain per commune, and rows not tied to a case

The audit trail now records reads (alerts delivered, case cards opened, statistics files
made and downloaded, status lookups) and statistics are about a commune, not a case: each
row names its commune, may have no case, and carries the hash of the commune's previous
row (`prev_hash`) and its own (`hash`, storage/audit.py), so `safechild audit verify` can
find a row edited later. Existing rows are chained in id order. stored_files.commune_id:
whose statistics a file holds, so its download is audited there.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from storage.audit import GENESIS, row_hash

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.add_column(sa.Column("commune_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
    _backfill()
    with op.batch_alter_table("case_events") as batch:
        batch.alter_column("commune_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)
        batch.create_foreign_key("fk_case_events_commune", "communes", ["commune_id"], ["id"])
        batch.create_index("ix_case_events_commune_id_id", ["commune_id", "id"])
    with op.batch_alter_table("stored_files") as batch:
        batch.add_column(sa.Column("commune_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_stored_files_commune", "communes", ["commune_id"],
                                 ["id"])


def _backfill() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    events = sa.Table("case_events", meta, sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("case_id", sa.Integer), sa.Column("commune_id", sa.Integer),
                      sa.Column("actor_id", sa.Integer), sa.Column("action", sa.String(32)),
                      sa.Column("at", sa.DateTime(timezone=True)),
                      sa.Column("detail", sa.JSON), sa.Column("prev_hash", sa.String(64)),
                      sa.Column("hash", sa.String(64)))
    cases = sa.Table("cases", meta, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("commune_id", sa.Integer))
    bind.execute(events.update().values(commune_id=sa.select(cases.c.commune_id)
                                        .where(cases.c.id == events.c.case_id)
                                        .scalar_subquery()))
    tails: dict[int, str] = {}
    after = 0
    while True:
        rows = bind.execute(sa.select(events).where(events.c.id > after)
                            .order_by(events.c.id).limit(BATCH)).mappings().all()
        if not rows:
            break
        updates: list[dict[str, Any]] = []
        for m in rows:
            prev = tails.get(m["commune_id"], GENESIS)
            digest = row_hash(commune_id=m["commune_id"], case_id=m["case_id"],
                              actor_id=m["actor_id"], action=m["action"], at=m["at"],
                              detail=m["detail"] or {}, prev_hash=prev)
            tails[m["commune_id"]] = digest
            updates.append({"rid": m["id"], "p": prev, "h": digest})
        bind.execute(events.update().where(events.c.id == sa.bindparam("rid"))
                     .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")), updates)
        after = rows[-1]["id"]


def downgrade() -> None:
    with op.batch_alter_table("stored_files") as batch:
        batch.drop_constraint("fk_stored_files_commune", type_="foreignkey")
        batch.drop_column("commune_id")
    op.execute("DELETE FROM case_events WHERE case_id IS NULL")
    with op.batch_alter_table("case_events") as batch:
        batch.drop_index("ix_case_events_commune_id_id")
        batch.drop_constraint("fk_case_events_commune", type_="foreignkey")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("commune_id")
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
