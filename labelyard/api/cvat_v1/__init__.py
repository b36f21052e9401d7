"""The CVAT v1-compatible face, mounted at ``/api/v1``."""

from labelyard.api.cvat_v1 import (
    annotations,
    auth,
    jobs,
    operations,
    projects,
    restrictions,
    server,
    task_data,
    tasks,
    users,
)
from labelyard.api.routing import API_PREFIX, FaceRouter

router = FaceRouter(prefix=API_PREFIX)
for module in (
    auth, users, projects, tasks, task_data, jobs, annotations, server, restrictions,
    operations,
):  # fmt: skip
    router.include_router(module.router)
