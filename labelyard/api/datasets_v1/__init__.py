"""The dataset-management face (seed 000), mounted at ``/api/v1``."""

from fastapi import APIRouter

from labelyard.api.datasets_v1 import datasets, exports

router = APIRouter()
router.include_router(datasets.router)
router.include_router(exports.router)
