"""Alembic environment: runs against the engine handed over in ``config.attributes``."""

from typing import Any, Literal

from alembic import context

from labelyard.domain import Base
from labelyard.domain.base import UTCDateTime


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations spell the UTC column type as the plain DateTime it stores."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
