"""How fast the work queue hands out, takes labels for and completes items over real HTTP.

Starts ``labelyard serve`` on a free port with a fresh data dir (SQLite there, or a throwaway
PostgreSQL cluster from ``scripts/postgres.sh`` with ``--database postgresql``). Setup, timed
apart: the admin logs in, makes a project with three labels and 32 users register; N image
asset rows (one dataset, one batch) go straight into the database, and N work items are made
on them with ``POST /api/platform/v1/projects/{id}/work-items`` from 16 threads. Then:

1. labelling: 16 workers, each its own connection and token, loop ``POST work-items/next
   ?taskType=labeling`` -> ``PUT .../labels`` (1-3 boxes) -> ``complete`` until ``next``
   answers 204;
2. review: 16 other users the same with ``taskType=review``, completing with ``signalOutcome``
   OK, or NOT_OK with a comment for one item in twenty, which goes back to its labeller;
3. rework: the workers drain their returned items again, then the reviewers review them (OK).

A signal is every ``next`` that claimed, every labels PUT and every ``complete``; requests
also count the 204s and failures. Checked afterwards: no item was claimed twice in a pass
(and rework went to its own labeller); in the database every item is COMPLETED with a
history of exactly one labelling and one review start and complete per round, all of one
labeller, and the boxes last written are stored. Targets (SQLite, 2 CPUs): >= 300 signals/s
and p95 <= 100 ms for each kind of request, in the labelling and review phases.
Run: ``.venv/bin/python bench/queue.py [--items N] [--workers N] [--database postgresql]
[--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file has the name of the standard library's queue module, which concurrent.futures
# imports: with bench/ first on the path (as `python bench/queue.py` puts it), that import
# would find this file instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, text

from labelyard.adapters.db.engine import make_engine
from labelyard.config import Settings
from labelyard.domain import DEFAULT_SPACE_ID, Asset, Batch, Dataset, DatasetStatus, User

ITEMS = 10_000
QUICK_ITEMS = 1_000
WORKERS = 16
ADMIN = ("admin", "bench-password-1")
PASSWORD = "queue-bench-pw-7"
LABELS = ("car", "person", "bicycle")
REJECT_ONE_IN = 20  # the first review sends one item in twenty back for rework
TIMEOUT_S = 120.0
MAX_ERRORS = 50  # per client: give up rather than hammer a broken server
CREATE_TRIES = 5
SAMPLES = 5
TARGET_SIGNALS_S = 300.0
TARGET_P95_MS = 100.0
JUDGED = ("labelling", "review")
NONE_LEFT = "next (204, none left)"
ROOT = Path(__file__).resolve().parent.parent


# --- process figures -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux 4.0+), so each phase gets its own peak.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> float:
    # utime and stime are fields 14 and 15; the command name before them may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steal_seconds() -> float:
    # Time this VM's CPUs were ready but the hypervisor ran something else (/proc/stat's
    # 8th figure); when it is large, every figure here is inflated and noisy.
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


class Server:
    """``labelyard serve`` in a subprocess on ``database_url`` (None: SQLite in the data
    dir), with its output in ``log``."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "serve.log"
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("LABELYARD_")}  # fmt: skip
        env |= {
            "LABELYARD_DATA_DIR": str(data_dir),
            "LABELYARD_ADMIN_USERNAME": ADMIN[0],
            "LABELYARD_ADMIN_PASSWORD": ADMIN[1],
        }
        if database_url:
            env["LABELYARD_DATABASE_URL"] = database_url
        settings = Settings(data_dir=data_dir, database_url=database_url)
        self.database_url = settings.resolved_database_url
        command = [
            str(Path(sys.executable).parent / "labelyard"),
            "serve",
            "--port",
            str(self.port),
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"labelyard serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"labelyard serve did not answer:\n{self.log.read_text()}")

    def warnings(self) -> list[str]:
        """The server's output besides its access log and startup banner."""
        lines = self.log.read_text().splitlines()
        return [line for line in lines if line.strip() and not line.startswith(("INFO:", "  "))
                and not line.startswith("labelyard ")]  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def database(kind: str) -> Iterator[str | None]:
    """None for SQLite (the server's own file), or the URL of a throwaway cluster."""
    if kind == "sqlite":
        yield None
        return
    # Not under the bench's scratch dir: postgres runs as another user and must reach it.
    cluster = Path(tempfile.mkdtemp(prefix="labelyard-bench-pg-"))
    cluster.chmod(0o755)
    script = str(ROOT / "scripts" / "postgres.sh")
    try:
        started = subprocess.run(
            [script, "start", str(cluster / "pg")], check=True, capture_output=True, text=True
        )
        yield started.stdout.strip()
    finally:
        subprocess.run([script, "stop", str(cluster / "pg")], capture_output=True)
        cluster.rmdir()


# --- what the clients saw ------------------------------------------------------------------


@dataclass
class Tally:
    """One client's (or, merged, one phase's) requests."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0
    signals: int = 0
    errors: int = 0
    statuses: Counter[int | str] = field(default_factory=Counter)  # of the failures
    samples: list[str] = field(default_factory=list)
    claims: list[tuple[str, str]] = field(default_factory=list)  # (item id, user)
    boxes: dict[str, int] = field(default_factory=dict)  # item id -> boxes written
    rejected: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.requests += other.requests
        self.signals += other.signals
        self.errors += other.errors
        self.statuses.update(other.statuses)
        self.samples.extend(other.samples[: SAMPLES - len(self.samples)])
        self.claims.extend(other.claims)
        self.boxes.update(other.boxes)
        self.rejected.extend(other.rejected)


@dataclass
class Person:
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def call(
    client: httpx.Client, tally: Tally, kind: str, method: str, url: str, **options: Any
) -> httpx.Response | None:
    """One timed request: the answer when it succeeded (a 204 from ``next`` included)."""
    tally.requests += 1
    started = time.perf_counter()
    try:
        response = client.request(method, url, **options)
    except httpx.TransportError as error:
        tally.errors += 1
        tally.statuses[type(error).__name__] += 1
        if len(tally.samples) < SAMPLES:
            tally.samples.append(f"{kind} {method} {url}: {type(error).__name__} {error}")
        return None
    elapsed_ms = (time.perf_counter() - started) * 1000
    if response.status_code == 204 and kind == "next":
        tally.latencies[NONE_LEFT].append(elapsed_ms)
        return response
    if response.is_success:
        tally.latencies[kind].append(elapsed_ms)
        tally.signals += 1
        return response
    tally.errors += 1
    tally.statuses[response.status_code] += 1
    if len(tally.samples) < SAMPLES:
        tally.samples.append(f"{kind} {method} {url}: {response.status_code} {response.text[:300]}")
    return None


def make_boxes(item_id: str, rework: bool) -> list[dict[str, Any]]:
    draw = random.Random(f"{item_id}:{rework}")
    boxes = []
    for _ in range(draw.randint(1, 3)):
        corner = [draw.uniform(0, 500), draw.uniform(0, 350)]
        size = [draw.uniform(5, 140), draw.uniform(5, 130)]
        boxes.append({"bbox": [round(v, 1) for v in corner + size], "label": draw.choice(LABELS)})
    return boxes


def claim(client: httpx.Client, tally: Tally, person: Person, task_type: str) -> str | None:
    """The id of the item ``next`` claimed; None once the stage's queue is empty (or the
    client gave up after too many errors)."""
    while tally.errors < MAX_ERRORS:
        claimed = call(client, tally, "next", "POST", "/work-items/next",
                       params={"taskType": task_type})  # fmt: skip
        if claimed is None:
            continue
        if claimed.status_code == 204:
            return None
        item_id: str = claimed.json()["id"]
        tally.claims.append((item_id, person.name))
        return item_id
    return None


def label_items(person: Person, base: str, rework: bool) -> Tally:
    """Claim, label and complete labelling items until the queue answers 204."""
    tally = Tally()
    with httpx.Client(base_url=base, headers=person.headers, timeout=TIMEOUT_S) as client:
        while (item_id := claim(client, tally, person, "labeling")) is not None:
            item = f"/work-items/{item_id}"
            boxes = make_boxes(item_id, rework)
            if call(client, tally, "labels", "PUT", f"{item}/labels", json={"labels": boxes}):
                tally.boxes[item_id] = len(boxes)
            body = {"signal": "complete", "taskType": "labeling"}
            call(client, tally, "complete", "POST", f"{item}/signals", json=body)
    return tally


def review_items(person: Person, base: str, rejecting: bool) -> Tally:
    """Claim and complete review items until the queue answers 204; while ``rejecting``,
    one item in twenty (a fixed draw per item) is sent back NOT_OK."""
    tally = Tally()
    with httpx.Client(base_url=base, headers=person.headers, timeout=TIMEOUT_S) as client:
        while (item_id := claim(client, tally, person, "review")) is not None:
            body: dict[str, Any] = {"signal": "complete", "taskType": "review",
                                    "signalOutcome": "OK"}  # fmt: skip
            reject = rejecting and zlib.crc32(item_id.encode()) % REJECT_ONE_IN == 0
            if reject:
                body |= {"signalOutcome": "NOT_OK", "feedback": {"comments": ["box too loose"]}}
            done = call(client, tally, "complete", "POST", f"/work-items/{item_id}/signals",
                        json=body)  # fmt: skip
            if done and reject:
                tally.rejected.append(item_id)
    return tally


@dataclass
class Phase:
    name: str
    clients: int
    wall_s: float
    tally: Tally
    server_peak_mib: float
    server_cpu_s: float
    bench_cpu_s: float
    steal_s: float
    double_claims: list[str]


def run_phase(
    name: str, server: Server, people: list[Person], work: Callable[[Person], Tally]
) -> Phase:
    reset_peak(server.pid)
    server_cpu, bench_cpu, steal = cpu_seconds(server.pid), time.process_time(), steal_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(len(people)) as pool:
        tallies = [future.result() for future in [pool.submit(work, p) for p in people]]
    wall = time.perf_counter() - started
    merged = Tally()
    for tally in tallies:
        merged.merge(tally)
    claimers: dict[str, set[str]] = defaultdict(set)
    for item_id, person in merged.claims:
        claimers[item_id].add(person)
    twice = [item for item, count in Counter(i for i, _ in merged.claims).items() if count > 1]
    phase = Phase(
        name,
        len(people),
        wall,
        merged,
        peak_mib(server.pid),
        cpu_seconds(server.pid) - server_cpu,
        time.process_time() - bench_cpu,
        steal_seconds() - steal,
        twice,
    )
    print(f"  {name}: {merged.signals:,} signals in {wall:.1f} s "
          f"({merged.signals / wall:,.0f}/s), {merged.errors} errors", flush=True)  # fmt: skip
    return phase


# --- setup ---------------------------------------------------------------------------------


@dataclass
class World:
    project_uuid: str
    project_id: int
    workers: list[Person]
    reviewers: list[Person]
    setup: dict[str, str]


def register(base: str, name: str) -> Person:
    form = {"username": name, "email": f"{name}@bench.example",
            "password1": PASSWORD, "password2": PASSWORD}  # fmt: skip
    response = httpx.post(f"{base}/api/v1/auth/register", json=form, timeout=TIMEOUT_S)
    if response.status_code != 201:
        raise RuntimeError(f"register {name}: {response.status_code} {response.text}")
    return Person(name, response.json()["key"])


def insert_assets(url: str, count: int) -> list[int]:
    """``count`` image rows in one new dataset of the default space: the work items only
    need them to exist, since labels never decode media."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            owner = connection.scalar(select(User.id).where(User.username == ADMIN[0]))
            values = {"name": "queue bench", "owner_id": owner, "status": DatasetStatus.READY,
                      "space_id": DEFAULT_SPACE_ID}  # fmt: skip
            dataset = connection.execute(
                insert(Dataset.__table__)
                .values(values)
                .returning(Dataset.id, Dataset.storage_prefix)
            ).one()
            batch_id = connection.scalar(
                insert(Batch.__table__)
                .values(dataset_id=dataset.id, name="batch-1")
                .returning(Batch.id)
            )
            rows = [
                {"dataset_id": dataset.id, "batch_id": batch_id, "name": f"image_{n:05d}.jpg",
                 "kind": "image", "storage_key": f"{dataset.storage_prefix}/image_{n:05d}.jpg",
                 "size_bytes": 300_000, "width": 640, "height": 480}
                for n in range(count)
            ]  # fmt: skip
            connection.execute(insert(Asset.__table__), rows)
            ids = connection.scalars(
                select(Asset.id).where(Asset.dataset_id == dataset.id).order_by(Asset.id)
            ).all()
    finally:
        engine.dispose()
    return list(ids)


