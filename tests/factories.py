"""Small factories for tests: users with tokens, projects, tasks with jobs."""

from __future__ import annotations

from collections.abc import Iterable

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from labelyard.domain import (
    ApiToken,
    Asset,
    Batch,
    Dataset,
    Job,
    Label,
    Project,
    Task,
    TaskFrame,
    TaskState,
    User,
)
from labelyard.services import jobs
from labelyard.services.auth import _digest, new_token_key
from labelyard.services.uow import UnitOfWork

PASSWORD = "correct-horse-battery"
# Hashing is slow by design: every factory user shares this one hash, made with cheap
# argon2id parameters (a hash carries its own, so checking it takes milliseconds, and
# tests that sign in many times stay fast).
PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


class Factory:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._tokens: dict[int, str] = {}

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def user(
        self,
        username: str,
        groups: Iterable[str] = ("user",),
        *,
        superuser: bool = False,
        email: str | None = None,
        active: bool = True,
    ) -> User:
        with self.uow() as uow:
            user = User(
                username=username,
                email=email if email is not None else f"{username}@example.com",
                password_hash=PASSWORD_HASH,
                is_superuser=superuser,
                is_staff=superuser,
                is_active=active,
            )
            user.set_groups(list(groups))
            uow.session.add(user)
            uow.flush()
            key = new_token_key()
            uow.session.add(ApiToken(user_id=user.id, key_hash=_digest(key)))
            uow.commit()
            self._tokens[user.id] = key
            return user

    def admin(self, username: str = "admin") -> User:
        return self.user(username, ("admin",), superuser=True)

    def headers(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Token {self._tokens[user.id]}"}

    def project(
        self, owner: User, name: str = "project", *, assignee: User | None = None,
        labels: Iterable[str] = ("car",),
    ) -> Project:  # fmt: skip
        with self.uow() as uow:
            project = Project(
                name=name,
                owner_id=owner.id,
                assignee_id=assignee.id if assignee else None,
                labels=[Label(name=n, color="#ff0000") for n in labels],
            )
            uow.session.add(project)
            uow.commit()
            return project

    def task(
        self,
        owner: User | None,
        name: str = "task",
        *,
        assignee: User | None = None,
        project: Project | None = None,
        labels: Iterable[str] = ("car",),
        frames: int = 0,
        segment_size: int = 0,
        overlap: int = 0,
        job_assignees: Iterable[User | None] = (),
        job_reviewers: Iterable[User | None] = (),
    ) -> Task:
        """A task; with ``frames``, segments and jobs made as data would make them."""
        with self.uow() as uow:
            task = Task(
                name=name,
                owner_id=owner.id if owner else None,
                assignee_id=assignee.id if assignee else None,
                project_id=project.id if project else None,
                segment_size=segment_size,
                overlap=overlap,
                size=frames,
                mode="annotation" if frames else "",
            )
            if project is None:
                task.own_labels = [Label(name=n, color="#00ff00") for n in labels]
            uow.session.add(task)
            uow.flush()
            if frames:
                ranges = jobs.segment_ranges(0, frames, segment_size, overlap)
                made = jobs.add_segments(uow, task, ranges)
                for job, user in zip(made, job_assignees, strict=False):
                    job.assignee_id = user.id if user else None
                for job, user in zip(made, job_reviewers, strict=False):
                    job.reviewer_id = user.id if user else None
            uow.commit()
            return task

    def jobs_of(self, task: Task) -> list[Job]:
        with self.uow() as uow:
            task = uow.session.get_one(Task, task.id)
            return [job for segment in task.segments for job in segment.jobs]

    def dataset(
        self, owner: User | None, images: int = 3, *, name: str = "dataset", space_id: int = 1
    ) -> tuple[Dataset, list[Asset]]:
        """A ready dataset of ``images`` image assets (rows only: nothing is stored)."""
        with self.uow() as uow:
            dataset = Dataset(
                name=name, owner_id=owner.id if owner else None, status="ready", space_id=space_id
            )
            batch = Batch(name="batch-1")
            dataset.batches.append(batch)
            uow.session.add(dataset)
            uow.flush()
            assets = [
                Asset(
                    dataset_id=dataset.id,
                    batch_id=batch.id,
                    name=f"image_{number:05d}.jpg",
                    kind="image",
                    storage_key=f"{dataset.storage_prefix}/image_{number:05d}.jpg",
                    size_bytes=1000,
                    width=640,
                    height=480,
                )
                for number in range(images)
            ]
            uow.session.add_all(assets)
            uow.commit()
            return dataset, assets

    def framed_task(
        self, owner: User, project: Project, dataset: Dataset, assets: list[Asset],
        *, segment_size: int = 0, name: str = "framed task",
    ) -> Task:  # fmt: skip
        """A task in ``project`` whose frames are ``assets`` of ``dataset`` (one frame
        each), cut into jobs, in progress: as task data would leave it."""
        with self.uow() as uow:
            task = Task(
                name=name, owner_id=owner.id, project_id=project.id, dataset_id=dataset.id,
                size=len(assets), mode="annotation", segment_size=segment_size, overlap=0,
                chunk_size=10, state=TaskState.IN_PROGRESS,
            )  # fmt: skip
            uow.session.add(task)
            uow.flush()
            uow.session.add_all(
                TaskFrame(
                    task_id=task.id,
                    frame=number,
                    asset_id=asset.id,
                    asset_frame=0,
                    name=asset.name,
                    width=asset.width,
                    height=asset.height,
                )
                for number, asset in enumerate(assets)
            )
            jobs.add_segments(uow, task, jobs.segment_ranges(0, len(assets), segment_size, 0))
            uow.commit()
            return task
