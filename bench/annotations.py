"""How fast a job's annotations are written and read through the HTTP layer, and in what memory.

Builds the app in-process (``create_app``; SQLite in a temporary data dir, or the database of
``--database-url``, where a scratch database is created and dropped for PostgreSQL), an admin,
and a task with one label (a select and a number attribute) and one job over frames 0-9999.
Then, through FastAPI's ``TestClient`` (in-process ASGI, no network) with a token header:
PUT of 100,000 rectangles with two attributes each, spread over the job's frames; GET of them;
PATCH ?action=update of 10,000 of them with changed points; PUT of them again over the stored
ones. The floor is the raw driver inserting the same rows (id, job, label, frame and the
object's JSON text) in one transaction: sqlite3 ``executemany`` into a fresh WAL database
file, and for PostgreSQL also psycopg ``executemany`` and ``COPY`` into a temporary table.
Where the time goes is measured apart: decoding the body, the service's checks, encoding,
SQL statements and COMMIT (engine events during the requests), answer encoding.
Run: ``.venv/bin/python bench/annotations.py [--database-url URL] [--shapes N] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
import sqlalchemy
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.domain import Task
from labelyard.services import annotation_body, auth, jobs
from labelyard.services import annotations as job_annotations
from labelyard.services.access import Actor
from labelyard.services.uow import UnitOfWork

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

API = "/api/v1"
FRAMES = 10_000
SHAPES = 100_000
QUICK_SHAPES = 10_000
UPDATE_SHARE = 10  # PATCH ?action=update changes one shape in ten
REPEATS = 3
ADMIN = ("bench-admin", "bench-password-1")
# A 100,000-shape body is ~25 MB, over the 10 MiB default max_request_bytes: the bench raises it.
MAX_REQUEST_BYTES = 512 * 2**20
TARGET_PUT_S = 1.0
TARGET_PUT_FLOOR_RATIO = 3.0
TARGET_GET_S = 0.5
MODELS = ["BMW", "Audi", "Volvo", "Tesla"]
SPEED = ("0", "200", "0.5")  # number attribute: min, max, step
SHAPE_COLUMNS = ("id", "job_id", "label_id", "frame", "data")


# --- memory and timing -----------------------------------------------------------------------


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM, which ru_maxrss reads too; Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class GcClock:
    """Time spent in Python's cyclic garbage collector (gc.callbacks), all generations."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.seconds, self.collections = 0.0, 0

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1


def steal_seconds() -> float:
    # Time this VM's CPUs were ready but the hypervisor ran something else (/proc/stat's
    # 8th figure); when it is large, every figure here is inflated and noisy.
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return float("nan")
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


class SqlClock:
    """Time spent in the DB driver during the requests, from engine events: each statement
    (cursor execute/executemany) and each COMMIT. PostgreSQL's COPY runs on the driver's
    cursor, past the engine's events: it is not counted here."""

    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        self.statement_s = 0.0
        self.commit_s = 0.0
        self._started = 0.0
        self._commit_started: float | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._before_commit)
        event.listen(Session, "after_commit", self._after_commit)

    def reset(self) -> None:
        self.statements, self.statement_s, self.commit_s = 0, 0.0, 0.0

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, *_: Any) -> None:
        self.statement_s += time.perf_counter() - self._started
        self.statements += 1

    def _before_commit(self, *_: Any) -> None:
        self._commit_started = time.perf_counter()

    def _after_commit(self, *_: Any) -> None:
        if self._commit_started is not None:
            self.commit_s += time.perf_counter() - self._commit_started
            self._commit_started = None


# --- the annotations ---------------------------------------------------------------------------


@dataclass
class World:
    client: TestClient
    engine: Engine
    session_factory: Any
    url: str
    job_id: int
    label_id: int
    specs: dict[str, int]
    user_id: int


