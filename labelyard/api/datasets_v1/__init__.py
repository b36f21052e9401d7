"""The dataset-management face (seed 000), mounted at ``/api/v1``."""

from labelyard.api.datasets_v1 import datasets, exports
from labelyard.api.routing import API_PREFIX, FaceRouter

router = FaceRouter(prefix=API_PREFIX)
router.include_router(datasets.router)
router.include_router(exports.router)
