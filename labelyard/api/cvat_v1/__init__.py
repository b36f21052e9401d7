"""The CVAT v1-compatible face, mounted at ``/api/v1``."""

from fastapi import APIRouter

from labelyard.api.cvat_v1 import (
    auth,
    jobs,
    operations,
    projects,
    restrictions,
    server,
    tasks,
    users,
)

router = APIRouter()
for module in (auth, users, projects, tasks, jobs, server, restrictions, operations):
    router.include_router(module.router)
