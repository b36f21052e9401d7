"""What the CVAT-compatible face answers, built from entities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from labelyard.api.deps import Links
from labelyard.domain import ClientEvent, Job, Label, Project, Task, User


class BasicUserOut(BaseModel):
    url: str
    id: int
    username: str
    first_name: str
    last_name: str

    @classmethod
    def of(cls, user: User, links: Links) -> BasicUserOut:
        return cls(
            url=links.of("users", user.id),
            id=user.id,
            username=user.username,
            first_name=user.first_name,
            last_name=user.last_name,
        )

    @classmethod
    def maybe(cls, user: User | None, links: Links) -> BasicUserOut | None:
        return cls.of(user, links) if user is not None else None


class UserOut(BasicUserOut):
    email: str
    groups: list[str]
    is_staff: bool
    is_superuser: bool
    is_active: bool
    last_login: datetime | None
    date_joined: datetime

    @classmethod
    def of(cls, user: User, links: Links) -> UserOut:
        return cls(
            **BasicUserOut.of(user, links).model_dump(),
            email=user.email,
            groups=user.groups,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            is_active=user.is_active,
            last_login=user.last_login,
            date_joined=user.date_joined,
        )


class AttributeOut(BaseModel):
    id: int
    name: str
    mutable: bool
    input_type: str
    default_value: str
    values: list[str]


class LabelOut(BaseModel):
    id: int
    name: str
    color: str
    attributes: list[AttributeOut]

    @classmethod
    def of(cls, label: Label) -> LabelOut:
        return cls(
            id=label.id,
            name=label.name,
            color=label.color,
            attributes=[
                AttributeOut(
                    id=spec.id,
                    name=spec.name,
                    mutable=spec.mutable,
                    input_type=spec.input_type,
                    default_value=spec.default_value,
                    values=list(spec.values),
                )
                for spec in label.attributes
            ],
        )


class SegmentJobOut(BaseModel):
    url: str
    id: int
    assignee: BasicUserOut | None
    reviewer: BasicUserOut | None
    status: str


class SegmentOut(BaseModel):
    start_frame: int
    stop_frame: int
    jobs: list[SegmentJobOut]


class TeamOut(BaseModel):
    annotators: list[int]
    reviewers: list[int]


class TaskOut(BaseModel):
    url: str
    id: int
    name: str
    project_id: int | None
    mode: str
    owner: BasicUserOut | None
    assignee: BasicUserOut | None
    bug_tracker: str
    created_date: datetime
    updated_date: datetime
    overlap: int | None
    segment_size: int
    z_order: bool
    status: str
    state: str
    labels: list[LabelOut]
    segments: list[SegmentOut]
    data_chunk_size: int | None
    data_compressed_chunk_type: str
    data_original_chunk_type: str
    size: int
    image_quality: int
    data: int | None
    dimension: str
    subset: str
    source_task_id: int | None
    # The dataset the task's media is in (seed 000: a task binds one dataset).
    dataset_id: int | None
    team: TeamOut

    @classmethod
    def of(cls, task: Task, links: Links) -> TaskOut:
        return cls(
            url=links.of("tasks", task.id),
            id=task.id,
            name=task.name,
            project_id=task.project_id,
            mode=task.mode,
            owner=BasicUserOut.maybe(task.owner, links),
            assignee=BasicUserOut.maybe(task.assignee, links),
            bug_tracker=task.bug_tracker,
            created_date=task.created_date,
            updated_date=task.updated_date,
            overlap=task.overlap,
            segment_size=task.segment_size,
            z_order=task.z_order,
            status=task.status,
            state=task.state,
            labels=[LabelOut.of(label) for label in task.labels],
            segments=[
                SegmentOut(
                    start_frame=segment.start_frame,
                    stop_frame=segment.stop_frame,
                    jobs=[
                        SegmentJobOut(
                            url=links.of("jobs", job.id),
                            id=job.id,
                            assignee=BasicUserOut.maybe(job.assignee, links),
                            reviewer=BasicUserOut.maybe(job.reviewer, links),
                            status=job.status,
                        )
                        for job in segment.jobs
                    ],
                )
                for segment in task.segments
            ],
            data_chunk_size=task.chunk_size,
            data_compressed_chunk_type=task.compressed_chunk_type,
            data_original_chunk_type=task.original_chunk_type,
            size=task.size,
            image_quality=task.image_quality,
            data=None,
            dimension=task.dimension,
            subset=task.subset,
            source_task_id=task.source_task_id,
            dataset_id=task.dataset_id,
            team=TeamOut(
                annotators=[m.user_id for m in task.team if m.role == "annotator"],
                reviewers=[m.user_id for m in task.team if m.role == "reviewer"],
            ),
        )


class JobOut(BaseModel):
    url: str
    id: int
    assignee: BasicUserOut | None
    reviewer: BasicUserOut | None
    status: str
    start_frame: int
    stop_frame: int
    task_id: int
    project_id: int | None

    @classmethod
    def of(cls, job: Job, links: Links) -> JobOut:
        return cls(
            url=links.of("jobs", job.id),
            id=job.id,
            assignee=BasicUserOut.maybe(job.assignee, links),
            reviewer=BasicUserOut.maybe(job.reviewer, links),
            status=job.status,
            start_frame=job.segment.start_frame,
            stop_frame=job.segment.stop_frame,
            task_id=job.segment.task_id,
            project_id=job.task.project_id,
        )


class ProjectOut(BaseModel):
    url: str
    id: int
    name: str
    labels: list[LabelOut]
    tasks: list[int]
    owner: BasicUserOut | None
    assignee: BasicUserOut | None
    bug_tracker: str
    created_date: datetime
    updated_date: datetime
    status: str

    @classmethod
    def of(cls, project: Project, links: Links) -> ProjectOut:
        return cls(
            url=links.of("projects", project.id),
            id=project.id,
            name=project.name,
            labels=[LabelOut.of(label) for label in project.labels],
            tasks=[task.id for task in project.tasks],
            owner=BasicUserOut.maybe(project.owner, links),
            assignee=BasicUserOut.maybe(project.assignee, links),
            bug_tracker=project.bug_tracker,
            created_date=project.created_date,
            updated_date=project.updated_date,
            status=project.status,
        )


class ClientEventOut(BaseModel):
    id: int
    kind: str
    user_id: int | None
    name: str
    time: datetime
    received: datetime
    client_id: str
    job_id: int | None
    task_id: int | None
    proj_id: int | None
    is_active: bool | None
    message: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: ClientEvent) -> ClientEventOut:
        return cls(
            id=event.id,
            kind=event.kind,
            user_id=event.user_id,
            name=event.name,
            time=event.time,
            received=event.received,
            client_id=event.client_id,
            job_id=event.job_id,
            task_id=event.task_id,
            proj_id=event.project_id,
            is_active=event.is_active,
            message=event.message,
            payload=event.payload,
        )
