"""What runs operations, in any process: the server's threads or `labelyard worker`."""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from labelyard.adapters.db.engine import make_engine, make_session_factory, migrate
from labelyard.adapters.storage import Storage, UrlSigner, load_or_create_secret, make_storage
from labelyard.config import Settings
from labelyard.services import operations
from labelyard.services.operations import HandlerRegistry
from labelyard.services.uow import UnitOfWork

log = logging.getLogger(__name__)

BUILT_IN_HANDLER_MODULES: tuple[str, ...] = (
    "labelyard.services.task_data",
    "labelyard.services.exchange",
    "labelyard.services.imports",
    "labelyard.services.datasets",
    "labelyard.services.dataset_versions",
    "labelyard.services.deliveries",
    "labelyard.services.git",
    "labelyard.services.backups",
)


@dataclass
class Runtime:
    """A process's dependencies for running operations; handlers reach them as
    ``context.deps``."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    registry: HandlerRegistry
    signer: UrlSigner
    storage: Storage

    def run(self, operation_id: str) -> None:
        operations.execute(
            operation_id,
            registry=self.registry,
            session_factory=self.session_factory,
            deps=self,
            heartbeat_seconds=self.settings.operation_heartbeat_seconds,
        )


def load_handlers(settings: Settings) -> HandlerRegistry:
    """The built-in operation kinds plus those of ``LABELYARD_OPERATION_MODULES``: each
    such module has ``register(registry)``."""
    registry = HandlerRegistry()
    for name in (*BUILT_IN_HANDLER_MODULES, *settings.operation_modules):
        importlib.import_module(name).register(registry)
    return registry


def build_runtime(settings: Settings, engine: Engine | None = None) -> Runtime:
    engine = engine or make_engine(settings.resolved_database_url)
    secret = load_or_create_secret(settings)
    return Runtime(
        settings,
        engine,
        make_session_factory(engine),
        load_handlers(settings),
        UrlSigner(secret),
        make_storage(settings, secret),
    )


_queue_runtime: Runtime | None = None


def run_queued(operation_id: str) -> None:
    """The RQ job function: runs in a `labelyard worker` process, configured, like the
    server, from the environment."""
    global _queue_runtime
    if _queue_runtime is None:
        _queue_runtime = build_runtime(Settings())
    _queue_runtime.run(operation_id)


def serve_queue(settings: Settings, *, burst: bool = False) -> None:
    """`labelyard worker`: take operations from Redis until stopped. Also fails, every
    little while, started operations whose worker died (their heartbeat stopped)."""
    from labelyard.adapters.queue import rq

    if not settings.redis_url:
        raise RuntimeError("LABELYARD_REDIS_URL is not set: there is no queue to work on.")
    global _queue_runtime
    _queue_runtime = runtime = build_runtime(settings)
    migrate(runtime.engine)
    stop = threading.Event()
    reaper = threading.Thread(target=_reap, args=(runtime, stop), daemon=True)
    reaper.start()
    try:
        rq.work(settings.redis_url, burst=burst)
    finally:
        stop.set()


def reap_once(runtime: Runtime) -> int:
    stale = timedelta(seconds=runtime.settings.operation_stale_seconds)
    with UnitOfWork(runtime.session_factory) as uow:
        return operations.fail_unfinished(uow, operations.LOST_WORKER_MESSAGE, stale_after=stale)


def _reap(runtime: Runtime, stop: threading.Event) -> None:
    every = max(runtime.settings.operation_stale_seconds / 3, 1.0)
    while True:
        try:
            if count := reap_once(runtime):
                log.warning("marked %d operation(s) with a dead worker as failed", count)
        except Exception:
            log.warning("could not look for operations with a dead worker", exc_info=True)
        if stop.wait(every):
            return
