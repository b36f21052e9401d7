"""annotations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:38:37.456888
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotation_idempotency_keys",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ids", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_annotation_idempotency_keys_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "key", name=op.f("pk_annotation_idempotency_keys")),
    )
    op.create_table(
        "labeled_shapes",
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("occluded", sa.Boolean(), nullable=False),
        sa.Column("outside", sa.Boolean(), nullable=False),
        sa.Column("z_order", sa.Integer(), nullable=False),
        sa.Column("rotation", sa.Float(), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("group", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_labeled_shapes_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_labeled_shapes_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeled_shapes")),
    )
    with op.batch_alter_table("labeled_shapes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labeled_shapes_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_labeled_shapes_label_id"), ["label_id"], unique=False)

    op.create_table(
        "labeled_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("group", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_labeled_tags_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_labeled_tags_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeled_tags")),
    )
    with op.batch_alter_table("labeled_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labeled_tags_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_labeled_tags_label_id"), ["label_id"], unique=False)

    op.create_table(
        "labeled_tracks",
        sa.Column("shapes", sa.JSON(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("group", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_labeled_tracks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_labeled_tracks_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeled_tracks")),
    )
    with op.batch_alter_table("labeled_tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labeled_tracks_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_labeled_tracks_label_id"), ["label_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("annotation_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("annotation_version")

    with op.batch_alter_table("labeled_tracks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labeled_tracks_label_id"))
        batch_op.drop_index(batch_op.f("ix_labeled_tracks_job_id"))

    op.drop_table("labeled_tracks")
    with op.batch_alter_table("labeled_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labeled_tags_label_id"))
        batch_op.drop_index(batch_op.f("ix_labeled_tags_job_id"))

    op.drop_table("labeled_tags")
    with op.batch_alter_table("labeled_shapes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labeled_shapes_label_id"))
        batch_op.drop_index(batch_op.f("ix_labeled_shapes_job_id"))

    op.drop_table("labeled_shapes")
    op.drop_table("annotation_idempotency_keys")
