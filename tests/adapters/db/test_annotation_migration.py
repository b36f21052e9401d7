"""Migration 0005: annotations written in the column-per-field layout come out of the
upgrade unchanged in the JSON layout, and a downgrade gives the columns back."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from alembic import command
from sqlalchemy import Engine, text

from labelyard.adapters.db.engine import alembic_config, make_engine, make_session_factory, migrate
from labelyard.services.annotations import load_objects
from labelyard.services.uow import UnitOfWork
from tests.factories import Factory

ATTRIBUTES = [{"spec_id": 7, "value": "BMW"}]
TRACKED = [
    {"frame": 1, "type": "rectangle", "points": [1.0, 2.0, 3.0, 4.0], "occluded": False,
     "outside": False, "keyframe": True, "z_order": 0, "rotation": 0.0, "attributes": []},
]  # fmt: skip


@pytest.fixture
def old_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _old_rows(engine: Engine, job_id: int, label_id: int) -> None:
    json = lambda value: orjson.dumps(value).decode()  # noqa: E731
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO labeled_tags (id, job_id, label_id, frame, "group", source, '
                "attributes) VALUES (1, :job, :label, 2, 0, 'manual', :attributes)"
            ),
            {"job": job_id, "label": label_id, "attributes": json(ATTRIBUTES)},
        )
        connection.execute(
            text(
                'INSERT INTO labeled_shapes (id, job_id, label_id, frame, "group", source, '
                "attributes, type, occluded, outside, z_order, rotation, points) VALUES (5, :job, "
                ":label, 3, 1, 'auto', '[]', 'polygon', :yes, :no, 2, 45.5, :points)"
            ),
            {"job": job_id, "label": label_id, "yes": True, "no": False,
             "points": json([0.5, 1, 2, 3, 4, 5])},
        )  # fmt: skip
        connection.execute(
            text(
                'INSERT INTO labeled_tracks (id, job_id, label_id, frame, "group", source, '
                "attributes, shapes) VALUES (9, :job, :label, 1, 0, 'file', '[]', :shapes)"
            ),
            {"job": job_id, "label": label_id, "shapes": json(TRACKED)},
        )


def test_upgrade_keeps_every_field_and_downgrade_restores_the_columns(old_engine: Engine):
    factory = Factory(make_session_factory(old_engine))
    owner = factory.admin()
    task = factory.task(owner, frames=5)
    (job,) = factory.jobs_of(task)
    label_id = task.own_labels[0].id
    config = alembic_config(old_engine)
    command.downgrade(config, "0004")
    _old_rows(old_engine, job.id, label_id)

    command.upgrade(config, "head")

    with UnitOfWork(make_session_factory(old_engine), writes=False) as uow:
        stored = {
            kind: [(object_id, orjson.loads(data)) for object_id, data in items]
            for kind, items in load_objects(uow, job.id).items()
        }
    common = {"label_id": label_id, "attributes": []}
    assert stored == {
        "tags": [(1, common | {"id": 1, "frame": 2, "group": 0, "source": "manual",
                               "attributes": ATTRIBUTES})],
        "shapes": [(5, common | {"id": 5, "frame": 3, "group": 1, "source": "auto",
                                 "type": "polygon", "occluded": True, "outside": False,
                                 "z_order": 2, "rotation": 45.5, "points": [0.5, 1, 2, 3, 4, 5]})],
        "tracks": [(9, common | {"id": 9, "frame": 1, "group": 0, "source": "file",
                                 "shapes": TRACKED})],
    }  # fmt: skip

    command.downgrade(config, "0004")
    with old_engine.connect() as connection:
        row = connection.execute(
            text("SELECT frame, type, rotation, points FROM labeled_shapes WHERE id = 5")
        ).one()
    assert (row.frame, row.type, row.rotation) == (3, "polygon", 45.5)
    # psycopg decodes json columns itself; SQLite hands back the text.
    points = row.points if isinstance(row.points, list) else orjson.loads(row.points)
    assert points == [0.5, 1, 2, 3, 4, 5]
    command.upgrade(config, "head")
