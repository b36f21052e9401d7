"""annotations keep each object as one JSON text (data) beside label_id and frame;
no foreign key on label_id; SQLite's id counters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 16:20:00
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COMMON: dict[str, Any] = {"group": sa.Integer(), "source": sa.String(16), "attributes": sa.JSON()}
GEOMETRY: dict[str, Any] = {
    "type": sa.String(16),
    "occluded": sa.Boolean(),
    "outside": sa.Boolean(),
    "z_order": sa.Integer(),
    "rotation": sa.Float(),
    "points": sa.JSON(),
}
# The columns that data replaces, per table.
MOVED: dict[str, dict[str, Any]] = {
    "labeled_tags": COMMON,
    "labeled_shapes": COMMON | GEOMETRY,
    "labeled_tracks": COMMON | {"shapes": sa.JSON()},
}
# For a downgrade: what an old column holds where data lacks the key.
DEFAULTS: dict[str, Any] = {
    "group": 0,
    "source": "manual",
    "attributes": [],
    "type": "rectangle",
    "occluded": False,
    "outside": False,
    "z_order": 0,
    "rotation": 0.0,
    "points": [],
    "shapes": [],
}


def _table(name: str) -> sa.TableClause:
    columns = [sa.column(column, kind) for column, kind in MOVED[name].items()]
    return sa.table(
        name,
        sa.column("id", sa.Integer()),
        sa.column("label_id", sa.Integer()),
        sa.column("frame", sa.Integer()),
        sa.column("data", sa.JSON()),
        *columns,
    )


def upgrade() -> None:
    op.create_table(
        "annotation_id_counters",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_annotation_id_counters")),
    )
    bind = op.get_bind()
    for name, moved in MOVED.items():
        op.add_column(name, sa.Column("data", sa.JSON(), nullable=True))
        table = _table(name)
        rows = bind.execute(
            sa.select(table.c.id, table.c.label_id, table.c.frame, *(table.c[c] for c in moved))
        ).mappings()
        changes = [{"row_id": row["id"], "new_data": dict(row)} for row in rows]
        if changes:
            bind.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values(data=sa.bindparam("new_data")),
                changes,
            )
        with op.batch_alter_table(name) as batch_op:
            batch_op.drop_constraint(f"fk_{name}_label_id_labels", type_="foreignkey")
            batch_op.drop_index(f"ix_{name}_label_id")
            for column in moved:
                batch_op.drop_column(column)
            batch_op.alter_column("data", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    for name, moved in MOVED.items():
        with op.batch_alter_table(name) as batch_op:
            for column, kind in moved.items():
                batch_op.add_column(sa.Column(column, kind, nullable=True))
        table = _table(name)
        rows = bind.execute(sa.select(table.c.id, table.c.data)).all()
        if rows:
            bind.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("row_id"))
                .values({column: sa.bindparam(f"new_{column}") for column in moved}),
                [
                    {"row_id": row_id} | {f"new_{c}": data.get(c, DEFAULTS[c]) for c in moved}
                    for row_id, data in rows
                ],
            )
        with op.batch_alter_table(name) as batch_op:
            for column, kind in moved.items():
                batch_op.alter_column(column, existing_type=kind, nullable=False)
            batch_op.drop_column("data")
            batch_op.create_index(f"ix_{name}_label_id", ["label_id"])
            batch_op.create_foreign_key(
                f"fk_{name}_label_id_labels", "labels", ["label_id"], ["id"], ondelete="CASCADE"
            )
    op.drop_table("annotation_id_counters")
