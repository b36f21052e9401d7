"""work queue index in the pull queue's own order; work items by task frame

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Due soonest first (undated last), then hardest, then oldest: the order ``next`` hands
# items out in, so that it reads one index entry instead of sorting the stage's items.
QUEUE_ORDER: list[str | sa.TextClause] = [
    "project_id",
    "status",
    "task_type",
    sa.text("(due_at IS NULL)"),
    "due_at",
    sa.text("difficulty DESC"),
    "created_date",
    "id",
]


def upgrade() -> None:
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.drop_index("ix_work_items_queue")
        # A job's items are its frames of the task: found by frame, not by scanning
        # the whole task's (a work task holds a dataset's items).
        batch_op.drop_index("ix_work_items_task_id")
        batch_op.create_index("ix_work_items_task_frame", ["task_id", "frame"], unique=False)
    op.create_index("ix_work_items_queue", "work_items", QUEUE_ORDER)


def downgrade() -> None:
    op.drop_index("ix_work_items_queue", table_name="work_items")
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.drop_index("ix_work_items_task_frame")
        batch_op.create_index("ix_work_items_task_id", ["task_id"], unique=False)
        batch_op.create_index(
            "ix_work_items_queue", ["project_id", "status", "task_type", "due_at"], unique=False
        )