def create_items(base: str, admin: Person, asset_ids: list[int], clients: int) -> Tally:
    """A work item on each asset, due in one to four hours, of varied difficulty, so that
    the queue's order (due soonest, then hardest, then oldest) has work to do. The first
    is made alone (it makes the project's Default batch and work task); a 409 (two
    creates raced) is retried, as its answer asks, and counted."""

    def create(share: list[int]) -> Tally:
        tally = Tally()
        with httpx.Client(base_url=base, headers=admin.headers, timeout=TIMEOUT_S) as client:
            for asset_id in share:
                body = {"assetId": asset_id, "assetType": "image",
                        "dueInSeconds": 3600 + asset_id * 7919 % 10_800,
                        "difficulty": asset_id * 31 % 101}  # fmt: skip
                for _ in range(CREATE_TRIES):
                    conflicts = tally.statuses[409]
                    made = call(client, tally, "create", "POST", "/work-items", json=body)
                    if made is not None or tally.statuses[409] == conflicts:
                        break
        return tally

    merged = create(asset_ids[:1])
    with ThreadPoolExecutor(clients) as pool:
        shares = [asset_ids[1 + n :: clients] for n in range(clients)]
        for tally in pool.map(create, shares):
            merged.merge(tally)
    if merged.signals != len(asset_ids):
        raise RuntimeError(f"creating work items failed: {merged.statuses} {merged.samples}")
    return merged


