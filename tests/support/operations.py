"""Operation kinds for tests, registered through LABELYARD_OPERATION_MODULES (the way
any extra module adds kinds)."""

from __future__ import annotations

import os
import time
from typing import Any

from labelyard.services.operations import HandlerRegistry, OperationContext, UserFacingError


def register(registry: HandlerRegistry) -> None:
    registry.register("test.echo")(echo)
    registry.register("test.steps")(steps)
    registry.register("test.fail")(fail)
    registry.register("test.crash")(crash)


def echo(context: OperationContext) -> dict[str, Any]:
    return {"params": context.params, "pid": os.getpid(), "attempt": context.attempt}


def steps(context: OperationContext) -> dict[str, Any]:
    """``count`` steps of ``seconds`` each, reporting progress; on a retry (attempt > 1)
    only when ``slow_retry`` is set, so that a retried operation finishes quickly."""
    count = int(context.params.get("count", 5))
    seconds = float(context.params.get("seconds", 0.05))
    if context.attempt > 1 and not context.params.get("slow_retry"):
        seconds = 0.0
    for step in range(count):
        context.progress(step / count, f"step {step + 1} of {count}")
        time.sleep(seconds)
    return {"steps": count, "pid": os.getpid()}


def fail(context: OperationContext) -> None:
    raise UserFacingError(f"{context.params.get('file', 'photo.jpg')}: the image is truncated")


def crash(context: OperationContext) -> None:
    raise RuntimeError("a bug")
