"""``create_app(settings)``: build the adapters, mount the API faces, install handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from redis import Redis
from sqlalchemy import Engine, text
from swagger_ui_bundle import swagger_ui_path

from labelyard import __version__
from labelyard.adapters.db.engine import WalCheckpointer, make_engine, migrate
from labelyard.adapters.queue.inprocess import InProcessRunner
from labelyard.adapters.queue.rq import RqRunner
from labelyard.adapters.storage import load_or_create_secret
from labelyard.api import errors
from labelyard.api.body_limit import BodyLimit
from labelyard.api.cvat_v1 import annotations as annotation_routes
from labelyard.api.cvat_v1 import git as git_routes
from labelyard.api.cvat_v1 import router as cvat_v1_router
from labelyard.api.datasets_v1 import router as datasets_v1_router
from labelyard.api.nul_bytes import RefuseNulBytes
from labelyard.api.platform_v1 import router as platform_v1_router
from labelyard.api.routing import API_PREFIX
from labelyard.api.storage_urls import router as storage_urls_router
from labelyard.config import Settings
from labelyard.services import operations
from labelyard.services.keyset import CursorCodec
from labelyard.services.operations import OperationRunner
from labelyard.services.throttle import DatabaseFailures, RedisFailures, SignInThrottle
from labelyard.services.uow import UnitOfWork
from labelyard.worker import Runtime, build_runtime

log = logging.getLogger(__name__)

# Requests carrying media files, which may be far larger than any other body; POST /tasks
# takes backups too, and its route holds a JSON body to the ordinary limit itself.
UPLOAD_PATHS = r"^/api/v1/(tasks/\d+/data|datasets/\d+/batchs|tasks)/?$|^/api/platform/v1/uploads/"
ANNOTATION_PATHS = r"^/api/v1/(jobs|tasks)/\d+/annotations/?$"


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The ASGI app. The schema is migrated to the newest revision before it serves."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    checkpointer = None
    if engine is None:
        engine = make_engine(settings.resolved_database_url, background_checkpoints=True)
        if engine.dialect.name == "sqlite":
            checkpointer = WalCheckpointer(engine)
    migrate(engine)

    runtime = build_runtime(settings, engine)
    runner = _make_runner(settings, runtime)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if checkpointer is not None:
            checkpointer.start()
        yield
        runner.shutdown()
        if checkpointer is not None:
            checkpointer.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="labelyard",
        version=__version__,
        description="A self-hostable data-annotation platform server. `/api/v1` speaks "
        "CVAT's v1 API.",
        openapi_url=f"{API_PREFIX}/schema",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = runtime.session_factory
    app.state.runtime = runtime
    app.state.runner = runner
    app.state.signer = runtime.signer
    app.state.cursors = CursorCodec(load_or_create_secret(settings))
    app.state.storage = runtime.storage
    app.state.throttle = SignInThrottle(
        RedisFailures(Redis.from_url(settings.redis_url))
        if settings.redis_url
        else DatabaseFailures(),
        limit=settings.sign_in_failure_limit,
        window=settings.sign_in_failure_window_seconds,
    )

    errors.install(app)
    app.add_middleware(RefuseNulBytes)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        path_limits=[
            (UPLOAD_PATHS, settings.max_upload_bytes),
            (ANNOTATION_PATHS, settings.max_annotation_bytes),
        ],
    )

    # First: probes ask often, and routes are tried in order.
    @app.get(f"{API_PREFIX}/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness and database reachability; needs no credentials."""
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "database": engine.dialect.name}

    # The faces carry their prefixes themselves (see FaceRouter).
    app.include_router(cvat_v1_router)
    app.include_router(datasets_v1_router)
    app.include_router(storage_urls_router, prefix=API_PREFIX)
    app.include_router(platform_v1_router)
    # CVAT serves its git integration at the root; the /api/v1 copy is for clients and
    # proxies that know only the API's prefix.
    app.include_router(git_routes.router)
    app.include_router(git_routes.router, prefix=API_PREFIX, include_in_schema=False)
    _mount_docs(app)
    _document_hand_decoded_bodies(app)

    return app


def _make_runner(settings: Settings, runtime: Runtime) -> OperationRunner:
    """RQ when Redis is configured; otherwise threads in this process, which first fail
    whatever an earlier run of the server left unfinished (its queue died with it)."""
    if settings.redis_url:
        return RqRunner(settings.redis_url)
    with UnitOfWork(runtime.session_factory) as uow:
        if count := operations.fail_unfinished(uow, operations.RESTART_MESSAGE):
            log.warning("marked %d operation(s) interrupted by a restart as failed", count)
    return InProcessRunner(runtime.run, workers=settings.operation_workers)


def _document_hand_decoded_bodies(app: FastAPI) -> None:
    """Add the schemas of bodies that routes decode themselves to the OpenAPI document,
    and describe bad input as it is answered (400, not FastAPI's 422)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                annotation_routes.BODY_COMPONENTS
            )
            errors.document_bad_input(document)
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI from the files the swagger-ui-bundle package ships: no CDN needed."""
    static = f"{API_PREFIX}/docs/static"
    app.mount(static, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/schema",
            title="labelyard API",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
        )