def build_world(server: Server, items: int, clients: int) -> World:
    setup = {}
    started = time.perf_counter()
    login = httpx.post(f"{server.base}/api/v1/auth/login",
                       data={"username": ADMIN[0], "password": ADMIN[1]})  # fmt: skip
    login.raise_for_status()
    admin = Person(ADMIN[0], login.json()["key"])
    with httpx.Client(base_url=server.base, headers=admin.headers, timeout=TIMEOUT_S) as api:
        labels = [{"name": name} for name in LABELS]
        created = api.post("/api/v1/projects", json={"name": "queue bench", "labels": labels})
        created.raise_for_status()
        legacy_id = created.json()["id"]
        spaces = api.get("/api/platform/v1/spaces").json()["items"]
        space = next(s for s in spaces if s["default"])
        projects = api.get(f"/api/platform/v1/spaces/{space['id']}/projects").json()["items"]
        project_uuid = next(p["id"] for p in projects if p["legacyId"] == legacy_id)
    setup["login, project"] = f"{time.perf_counter() - started:.2f} s"

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        names = [f"labeller{n:02d}" for n in range(clients)]
        names += [f"reviewer{n:02d}" for n in range(clients)]
        people = list(pool.map(lambda name: register(server.base, name), names))
    setup[f"{len(people)} users registered"] = f"{time.perf_counter() - started:.2f} s"

    started = time.perf_counter()
    asset_ids = insert_assets(server.database_url, items)
    setup[f"{items:,} asset rows (SQL)"] = f"{time.perf_counter() - started:.2f} s"

    started = time.perf_counter()
    base = f"{server.base}/api/platform/v1/projects/{project_uuid}"
    made = create_items(base, admin, asset_ids, clients)
    seconds = time.perf_counter() - started
    times = made.latencies["create"]
    setup[f"{items:,} work items over HTTP ({clients} clients)"] = (
        f"{seconds:.2f} s, {items / seconds:,.0f} items/s, p50 {percentile(times, 50):.0f} ms, "
        f"p95 {percentile(times, 95):.0f} ms, {made.statuses[409]} conflicts (409) retried"
    )
    return World(project_uuid, legacy_id, people[:clients], people[clients:], setup)


