"""work face: spaces, workflows, work batches, work items and their signals

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:20:21.402512
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("company_uuid", sa.String(length=36), nullable=False),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spaces")),
        sa.UniqueConstraint("uuid", name=op.f("uq_spaces_uuid")),
    )
    op.create_table(
        "space_members",
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_space_members_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_space_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("space_id", "user_id", name=op.f("pk_space_members")),
    )
    with op.batch_alter_table("space_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_space_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "work_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_work_batches_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_work_batches_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_batches")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_work_batches_project_id_name")),
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stage_data", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_workflows_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_workflows_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("project_id", "version", name=op.f("uq_workflows_project_id_version")),
    )
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("task_type", sa.String(length=32), nullable=False),
        sa.Column("assignment", sa.String(length=8), nullable=False),
        sa.Column("in_review", sa.Boolean(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("labeller_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("asset_url", sa.String(length=2000), nullable=False),
        sa.Column("asset_type", sa.String(length=16), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("frame", sa.Integer(), nullable=True),
        sa.Column("object_kind", sa.String(length=8), nullable=True),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("source_key", sa.String(length=128), nullable=True),
        sa.Column("results_url", sa.String(length=2000), nullable=False),
        sa.Column("taxonomy_version_id", sa.String(length=36), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("label_metadata", sa.JSON(), nullable=False),
        sa.Column("feedback", sa.JSON(), nullable=False),
        sa.Column("due_in_seconds", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("difficulty", sa.Integer(), nullable=False),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_work_items_asset_id_assets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_work_items_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["work_batches.id"],
            name=op.f("fk_work_items_batch_id_work_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_work_items_dataset_id_datasets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["labeller_id"],
            ["users.id"],
            name=op.f("fk_work_items_labeller_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_work_items_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["users.id"],
            name=op.f("fk_work_items_reviewer_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_work_items_task_id_tasks"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_work_items_workflow_id_workflows"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
        sa.UniqueConstraint(
            "project_id", "source_key", name=op.f("uq_work_items_project_id_source_key")
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_work_items_uuid")),
    )
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_items_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_work_items_assignee_id"), ["assignee_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_work_items_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_work_items_labeller_id"), ["labeller_id"], unique=False
        )
        batch_op.create_index("ix_work_items_leases", ["status", "leased_until"], unique=False)
        batch_op.create_index(
            "ix_work_items_queue", ["project_id", "status", "task_type", "due_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_work_items_task_id"), ["task_id"], unique=False)

    op.create_table(
        "work_signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("signal", sa.String(length=16), nullable=False),
        sa.Column("task_type", sa.String(length=32), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("comments", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_work_signals_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_work_signals_work_item_id_work_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_signals")),
    )
    with op.batch_alter_table("work_signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_signals_work_item_id"), ["work_item_id"], unique=False
        )

    spaces = sa.table(
        "spaces",
        sa.column("id", sa.Integer()),
        sa.column("uuid", sa.String()),
        sa.column("name", sa.String()),
        sa.column("company_uuid", sa.String()),
        sa.column("created_date", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        spaces,
        [
            {
                "id": 1,
                "uuid": str(uuid.uuid4()),
                "name": "Default",
                "company_uuid": str(uuid.uuid4()),
                "created_date": datetime.now(UTC).replace(tzinfo=None),
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        # The row above was given its id: the sequence must hand out the next one.
        op.execute("SELECT setval(pg_get_serial_sequence('spaces', 'id'), 1)")
    for table in ("datasets", "projects", "users"):
        _add_uuid(table)
    for table in ("datasets", "projects"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("space_id", sa.Integer(), nullable=False, server_default="1")
            )
            batch_op.create_index(batch_op.f(f"ix_{table}_space_id"), ["space_id"], unique=False)
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_space_id_spaces"),
                "spaces",
                ["space_id"],
                ["id"],
                ondelete="RESTRICT",
            )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("data_type", sa.String(length=16), nullable=False, server_default="image")
        )


def _add_uuid(table: str) -> None:
    """A UUID for every existing row, then the column becomes required and unique."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column("uuid", sa.String(length=36), nullable=True))
    rows = sa.table(table, sa.column("id", sa.Integer()), sa.column("uuid", sa.String()))
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.select(rows.c.id)).all():
        connection.execute(rows.update().where(rows.c.id == row_id).values(uuid=str(uuid.uuid4())))
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.alter_column("uuid", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_uuid"), ["uuid"])


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_uuid"), type_="unique")
        batch_op.drop_column("uuid")

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_projects_space_id_spaces"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_projects_uuid"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_projects_space_id"))
        batch_op.drop_column("data_type")
        batch_op.drop_column("description")
        batch_op.drop_column("space_id")
        batch_op.drop_column("uuid")

    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_datasets_space_id_spaces"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_datasets_uuid"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_datasets_space_id"))
        batch_op.drop_column("space_id")
        batch_op.drop_column("uuid")

    with op.batch_alter_table("work_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_signals_work_item_id"))

    op.drop_table("work_signals")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_items_task_id"))
        batch_op.drop_index("ix_work_items_queue")
        batch_op.drop_index("ix_work_items_leases")
        batch_op.drop_index(batch_op.f("ix_work_items_labeller_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_dataset_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_batch_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_assignee_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_asset_id"))

    op.drop_table("work_items")
    op.drop_table("workflows")
    op.drop_table("work_batches")
    with op.batch_alter_table("space_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_space_members_user_id"))

    op.drop_table("space_members")
    op.drop_table("spaces")