def make_shapes(count: int, label_id: int, specs: dict[str, int], seed: int = 0) -> list[dict]:
    """``count`` rectangles spread evenly over the job's frames, as CVAT's UI sends them."""
    rng = random.Random(seed)
    shapes = []
    for index in range(count):
        x, y = round(rng.uniform(0, 1800), 2), round(rng.uniform(0, 1000), 2)
        w, h = round(rng.uniform(5, 120), 2), round(rng.uniform(5, 80), 2)
        shapes.append(
            {
                "type": "rectangle",
                "occluded": index % 7 == 0,
                "outside": False,
                "z_order": 0,
                "rotation": 0.0,
                "points": [x, y, round(x + w, 2), round(y + h, 2)],
                "frame": index * FRAMES // count,
                "label_id": label_id,
                "group": 0,
                "source": "manual",
                "attributes": [
                    {"spec_id": specs["model"], "value": MODELS[index % len(MODELS)]},
                    {"spec_id": specs["speed"], "value": str(index % 400 / 2)},
                ],
            }
        )
    return shapes


def shape_rows(shapes: list[dict], job_id: int) -> list[tuple]:
    """The labeled_shapes rows for ``shapes``: id, job, label, frame and the object's JSON text."""
    return [
        (number, job_id, shape["label_id"], shape["frame"],
         orjson.dumps({"id": number} | shape).decode())
        for number, shape in enumerate(shapes, start=1)
    ]  # fmt: skip


# --- the floor ------------------------------------------------------------------------------


def sqlite_floor(folder: Path, rows: list[tuple]) -> float:
    """sqlite3 executemany into a fresh WAL file (the server's pragmas), one transaction; the
    table has labeled_shapes' columns, primary key and index (no foreign key). The median of
    ``REPEATS`` runs, each on a new file."""
    return statistics.median(sqlite_floor_once(folder, rows) for _ in range(REPEATS))


def sqlite_floor_once(folder: Path, rows: list[tuple]) -> float:
    path = folder / "floor.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(
            "CREATE TABLE labeled_shapes (id INTEGER NOT NULL PRIMARY KEY, job_id INTEGER NOT "
            "NULL, label_id INTEGER NOT NULL, frame INTEGER NOT NULL, data JSON NOT NULL)"
        )
        connection.execute("CREATE INDEX ix_job ON labeled_shapes (job_id)")
        columns = ", ".join(f'"{c}"' for c in SHAPE_COLUMNS)
        marks = ", ".join("?" for _ in SHAPE_COLUMNS)
        started = time.perf_counter()
        connection.execute("BEGIN")
        connection.executemany(f"INSERT INTO labeled_shapes ({columns}) VALUES ({marks})", rows)
        connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


PG_TEMP_TABLE = (
    "CREATE TEMP TABLE floor_shapes (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "job_id INTEGER NOT NULL, label_id INTEGER NOT NULL, frame INTEGER NOT NULL, data JSON NOT "
    "NULL)"
)