# --- checks --------------------------------------------------------------------------------


HISTORY = text("""
    SELECT s.work_item_id,
        SUM(CASE WHEN s.signal = 'start' AND s.task_type = 'labeling' THEN 1 ELSE 0 END),
        SUM(CASE WHEN s.signal = 'complete' AND s.task_type = 'labeling' THEN 1 ELSE 0 END),
        SUM(CASE WHEN s.signal = 'start' AND s.task_type = 'review' THEN 1 ELSE 0 END),
        SUM(CASE WHEN s.signal = 'complete' AND s.task_type = 'review' THEN 1 ELSE 0 END),
        SUM(CASE WHEN s.outcome = 'NOT_OK' THEN 1 ELSE 0 END),
        SUM(CASE WHEN s.signal NOT IN ('start', 'complete') THEN 1 ELSE 0 END),
        COUNT(DISTINCT CASE WHEN s.task_type = 'labeling' THEN s.actor_id END)
    FROM work_signals s JOIN work_items i ON i.id = s.work_item_id
    WHERE i.project_id = :project
    GROUP BY s.work_item_id
""")
SHAPES = text("""
    SELECT COUNT(*) FROM labeled_shapes
    WHERE job_id IN (SELECT j.id FROM jobs j JOIN segments g ON g.id = j.segment_id
                     JOIN tasks t ON t.id = g.task_id WHERE t.project_id = :project)
""")


