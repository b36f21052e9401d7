"""Entities and their invariants; no web framework, no I/O."""

from labelyard.domain.annotations import LabeledShape, LabeledTag, LabeledTrack, ShapeType
from labelyard.domain.base import Base, utcnow
from labelyard.domain.datasets import (
    AnnotationStatus,
    Asset,
    AssetKind,
    Batch,
    Dataset,
    DatasetStatus,
    DatasetVersion,
    Scene,
    VersionStatus,
)
from labelyard.domain.events import ClientEvent
from labelyard.domain.git import GitRepository, GitStatus
from labelyard.domain.jobs import Job, JobStatus, Segment
from labelyard.domain.labels import AttributeSpec, InputType, Label
from labelyard.domain.operations import Operation, OperationStatus
from labelyard.domain.projects import Project
from labelyard.domain.spaces import DEFAULT_SPACE_ID, Space, SpaceMember
from labelyard.domain.tasks import Task, TaskFrame, TaskState, TaskTeamMember, TeamRole
from labelyard.domain.users import (
    ApiToken,
    BrowserSession,
    Group,
    SignInFailure,
    User,
    UserGroup,
)
from labelyard.domain.workflow import (
    DEFAULT_BATCH,
    DEFAULT_STAGES,
    Assignment,
    Outcome,
    Signal,
    Stage,
    WorkBatch,
    Workflow,
    WorkItem,
    WorkKind,
    WorkSignal,
    WorkStatus,
)

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_SPACE_ID",
    "DEFAULT_STAGES",
    "AnnotationStatus",
    "ApiToken",
    "Asset",
    "AssetKind",
    "Assignment",
    "AttributeSpec",
    "Base",
    "Batch",
    "BrowserSession",
    "ClientEvent",
    "Dataset",
    "DatasetStatus",
    "DatasetVersion",
    "GitRepository",
    "GitStatus",
    "Group",
    "InputType",
    "Job",
    "JobStatus",
    "Label",
    "LabeledShape",
    "LabeledTag",
    "LabeledTrack",
    "Operation",
    "OperationStatus",
    "Outcome",
    "Project",
    "Scene",
    "Segment",
    "ShapeType",
    "SignInFailure",
    "Signal",
    "Space",
    "SpaceMember",
    "Stage",
    "Task",
    "TaskFrame",
    "TaskState",
    "TaskTeamMember",
    "TeamRole",
    "User",
    "UserGroup",
    "VersionStatus",
    "WorkBatch",
    "WorkItem",
    "WorkKind",
    "WorkSignal",
    "WorkStatus",
    "Workflow",
    "utcnow",
]
