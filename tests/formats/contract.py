"""The contract every annotation format's tests inherit.

A source task holds one small scene per feature a format may carry (a tag, a rectangle,
an occluded box, a track...), each on a frame or in a corner of its own, so that one
scene cannot blur into another. A format's contract says which features it carries and,
for each one it cannot carry, why. The tests export the source through the API, import
the file into a fresh task, and compare feature by feature: what is carried comes back
equal, what is not does not (so the list cannot silently rot). Datumaro's own importer
reads the dataset export, and a file of another format is refused. The scenes, and how
annotations are compared, are in ``tests.formats.scenes``."""

from __future__ import annotations

import io
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import datumaro as dm
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.formats.registry import Format, all_formats
from tests.conftest import _empty
from tests.factories import Factory
from tests.formats.scenes import (
    FEATURES,
    FRAMES,
    HEIGHT,
    LABELS,
    SHAPE_KINDS,
    WIDTH,
    View,
    as_body,
    facts,
    scene,
    source_objects,
    view,
)
from tests.support.media import jpeg, mp4

API = "/api/v1"


# --- labelyard, through its API -------------------------------------------------------------


@dataclass(frozen=True)
class TaskRef:
    id: int
    label_ids: dict[str, int]
    spec_ids: dict[tuple[str, str], int]

    def view(self, objects: dict[str, Any], *, digits: int) -> View:
        names = {number: name for name, number in self.label_ids.items()}
        specs = {number: name for (_, name), number in self.spec_ids.items()}
        return view(objects, names, specs, digits=digits)