def check_database(engine: Engine, world: World, items: int, boxes: int, rejected: int) -> list:
    """(what, passed, detail) for the database's record of the run (passed None: shown,
    not judged)."""
    checks = []
    project = {"project": world.project_id}
    with engine.connect() as connection:
        statuses = dict(connection.execute(
            text("SELECT status, COUNT(*) FROM work_items WHERE project_id = :project "
                 "GROUP BY status"), project).all())  # fmt: skip
        checks.append(("every item COMPLETED", statuses == {"COMPLETED": items},
                       f"work_items by status: {statuses}"))  # fmt: skip
        bad, seen_rejections, others = [], 0, 0
        rows = connection.execute(HISTORY, project).all()
        for item_id, starts, completes, reviews, reviewed, not_ok, other, labellers in rows:
            rounds = 1 + not_ok
            seen_rejections += not_ok
            others += other
            if (starts, completes, reviews, reviewed, labellers) != (rounds,) * 4 + (1,):
                bad.append(f"item {item_id}: {starts} labelling starts, {completes} completes, "
                           f"{reviews} review starts, {reviewed} completes, {not_ok} NOT_OK, "
                           f"{labellers} labellers")  # fmt: skip
        checks.append((
            "history: one labelling start and complete, one review start and complete per "
            "round (1 + NOT_OKs), one labeller per item",
            not bad and len(rows) == items,
            f"{len(rows):,} items with history, {len(bad)} wrong {bad[:3]}",
        ))  # fmt: skip
        checks.append(("history: NOT_OKs as sent, no other signals (expire, release)",
                       seen_rejections == rejected and others == 0,
                       f"{seen_rejections} NOT_OK in the history ({rejected} sent), "
                       f"{others} other signals"))  # fmt: skip
        stored = connection.scalar(SHAPES, project)
        checks.append(("the boxes last written are stored", stored == boxes,
                       f"{stored:,} shapes stored, {boxes:,} written last"))  # fmt: skip
    return checks


