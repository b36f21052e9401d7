"""git repositories: the repository a task's annotations are pushed to

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 18:12:25.992092
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "git_repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("format", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pushed_commit", sa.String(length=64), nullable=True),
        sa.Column("synced_stamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_git_repositories_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_git_repositories")),
        sa.UniqueConstraint("task_id", name=op.f("uq_git_repositories_task_id")),
    )


def downgrade() -> None:
    op.drop_table("git_repositories")