class Yard:
    """A running labelyard and one user, spoken to as CVAT's clients speak to it."""

    def __init__(self, client: TestClient, headers: dict[str, str], scratch: Path) -> None:
        self.client = client
        self.headers = headers
        self.scratch = scratch

    def _wait(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            response = self.client.request(method, url, headers=self.headers, **kwargs)
            if response.status_code != 202:
                return response
            assert time.monotonic() < deadline, f"{url} still answers 202"
            time.sleep(0.01)

    def task(self, media: str) -> TaskRef:
        """A task with the contract's labels and FRAMES frames (images, or a video)."""
        made = self.client.post(
            f"{API}/tasks", headers=self.headers, json={"name": "contract", "labels": LABELS}
        )
        assert made.status_code == 201, made.text
        task = made.json()
        if media == "video":
            clip = mp4(self.scratch / "clip.mp4", frames=FRAMES, width=WIDTH, height=HEIGHT, gop=2)
            files = [("client_files[0]", ("clip.mp4", clip.read_bytes()))]
        else:
            files = [
                (f"client_files[{i}]", (f"img_{i}.jpg", jpeg(WIDTH, HEIGHT, shade=i * 40)))
                for i in range(FRAMES)
            ]
        posted = self.client.post(
            f"{API}/tasks/{task['id']}/data",
            headers=self.headers,
            data={"image_quality": "90"},
            files=files,
        )
        assert posted.status_code == 202, posted.text
        deadline = time.monotonic() + 30
        while True:
            status = self.client.get(f"{API}/tasks/{task['id']}/status", headers=self.headers)
            if status.json()["state"] in ("Finished", "Failed"):
                assert status.json()["state"] == "Finished", status.text
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        label_ids = {label["name"]: label["id"] for label in task["labels"]}
        spec_ids = {
            (label["name"], spec["name"]): spec["id"]
            for label in task["labels"]
            for spec in label["attributes"]
        }
        return TaskRef(task["id"], label_ids, spec_ids)

    def put(self, task: TaskRef, objects: dict[str, list[dict[str, Any]]]) -> None:
        body = as_body(objects, task.label_ids, task.spec_ids)
        url = f"{API}/tasks/{task.id}/annotations"
        saved = self.client.put(url, headers=self.headers, json=body)
        assert saved.status_code == 200, saved.text

    def stored(self, task: TaskRef) -> dict[str, Any]:
        got = self.client.get(f"{API}/tasks/{task.id}/annotations", headers=self.headers)
        assert got.status_code == 200, got.text
        answer: dict[str, Any] = got.json()
        return answer

    def export(self, task: TaskRef, format_name: str, *, dataset: bool = False) -> bytes:
        """CVAT's flow: 202 while it runs, 201 when ready, 200 with the zip (each export
        the contract asks for is the first of its kind for its task)."""
        url = f"{API}/tasks/{task.id}/{'dataset' if dataset else 'annotations'}"
        params = {"format": format_name}
        first = self.client.get(url, headers=self.headers, params=params)
        assert first.status_code == 202, first.text
        ready = self._wait("GET", url, params=params)
        assert ready.status_code == 201, ready.text
        got = self.client.get(url, headers=self.headers, params=params | {"action": "download"})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/zip"
        assert "attachment" in got.headers["content-disposition"]
        return got.content

    def import_file(self, task: TaskRef, format_name: str, content: bytes) -> httpx.Response:
        """The import's final answer: 201, or 400 with the reason."""
        url = f"{API}/tasks/{task.id}/annotations"
        params = {"format": format_name}
        files = {"annotation_file": ("annotations.zip", content)}
        first = self.client.put(url, headers=self.headers, params=params, files=files)
        assert first.status_code == 202, first.text
        return self._wait("PUT", url, params=params)


@dataclass
class Trip:
    """One export-then-import: the source as stored, and what came back."""

    source: View
    back: View
    file: bytes


class Trips:
    """The round trips of one format, each made once for its test class."""

    def __init__(self, yard: Yard, contract: type[FormatContract]) -> None:
        self.yard = yard
        self.contract = contract
        self._sources: dict[frozenset[str], TaskRef] = {}
        # A trip that failed fails again for each test that asks for it, without retrying.
        self._trips: dict[frozenset[str], Trip | str] = {}
        self._dataset: bytes | None = None

    @property
    def main_features(self) -> frozenset[str]:
        """Every feature but those that spoil the whole file."""
        return frozenset(FEATURES) - self.contract.breaks_file

    def source(self, features: frozenset[str] | None = None) -> TaskRef:
        features = self.main_features if features is None else features
        if features not in self._sources:
            task = self.yard.task(self.contract.media)
            self.yard.put(task, source_objects(features))
            self._sources[features] = task
        return self._sources[features]

    def trip(self, features: frozenset[str] | None = None) -> Trip:
        """Export the scenes of ``features`` and import the file into a fresh task."""
        features = self.main_features if features is None else features
        if features not in self._trips:
            try:
                self._trips[features] = self._make_trip(features)
            except AssertionError as failure:
                self._trips[features] = str(failure)
        trip = self._trips[features]
        assert isinstance(trip, Trip), trip
        return trip

    def _make_trip(self, features: frozenset[str]) -> Trip:
        name, digits = self.contract.format_name, self.contract.digits
        source = self.source(features)
        file = self.yard.export(source, name)
        target = self.yard.task(self.contract.media)
        done = self.yard.import_file(target, name, file)
        assert done.status_code == 201, done.text
        return Trip(
            source.view(self.yard.stored(source), digits=digits),
            target.view(self.yard.stored(target), digits=digits),
            file,
        )

    def dataset(self) -> bytes:
        """The dataset export of every scene Datumaro's importer can read."""
        if self._dataset is None:
            name = self.contract.format_name
            readable = self.main_features - set(self.contract.unreadable_by_datumaro)
            self._dataset = self.yard.export(self.source(readable), name, dataset=True)
        return self._dataset


# --- the contract ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Becomes:
    """A feature the format cannot carry as it is, that comes back as another kind of
    shape in the same place (e.g. a box drawn into a mask)."""

    kind: str
    why: str


class FormatContract:
    """What one format carries through an export and an import, and what it cannot.

    Subclasses name the format and sort every feature of ``FEATURES`` into ``carries``
    or ``cannot_carry`` (feature -> why, or ``Becomes``). ``broken`` names the features
    whose test a bug makes fail (feature -> the bug): those tests are strict xfails, so
    a fix shows. A feature in ``breaks_file`` spoils the whole file: its scene is left
    out of the source the other tests share, and tried in a round trip of its own."""

    __test__ = False

    format_name: ClassVar[str]
    carries: ClassVar[frozenset[str]]
    cannot_carry: ClassVar[dict[str, str | Becomes]]
    broken: ClassVar[dict[str, str]] = {}
    breaks_file: ClassVar[frozenset[str]] = frozenset()
    # Features the format holds that Datumaro's importer cannot read (feature -> why):
    # their scenes are left out of the dataset export it is given.
    unreadable_by_datumaro: ClassVar[dict[str, str]] = {}
    # A bug that breaks every round trip of the format.
    round_trip_bug: ClassVar[str | None] = None
    # Decimals of coordinates the format keeps.
    digits: ClassVar[int] = 4
    # "images", or "video" for the tracking formats.
    media: ClassVar[str] = "images"
    # What Datumaro's own importer finds in the dataset export: items, and annotations
    # by Datumaro's type name.
    dataset_counts: ClassVar[dict[str, int]]
    dataset_bug: ClassVar[str | None] = None
    # A format whose file is sent to this one, to be refused.
    foreign_format: ClassVar[str] = "Datumaro 1.0"
    foreign_bug: ClassVar[str | None] = None

    @classmethod
    def format(cls) -> Format:
        (found,) = [f for f in all_formats() if f.display_name == cls.format_name]
        return found

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "feature" not in metafunc.fixturenames:
            return
        carried = metafunc.function.__name__ == "test_carries"
        features = sorted(self.carries if carried else self.cannot_carry, key=FEATURES.index)
        params = []
        for feature in features:
            bug = self.round_trip_bug or self.broken.get(feature)
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            params.append(pytest.param(feature, id=feature, marks=marks))
        # A format that carries everything still says so, rather than skip the test.
        metafunc.parametrize("feature", params or [pytest.param(None, id="nothing")])

    @pytest.fixture(scope="class")
    @classmethod
    def trips(
        cls, engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Trips]:
        # One labelyard per class: its tests share the source tasks and the round trips.
        scratch = tmp_path_factory.mktemp("contract")
        settings = Settings(data_dir=scratch / "data", database_url=database_url)
        app = create_app(settings, engine=engine)
        try:
            with TestClient(app) as client:
                factory = Factory(app.state.session_factory)
                headers = factory.headers(factory.user("contract"))
                yield Trips(Yard(client, headers, scratch), cls)
        finally:
            app.state.runner.shutdown()
            _empty(engine)

    # --- the declaration itself ---

    def test_every_feature_is_declared_once(self) -> None:
        declared = Counter([*self.carries, *self.cannot_carry])
        assert sorted(declared, key=FEATURES.index) == list(FEATURES)
        assert [feature for feature, times in declared.items() if times > 1] == []
        assert set(self.broken) <= set(FEATURES)
        assert self.breaks_file <= set(self.broken)
        for feature, outcome in self.cannot_carry.items():
            if isinstance(outcome, Becomes):
                assert outcome.kind in SHAPE_KINDS and outcome.why
                shapes = scene(feature, digits=self.digits).every_shape()
                assert shapes, f"{feature} has no shapes to become {outcome.kind}s"

    # --- (a) and (b): export, then import into a fresh task ---

    def _round_trip_of(self, trips: Trips, feature: str) -> tuple[list[Any], list[Any], Trip]:
        """The feature's facts in the source and in what came back."""
        trip = trips.trip(trips.main_features | {feature})
        wanted = scene(feature, digits=self.digits)
        expected = facts(feature, wanted, trip.source)
        assert expected, f"the source has no {feature}"
        return expected, facts(feature, wanted, trip.back), trip

    def test_carries(self, trips: Trips, feature: str | None) -> None:
        if feature is None:
            assert set(self.cannot_carry) == set(FEATURES)
            return
        expected, back, _ = self._round_trip_of(trips, feature)
        assert back == expected

    def test_cannot_carry(self, trips: Trips, feature: str | None) -> None:
        if feature is None:
            assert self.carries == set(FEATURES)
            return
        expected, back, trip = self._round_trip_of(trips, feature)
        assert back != expected, f"{self.format_name} carries {feature}: move it to carries"
        outcome = self.cannot_carry[feature]
        if isinstance(outcome, Becomes):
            wanted = scene(feature, digits=self.digits)
            back_as = {
                shape.geometry: {got.kind for got in trip.back.every_shape() if got.near(shape)}
                for shape in wanted.every_shape()
            }
            assert all(outcome.kind in kinds for kinds in back_as.values()), back_as

    # --- (c) Datumaro's own importer reads the dataset export ---

    def test_datumaro_reads_the_dataset_export(
        self, trips: Trips, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        if self.dataset_bug:
            request.applymarker(pytest.mark.xfail(strict=True, reason=self.dataset_bug))
        folder = tmp_path / "dataset"
        with zipfile.ZipFile(io.BytesIO(trips.dataset())) as bundle:
            bundle.extractall(folder)
        dataset = dm.Dataset.import_from(str(folder), self.format().importer)
        counts = Counter(a.type.name for item in dataset for a in item.annotations)
        found = {"items": len(dataset), **counts}
        assert found == self.dataset_counts, found
        without_images = [
            item.id
            for item in dataset
            if not (isinstance(item.media, dm.Image) and item.media.has_data)
        ]
        assert without_images == []

    # --- (d) a file in another format is refused, and changes nothing ---

    def test_a_file_in_another_format_is_refused(
        self, trips: Trips, request: pytest.FixtureRequest
    ) -> None:
        if self.foreign_bug:
            request.applymarker(pytest.mark.xfail(strict=True, reason=self.foreign_bug))
        source = trips.source()
        foreign = trips.yard.export(source, self.foreign_format)
        # What other tests read from the source is made before this import, which a bug
        # could let through.
        trips.dataset()
        if not self.round_trip_bug:
            trips.trip()
        before = trips.yard.stored(source)
        done = trips.yard.import_file(source, self.format_name, foreign)
        assert done.status_code == 400, done.text
        assert f"not {self.format_name}" in done.json()["detail"]
        assert trips.yard.stored(source) == before