def check_claims(phases: dict[str, Phase], items: int) -> list:
    checks = []
    for phase in phases.values():
        checks.append((f"{phase.name}: no item claimed twice", not phase.double_claims,
                       f"{len(phase.tally.claims):,} claims, {len(phase.double_claims)} "
                       f"items claimed more than once {phase.double_claims[:3]}"))  # fmt: skip
    for name in JUDGED:
        claimed = {item for item, _ in phases[name].tally.claims}
        checks.append((f"{name}: every item claimed", len(claimed) == items,
                       f"{len(claimed):,} of {items:,}"))  # fmt: skip
    labeller = dict(phases["labelling"].tally.claims)
    rejected = set(phases["review"].tally.rejected)
    redone = phases["rework"].tally.claims
    strangers = [item for item, person in redone if labeller.get(item) != person]
    checks.append(("rework: each returned item went to its own labeller, once",
                   not strangers and {item for item, _ in redone} == rejected,
                   f"{len(redone)} rework claims for {len(rejected)} NOT_OK; "
                   f"{len(strangers)} to another worker"))  # fmt: skip
    rereviewed = {item for item, _ in phases["re-review"].tally.claims}
    checks.append(("re-review: each reworked item reviewed again", rereviewed == rejected,
                   f"{len(rereviewed)} of {len(rejected)}"))  # fmt: skip
    return checks


# --- report --------------------------------------------------------------------------------


def percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def judge(phase: Phase, dialect: str) -> list:
    if phase.name not in JUDGED:
        return []
    rate = phase.tally.signals / phase.wall_s
    if dialect != "sqlite":
        return [(f"{phase.name}: SQLite's targets, not judged on {dialect}", None, "")]
    checks = [(f"{phase.name}: >= {TARGET_SIGNALS_S:g} signals/s", rate >= TARGET_SIGNALS_S,
               f"{rate:,.0f}/s")]  # fmt: skip
    for kind, values in phase.tally.latencies.items():
        if kind == NONE_LEFT:
            continue  # a client's last request, not work
        p95 = percentile(values, 95)
        checks.append((f"{phase.name}: p95 {kind} <= {TARGET_P95_MS:g} ms",
                       p95 <= TARGET_P95_MS, f"{p95:.1f} ms"))  # fmt: skip
    return checks