def postgres_floor(conninfo: str, rows: list[tuple]) -> dict[str, float]:
    """psycopg executemany and COPY into a temporary table with labeled_shapes' columns,
    primary key and index, each in one transaction (committed)."""
    columns = ", ".join(f'"{c}"' for c in SHAPE_COLUMNS)
    figures = {}
    with psycopg.connect(conninfo) as connection:
        for how in ("executemany", "COPY"):
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS floor_shapes")
                cursor.execute(PG_TEMP_TABLE)
                cursor.execute("CREATE INDEX ON floor_shapes (job_id)")
                connection.commit()
                started = time.perf_counter()
                if how == "COPY":
                    with cursor.copy(f"COPY floor_shapes ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join("%s" for _ in SHAPE_COLUMNS)
                    cursor.executemany(
                        f"INSERT INTO floor_shapes ({columns}) VALUES ({marks})", rows
                    )
                connection.commit()
                figures[how] = time.perf_counter() - started
        connection.execute("DROP TABLE IF EXISTS floor_shapes")
    return figures


def driver_conninfo(url: sqlalchemy.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database(url: str | None, folder: Path) -> Iterator[str]:
    """The database URL to run on: SQLite in ``folder`` by default; for PostgreSQL, a fresh
    database created in that server and dropped afterwards, so runs start alike."""
    if not url:
        yield f"sqlite:///{folder / 'labelyard.sqlite3'}"
        return
    resolved = make_url(Settings(database_url=url).resolved_database_url)
    if resolved.get_backend_name() != "postgresql":
        yield url
        return
    name = f"labelyard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(driver_conninfo(resolved), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield resolved.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(driver_conninfo(resolved), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- setup ------------------------------------------------------------------------------------


def build_world(client: TestClient) -> World:
    app: Any = client.app
    session_factory = app.state.session_factory
    with UnitOfWork(session_factory) as uow:
        user = auth.create_superuser(
            uow, username=ADMIN[0], email="bench@example.com", password=ADMIN[1]
        )
        user_id = user.id
    login = client.post(f"{API}/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    login.raise_for_status()
    client.headers["Authorization"] = f"Token {login.json()['key']}"
    label = {
        "name": "car",
        "attributes": [
            {"name": "model", "mutable": False, "input_type": "select",
             "default_value": MODELS[0], "values": MODELS},
            {"name": "speed", "mutable": True, "input_type": "number",
             "default_value": "0", "values": list(SPEED)},
        ],
    }  # fmt: skip
    created = client.post(f"{API}/tasks", json={"name": "annotations bench", "labels": [label]})
    created.raise_for_status()
    task = created.json()
    # Jobs come from data; here one is cut directly over frames 0-9999, as data would cut it
    # (add_segments also puts the task in progress).
    with UnitOfWork(session_factory) as uow:
        stored = uow.session.get_one(Task, task["id"])
        stored.segment_size, stored.size = FRAMES, FRAMES
        (job,) = jobs.add_segments(uow, stored, jobs.segment_ranges(0, FRAMES, FRAMES, 0))
        uow.commit()
        job_id = job.id
    (car,) = task["labels"]
    return World(
        client=client,
        engine=app.state.engine,
        session_factory=session_factory,
        url=f"{API}/jobs/{job_id}/annotations",
        job_id=job_id,
        label_id=car["id"],
        specs={spec["name"]: spec["id"] for spec in car["attributes"]},
        user_id=user_id,
    )


# --- the measurements ------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float  # wall time, from the client's call to its answer
    cpu_s: float  # this process's CPU time (all threads) meanwhile
    gc_s: float
    sql_s: float
    statements: int
    commit_s: float


@dataclass
class Step:
    name: str
    runs: list[Run]
    peak_mib: float
    detail: str
    target: str = ""
    verdict: str = ""

    @property
    def median(self) -> Run:
        return sorted(self.runs, key=lambda run: run.seconds)[len(self.runs) // 2]


@dataclass
class Results:
    steps: list[Step] = field(default_factory=list)
    floors: dict[str, float] = field(default_factory=dict)
    anatomy: list[tuple[str, float, str]] = field(default_factory=list)


def request(
    world: World, clocks: tuple[SqlClock, GcClock], name: str, method: str,
    body: bytes | None = None, params: dict[str, str] | None = None, repeats: int = 1,
    before: Callable[[], Any] | None = None,
) -> tuple[Step, bytes]:  # fmt: skip
    """``repeats`` identical requests, each after ``before`` (not timed); the peak RSS is over
    all of them."""
    sql, collector = clocks
    headers = {"Content-Type": "application/json"} if body is not None else {}
    runs = []
    peak_reset = reset_peak()
    for _ in range(repeats):
        if before is not None:
            before()
        sql.reset()
        collector.reset()
        started, cpu = time.perf_counter(), time.process_time()
        response = world.client.request(
            method, world.url, content=body, params=params, headers=headers
        )
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if response.status_code != 200:
            raise RuntimeError(f"{name}: {response.status_code} {response.text[:2000]}")
        runs.append(Run(elapsed, cpu, collector.seconds, sql.statement_s, sql.statements,
                        sql.commit_s))  # fmt: skip
    detail = f"answer {len(response.content) / 1e6:.1f} MB"
    if body is not None:
        detail = f"body {len(body) / 1e6:.1f} MB, " + detail
    peak = peak_mib() if peak_reset else float("nan")
    return Step(name, runs, peak, detail), response.content


def judge(step: Step, target: float, floor: float | None = None) -> None:
    ok = step.median.seconds <= target
    step.target = f"<= {target:g} s"
    if floor:
        ratio = step.median.seconds / floor
        ok = ok and ratio <= TARGET_PUT_FLOOR_RATIO
        step.target += f" and <= {TARGET_PUT_FLOOR_RATIO:g}x floor ({ratio:.1f}x)"
    step.verdict = "ok" if ok else "MISSED"


def judge_all(steps: list[Step], dialect: str, sqlite_floor_s: float) -> None:
    """The issue's targets are SQLite's; on another database they are only shown."""
    for step in steps:
        kind = step.name.split()[0]
        target = {"PUT": TARGET_PUT_S, "GET": TARGET_GET_S}.get(kind)
        if target is None:
            continue
        if dialect == "sqlite":
            judge(step, target, sqlite_floor_s if kind == "PUT" else None)
        else:
            step.target = f"(SQLite's target: <= {target:g} s)"


def measure(world: World, shapes: int, clocks: tuple[SqlClock, GcClock], results: Results) -> bytes:
    """The HTTP steps, in order; returns the PUT body (for the anatomy)."""
    # Warm-up: first requests build routes' validators, caches and connections.
    small = orjson.dumps({"shapes": make_shapes(10, world.label_id, world.specs)})
    request(world, clocks, "warm-up", "PUT", small)
    request(world, clocks, "warm-up", "GET")
    world.client.delete(world.url).raise_for_status()

    shapes_in = make_shapes(shapes, world.label_id, world.specs)
    body = orjson.dumps({"tags": [], "tracks": [], "shapes": shapes_in})
    del shapes_in
    put, answer = request(
        world, clocks, f"PUT {shapes:,} shapes (empty job)", "PUT", body, repeats=REPEATS,
        before=lambda: world.client.delete(world.url).raise_for_status(),
    )  # fmt: skip
    stored = orjson.loads(answer)
    if len(stored["shapes"]) != shapes:
        raise RuntimeError(f"PUT stored {len(stored['shapes'])} shapes, not {shapes}")
    del stored, answer
    results.steps.append(put)

    get, answer = request(world, clocks, f"GET {shapes:,} shapes", "GET", repeats=REPEATS)
    read = orjson.loads(answer)["shapes"]
    if len(read) != shapes:
        raise RuntimeError(f"GET answered {len(read)} shapes, not {shapes}")
    results.steps.append(get)

    changed = []
    for number, shape in enumerate(read[::UPDATE_SHARE]):
        x, y, x2, y2 = shape["points"]
        step = 1.5 + number % 3
        changed.append(shape | {"points": [x + step, y + step, x2 + step, y2 + step]})
    del read, answer
    patch_body = orjson.dumps({"tags": [], "tracks": [], "shapes": changed})
    patch, answer = request(
        world, clocks, f"PATCH update {len(changed):,} shapes", "PATCH", patch_body,
        params={"action": "update"}, repeats=REPEATS,
    )  # fmt: skip
    if len(orjson.loads(answer)["shapes"]) != len(changed):
        raise RuntimeError("PATCH answered another number of shapes")
    results.steps.append(patch)

    again, _ = request(
        world, clocks, f"PUT {shapes:,} shapes (replacing)", "PUT", body, repeats=REPEATS
    )
    results.steps.append(again)
    return body


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """The median time of ``REPEATS`` calls, and the last call's result."""
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def put_anatomy(world: World, body: bytes, add: Callable[[str, float, str], None]) -> None:
    """The parts of a PUT that can be run alone."""
    seconds, decoded = timed(lambda: annotation_body.decode(body))
    add("PUT: decode and type-check the body (msgspec)", seconds, "")
    seconds, _ = timed(lambda: json.loads(body))
    add("     for scale: json.loads of the body", seconds, "(not used)")
    with UnitOfWork(world.session_factory, writes=False) as uow:
        actor = Actor(id=world.user_id, groups=frozenset({"admin"}))
        job = jobs.get_job(uow, actor, world.job_id)
        seconds, _ = timed(lambda: job_annotations._Rules(job).validate(decoded.objects()))
        add("PUT: the service's checks (_Rules.validate)", seconds, "")
    seconds, texts = timed(
        lambda: [(n, job_annotations._text(s, n)) for n, s in enumerate(decoded.shapes, 1)]
    )
    add("PUT: each object's JSON text (msgspec encode)", seconds, "")
    answer = job_annotations.Annotations(1, {"tags": [], "tracks": [], "shapes": texts})
    seconds, _ = timed(answer.to_json)
    add("PUT: the answer joined from the texts", seconds, "")


def get_anatomy(world: World, add: Callable[[str, float, str], None]) -> None:
    """The parts of a GET that can be run alone."""
    seconds, rows = timed(lambda: raw_read(world))
    add("GET: the rows through the raw driver (execute+fetchall)", seconds, "")
    answer = job_annotations.Annotations(1, {"tags": [], "tracks": [], "shapes": rows})
    seconds, _ = timed(answer.to_json)
    add("GET: the answer joined from the rows", seconds, "")


def raw_read(world: World) -> list[tuple]:
    postgres = world.engine.dialect.name == "postgresql"
    data = "data::text" if postgres else "data"
    query = f"SELECT id, {data} FROM labeled_shapes WHERE job_id = {world.job_id} ORDER BY id"
    url = world.engine.url
    if postgres:
        with psycopg.connect(driver_conninfo(url)) as connection:
            return connection.execute(query).fetchall()  # type: ignore[arg-type]
    connection = sqlite3.connect(url.database or "")
    try:
        return connection.execute(query).fetchall()
    finally:
        connection.close()


# --- the report ------------------------------------------------------------------------------


def report(results: Results, header: str, whole_peak: float, noise: str, quick: bool) -> None:
    print()
    print(header)
    print(f"{'step':<34} {'time':>7} {'runs':>15} {'CPU':>7} {'GC':>7} {'SQL':>7} "
          f"{'(stmts)':>8} {'COMMIT':>7} {'peak RSS':>9}  target")  # fmt: skip
    for s in results.steps:
        m = s.median
        runs = "/".join(f"{r.seconds:.2f}" for r in s.runs) if len(s.runs) > 1 else ""
        print(f"{s.name:<34} {m.seconds:5.2f} s {runs:>15} {m.cpu_s:5.2f} s {m.gc_s:5.2f} s "
              f"{m.sql_s:5.2f} s {m.statements:>8} {m.commit_s:5.2f} s {s.peak_mib:5.0f} MiB  "
              f"{' '.join(filter(None, (s.verdict, s.target)))}".rstrip())  # fmt: skip
        print(f"{'':<36}{s.detail}")
    print()
    for name, seconds in results.floors.items():
        print(f"{'floor: ' + name:<66} {seconds:5.2f} s")
    print()
    print("where the time goes (each part run alone, after the requests):")
    for name, seconds, note in results.anatomy:
        print(f"  {name:<62} {seconds:5.2f} s  {note}")
    print()
    print(f"peak RSS over the HTTP steps (ru_maxrss; bench and server are one process): "
          f"{whole_peak:.0f} MiB")  # fmt: skip
    print(f"targets (SQLite): PUT <= {TARGET_PUT_S:g} s and <= {TARGET_PUT_FLOOR_RATIO:g}x the "
          f"sqlite3 floor; GET <= {TARGET_GET_S:g} s.")  # fmt: skip
    print("time: wall, the median of the runs shown. CPU: this process's CPU time meanwhile "
          "(all threads). GC: in Python's cyclic collector (gc.callbacks). SQL: inside the "
          "driver's execute calls, the driver's own Python work included (engine events; an "
          "executemany is one statement; PostgreSQL's COPY is not seen); COMMIT apart. "
          "Peak RSS: per step (ru_maxrss, reset before each by clear_refs).")  # fmt: skip
    print(noise)
    if quick:
        print(f"--quick: fewer shapes than the targets are set for ({SHAPES:,}).")


def run(database_url: str | None, shapes: int, quick: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="labelyard-bench-") as scratch_name:
        scratch = Path(scratch_name)
        results = Results()
        with scratch_database(database_url, scratch) as url:
            settings = Settings(
                data_dir=scratch / "data", database_url=url, max_request_bytes=MAX_REQUEST_BYTES
            )
            app = create_app(settings)
            engine: Engine = app.state.engine
            dialect = engine.dialect.name
            version = ".".join(map(str, engine.dialect.server_version_info or ()))
            with warnings.catch_warnings():
                # Starlette deprecates its httpx-based TestClient in favour of httpx2.
                warnings.filterwarnings("ignore", message="Using `httpx` with")
                from fastapi.testclient import TestClient
            with TestClient(app) as client:
                world = build_world(client)
                clocks = (SqlClock(engine), GcClock())
                steal, load = steal_seconds(), os.getloadavg()[0]
                reset_peak()
                print(f"{dialect} {version}: app ready, {peak_mib():.0f} MiB peak RSS so far; "
                      f"measuring {shapes:,} shapes...", flush=True)  # fmt: skip
                body = measure(world, shapes, clocks, results)
                whole_peak = max(s.peak_mib for s in results.steps)
                noise = (f"CPU steal during the requests: {steal_seconds() - steal:.1f} s; load "
                         f"average {load:.1f} before, {os.getloadavg()[0]:.1f} after, on "
                         f"{os.cpu_count()} CPUs.")  # fmt: skip
                floor_shapes = make_shapes(shapes, world.label_id, world.specs)
                rows = shape_rows(floor_shapes, world.job_id)
                del floor_shapes
                results.floors["sqlite3 executemany, WAL file, one transaction"] = sqlite_floor(
                    scratch, rows
                )
                if dialect == "postgresql":
                    for how, seconds in postgres_floor(driver_conninfo(engine.url), rows).items():
                        results.floors[f"psycopg {how}, temp table, one transaction"] = seconds
                sqlite_floor_s = results.floors["sqlite3 executemany, WAL file, one transaction"]
                del rows
                judge_all(results.steps, dialect, sqlite_floor_s)
                add = lambda *part: results.anatomy.append(part)  # noqa: E731
                put_anatomy(world, body, add)
                get_anatomy(world, add)
                engine.dispose()
        header = (f"labelyard annotations: {dialect} {version}, SQLAlchemy "
                  f"{sqlalchemy.__version__}, Python {sys.version.split()[0]}, "
                  f"{os.cpu_count()} CPUs; {shapes:,} rectangles with 2 attributes in one job of "
                  f"{FRAMES:,} frames")  # fmt: skip
        report(results, header, whole_peak, noise, quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="postgresql://... (default: SQLite in a temp dir)")
    parser.add_argument("--shapes", type=int, default=None, help=f"rectangles ({SHAPES:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SHAPES:,} rectangles")
    arguments = parser.parse_args()
    shapes = arguments.shapes or (QUICK_SHAPES if arguments.quick else SHAPES)
    run(arguments.database_url, shapes, arguments.quick or shapes < SHAPES)


if __name__ == "__main__":
    main()
