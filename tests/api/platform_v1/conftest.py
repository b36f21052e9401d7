"""A work-face world: a project in the default space with a manager, workers and a
reviewer, and a dataset of images to make work items on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labelyard.domain import Asset, Project, User
from tests.factories import Factory

API = "/api/platform/v1"


@dataclass
class Work:
    client: TestClient
    factory: Factory
    manager: User
    workers: list[User]
    reviewer: User
    project: Project
    assets: list[Asset]

    def as_(self, user: User) -> dict[str, str]:
        return self.factory.headers(user)

    @property
    def base(self) -> str:
        return f"{API}/projects/{self.project.uuid}"

    def create(self, asset: Asset, **fields: Any) -> dict[str, Any]:
        body = {"assetId": asset.id, "assetType": "image", **fields}
        response = self.client.post(
            f"{self.base}/work-items", json=body, headers=self.as_(self.manager)
        )
        assert response.status_code == 201, response.text
        return response.json()

    def signal(self, user: User, item_id: str, signal: str, task_type: str, **fields: Any) -> Any:
        return self.client.post(
            f"{self.base}/work-items/{item_id}/signals",
            json={"signal": signal, "taskType": task_type, **fields},
            headers=self.as_(user),
        )

    def next(self, user: User, task_type: str | None = None) -> Any:
        query = f"?taskType={task_type}" if task_type else ""
        return self.client.post(f"{self.base}/work-items/next{query}", headers=self.as_(user))


@pytest.fixture
def work(client: TestClient, factory: Factory) -> Work:
    manager = factory.user("manager", ("business",))
    workers = [factory.user(f"worker{n}", ("worker",)) for n in range(3)]
    reviewer = factory.user("reviewer", ("worker",))
    project = factory.project(manager, "roads", labels=("car", "person"))
    _, assets = factory.dataset(manager, 6)
    return Work(client, factory, manager, workers, reviewer, project, assets)
