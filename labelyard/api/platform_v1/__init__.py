"""The work face (seeds 003 and 004), mounted at ``/api/platform/v1``."""

from labelyard.api.platform_v1 import batches, projects, tasks, transfers, work_items
from labelyard.api.routing import FaceRouter

PREFIX = "/api/platform/v1"

router = FaceRouter(prefix=PREFIX)
# The work items' routes first: workers call them all day.
for module in (work_items, projects, batches, tasks, transfers):
    router.include_router(module.router)