def report(
    header: str, world: World, phases: list[Phase], checks: list, noise: str, warnings: list[str]
) -> None:
    print()
    print(header)
    print("setup (not in the figures below):")
    for what, figure in world.setup.items():
        print(f"  {what:<40} {figure}")
    print()
    print(f"{'phase':<11} {'clients':>7} {'wall':>8} {'signals':>8} {'signals/s':>9} "
          f"{'requests':>8} {'req/s':>6} {'errors':>6} {'server peak':>11} {'server CPU':>10} "
          f"{'bench CPU':>9} {'steal':>6}")  # fmt: skip
    for p in phases:
        t = p.tally
        print(f"{p.name:<11} {p.clients:>7} {p.wall_s:6.1f} s {t.signals:>8,} "
              f"{t.signals / p.wall_s:>9,.0f} {t.requests:>8,} {t.requests / p.wall_s:>6,.0f} "
              f"{t.errors:>6} {p.server_peak_mib:>7.0f} MiB {p.server_cpu_s:>8.1f} s "
              f"{p.bench_cpu_s:>7.1f} s {p.steal_s:>4.1f} s")  # fmt: skip
    print()
    print(f"{'latency, ms':<34} {'count':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for p in phases:
        for kind, values in sorted(p.tally.latencies.items()):
            print(f"{p.name + ': ' + kind:<34} {len(values):>7,} {percentile(values, 50):>7.1f} "
                  f"{percentile(values, 95):>7.1f} {percentile(values, 99):>7.1f} "
                  f"{max(values):>7.1f}")  # fmt: skip
    samples = [sample for p in phases for sample in p.tally.samples][:SAMPLES]
    if samples:
        statuses = sum((p.tally.statuses for p in phases), Counter())
        print(f"\nerrors by status: {dict(statuses)}; samples:")
        for sample in samples:
            print(f"  {sample}")
    if warnings:
        print(f"\nserver log: {len(warnings)} lines besides requests, e.g.:")
        for line in warnings[:SAMPLES]:
            print(f"  {line[:300]}")
    print()
    for what, passed, detail in checks:
        verdict = {True: "PASS", False: "FAIL", None: "  --"}[passed]
        print(f"{verdict}  {what}{': ' + detail if detail else ''}")
    print()
    print(f"signals: each next that claimed, each labels PUT, each complete; requests add the "
          f"204s and failures. Targets (SQLite, 2 CPUs): >= {TARGET_SIGNALS_S:g} signals/s and "
          f"p95 <= {TARGET_P95_MS:g} ms per kind, in the labelling and review phases. Server "
          f"peak: VmHWM, reset before each phase. Bench and server share the machine's "
          f"CPUs.")  # fmt: skip
    print(noise)


def run(kind: str, items: int, clients: int) -> bool:
    with (
        tempfile.TemporaryDirectory(prefix="labelyard-bench-") as scratch_name,
        database(kind) as url,
    ):
        server = Server(Path(scratch_name) / "data", url)
        try:
            print(f"labelyard serve: pid {server.pid}, {server.base}; setting up {items:,} "
                  f"items...", flush=True)  # fmt: skip
            world = build_world(server, items, clients)
            base = f"{server.base}/api/platform/v1/projects/{world.project_uuid}"
            load, steal = os.getloadavg()[0], steal_seconds()
            phases = {
                phase.name: phase
                for phase in (
                    run_phase("labelling", server, world.workers,
                              lambda p: label_items(p, base, rework=False)),
                    run_phase("review", server, world.reviewers,
                              lambda p: review_items(p, base, rejecting=True)),
                    run_phase("rework", server, world.workers,
                              lambda p: label_items(p, base, rework=True)),
                    run_phase("re-review", server, world.reviewers,
                              lambda p: review_items(p, base, rejecting=False)),
                )
            }  # fmt: skip
            noise = (f"CPU steal during the phases: {steal_seconds() - steal:.1f} s; load "
                     f"average {load:.1f} before, {os.getloadavg()[0]:.1f} after, on "
                     f"{os.cpu_count()} CPUs.")  # fmt: skip
            boxes = Tally()
            for phase in phases.values():
                boxes.merge(phase.tally)
            engine = make_engine(server.database_url)
            try:
                checks = check_claims(phases, items)
                checks += check_database(engine, world, items, sum(boxes.boxes.values()),
                                         len(phases["review"].tally.rejected))  # fmt: skip
                errors = sum(p.tally.errors for p in phases.values())
                checks.append(("no failed requests", errors == 0, f"{errors} errors"))
                for phase in phases.values():
                    checks += judge(phase, engine.dialect.name)
                with engine.connect():
                    version = ".".join(map(str, engine.dialect.server_version_info or ()))
                header = (f"labelyard work queue: {engine.dialect.name} {version}, Python "
                          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs; {items:,} items, "
                          f"{clients} workers and {clients} reviewers")  # fmt: skip
            finally:
                engine.dispose()
            report(header, world, list(phases.values()), checks, noise, server.warnings())
        except BaseException:
            lines = server.warnings()
            print(f"--- labelyard serve output besides requests ({len(lines)} lines), last 40 ---",
                  *lines[-40:], sep="\n", file=sys.stderr)  # fmt: skip
            raise
        finally:
            server.stop()
    return all(passed is not False for _, passed, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=None, help=f"work items ({ITEMS:,})")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"workers ({WORKERS})")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ITEMS:,} items")
    arguments = parser.parse_args()
    items = arguments.items or (QUICK_ITEMS if arguments.quick else ITEMS)
    sys.exit(0 if run(arguments.database, items, arguments.workers) else 1)


if __name__ == "__main__":
    main()
