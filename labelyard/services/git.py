"""A git repository as a task's export address (CVAT's git integration).

Linking (``POST /git/repository/create/{tid}``) stores the repository, the file's path in
it and the format, then checks in an operation that the repository can be read, so an
unreachable one shows up in the status instead of failing the request. Pushing (an
operation) exports the task's annotations, commits the file to the task's own branch
(made from the remote's default branch the first time) and pushes it, never forced. The
status follows CVAT's values: ``!sync`` until a push carries the task's current
annotations, ``sync`` after, ``merged`` once the branch's commit reaches the default
branch (checked in the background, at most every CHECK_EVERY, when the status is read)."""

from __future__ import annotations

import contextlib
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field
from sqlalchemy import select, update

from labelyard.adapters import network
from labelyard.adapters.git import GitError, Identity, Scratch, route, shown_url
from labelyard.adapters.network import AddressRefused, HostNotFound
from labelyard.config import Settings
from labelyard.domain import (
    GitRepository,
    GitStatus,
    Operation,
    OperationStatus,
    Task,
    User,
    utcnow,
)
from labelyard.domain.git import PATH_MAX, URL_MAX
from labelyard.formats.registry import find
from labelyard.services import access, exchange, operations
from labelyard.services.access import Actor
from labelyard.services.errors import (
    Conflict,
    FieldErrors,
    LabelyardError,
    NotFound,
    PermissionDenied,
)
from labelyard.services.fields import Id, WriteModel
from labelyard.services.operations import (
    OperationCancelled,
    OperationContext,
    OperationRunner,
    UserFacingError,
)
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

LINK = "git.link"
PUSH = "git.push"
CHECK = "git.check"
CHECK_EVERY = timedelta(minutes=1)
# .zip: the whole export; .xml / .json: the export's one file of that kind (CVAT took
# the XML out of CVAT's export the same way).
EXTENSIONS = (".zip", ".xml", ".json")
RUNNING = (OperationStatus.QUEUED, OperationStatus.STARTED)
# CVAT's client sends the URL and the file's path in one field: "<url> [<path>]" (its
# older client dropped the space). The last bracket pair, so "https://[::1]/r" is a URL.
_PACKED = re.compile(r"^(?P<url>.*)\[(?P<path>[^\[\]]*)\]\s*$", re.DOTALL)
_TRANSPORT = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE = re.compile(r"^(?:[\w.+-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*:(?!//)\S+$")
# Characters CVAT replaced in a task name to make the default file name.
_UNSAFE_IN_NAME = re.compile(r'[\\/*?:"<>|\s\x00-\x1f]')
# A stable zip: the same annotations give the same bytes, so an unchanged push commits
# nothing.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class LinkIn(WriteModel):
    """CVAT's body: ``path`` is ``"<url> [<file path>]"`` (the file path is optional),
    and ``format`` (``export_format`` is read too) names an export format. ``url`` may be
    given on its own instead, with ``path`` then the file's path."""

    path: str | None = Field(default=None, max_length=URL_MAX + PATH_MAX + 3)
    url: str | None = Field(default=None, max_length=URL_MAX)
    format: str | None = Field(default=None, max_length=64)
    export_format: str | None = Field(default=None, max_length=64)
    lfs: bool = False
    tid: Id | None = None


@dataclass
class RepositoryState:
    """What ``/git/repository/get`` answers: nothing linked is all None."""

    link: GitRepository | None
    status: str | None
    error: str | None

    @property
    def url(self) -> str | None:
        """CVAT's ``"<url> [<path>]"``, without the URL's credentials."""
        if self.link is None:
            return None
        return f"{shown_url(self.link.url)} [{self.link.path}]"


# --- requests -----------------------------------------------------------------------


def link_repository(
    uow: UnitOfWork,
    runner: OperationRunner,
    actor: Actor,
    settings: Settings,
    task_id: int,
    data: LinkIn,
) -> Operation:
    """Link the task to a repository (replacing an earlier link) and start checking it."""
    task = get_task(uow, actor, task_id)
    if not access.can_change_task(actor, task):
        raise PermissionDenied()
    url, path, format_name = _parse_link(task, data, settings)
    if _running(uow, task.id, PUSH) is not None:
        raise Conflict("A push to the repository is running; link again when it has ended.")
    link = _link_of(uow, task.id) or GitRepository(task_id=task.id)
    link.url, link.path, link.format = url, path, format_name
    link.branch = branch_name(task)
    link.status, link.error = GitStatus.NOT_SYNCED, None
    link.pushed_commit = link.synced_stamp = link.sync_date = link.checked_date = None
    uow.session.add(link)
    return _start(uow, runner, actor, task.id, LINK, {"task": task.id})


def repository_state(
    uow: UnitOfWork, runner: OperationRunner, actor: Actor, task_id: int
) -> RepositoryState:
    """The task's link and its status; starts a merge check when one is due."""
    task = get_task(uow, actor, task_id)
    link = _link_of(uow, task.id)
    if link is None:
        return RepositoryState(None, None, None)
    status = _status(uow, task, link)
    if status == GitStatus.SYNCED and _check_due(uow, link):
        uow.start_writing()
        fresh = uow.session.scalar(
            select(GitRepository)
            .where(GitRepository.id == link.id)
            .execution_options(populate_existing=True)
        )
        if fresh is not None and _check_due(uow, fresh):
            fresh.checked_date = utcnow()
            params = {"task": task.id, "commit": fresh.pushed_commit}
            _start(uow, runner, actor, task.id, CHECK, params)
    return RepositoryState(link, status, link.error)


def _check_due(uow: UnitOfWork, link: GitRepository) -> bool:
    last = link.checked_date
    if last is not None and utcnow() - last < CHECK_EVERY:
        return False
    return _running(uow, link.task_id, CHECK) is None


def statuses(uow: UnitOfWork, actor: Actor) -> dict[str, str]:
    """CVAT's ``meta/get``: the status of every visible task that has a repository."""
    rows = uow.session.execute(
        select(Task, GitRepository)
        .join(GitRepository, GitRepository.task_id == Task.id)
        .where(access.visible_tasks(actor))
    ).all()
    return {str(task.id): _status(uow, task, link) for task, link in rows}


def push(
    uow: UnitOfWork, runner: OperationRunner, actor: Actor, task_id: int, task_url: str
) -> Operation:
    """Start pushing the task's annotations (or answer the push already under way)."""
    task = get_task(uow, actor, task_id)
    if not access.can_push_task(actor, task):
        raise PermissionDenied()
    if _link_of(uow, task.id) is None:
        raise NotFound(
            f"Task {task.id} has no linked repository: link one with "
            f"POST /git/repository/create/{task.id}."
        )
    # Decided in a writer's transaction, so that two pushes asked at once start one.
    uow.start_writing()
    running = _running(uow, task.id, PUSH)
    if running is not None:
        return running
    return _start(uow, runner, actor, task.id, PUSH, {"task": task.id, "task_url": task_url})


def find_operation(uow: UnitOfWork, actor: Actor, operation_id: str) -> Operation | None:
    """The caller's operation with this id (CVAT's ``rq_id``), or None."""
    try:
        return operations.get_operation(uow, actor, operation_id)
    except NotFound:
        return None


def _start(
    uow: UnitOfWork,
    runner: OperationRunner,
    actor: Actor,
    task_id: int,
    kind: str,
    params: dict[str, Any],
) -> Operation:
    operation = operations.create(
        uow, kind=kind, params=params, owner_id=actor.id, target=f"task:{task_id}"
    )
    uow.commit()
    runner.submit(operation.id)
    return operation


def _link_of(uow: UnitOfWork, task_id: int) -> GitRepository | None:
    return uow.session.scalar(select(GitRepository).where(GitRepository.task_id == task_id))


def _running(uow: UnitOfWork, task_id: int, kind: str) -> Operation | None:
    latest = operations.latest_for(uow, f"task:{task_id}", kind)
    return latest if latest is not None and latest.status in RUNNING else None


def _status(uow: UnitOfWork, task: Task, link: GitRepository) -> str:
    if _running(uow, task.id, PUSH) is not None:
        return GitStatus.SYNCING
    if link.pushed_commit is None or link.synced_stamp != task.updated_date:
        return GitStatus.NOT_SYNCED
    return link.status


# --- what a link is made of ---------------------------------------------------------


def _parse_link(task: Task, data: LinkIn, settings: Settings) -> tuple[str, str, str]:
    """The URL, the file's path and the format's name, or InvalidInput naming every
    bad field."""
    errors = FieldErrors()
    if data.url is not None:
        url_field, url, path = "url", data.url, data.path
    else:
        url_field, url, path = "path", data.path or "", None
        if packed := _PACKED.match(url):
            url, path = packed["url"].strip(), packed["path"]
    try:
        url = check_url(url, settings)
        check_address(url, settings)
    except ValueError as exc:
        errors.add(url_field, str(exc))
    if path is None or not path.strip():
        path = default_path(task)
    else:
        try:
            path = check_path(path)
        except ValueError as exc:
            errors.add("path", str(exc))
    if data.lfs:
        errors.add(
            "lfs",
            "Git LFS is not supported: the annotation file holds no images and is committed "
            "as a plain file. Send lfs: false.",
        )
    if data.tid is not None and data.tid != task.id:
        errors.add("tid", f"The task in the URL is {task.id}.")
    names = {name for name in (data.format, data.export_format) if name}
    if len(names) > 1:
        errors.add("format", "format and export_format name different formats.")
    errors.raise_if_any()
    # CVAT's default: its own XML, for video when the task's data is a video.
    default = "CVAT for video 1.1" if task.mode == "interpolation" else "CVAT for images 1.1"
    format_name = find(names.pop() if names else default, exporting=True).display_name
    return url, path, format_name


def check_url(text: str, settings: Settings) -> str:
    """A repository URL git may use: https, http, ssh, git, ``user@host:path``, or a
    local repository (``file://`` or an absolute path) under LABELYARD_EXPORT_ROOTS.
    Raises ValueError saying what is wrong."""
    url = text.strip()
    if not url:
        raise ValueError("Give the repository's URL.")
    if len(url) > URL_MAX:
        raise ValueError(f"The URL is longer than {URL_MAX} characters.")
    if any(c.isspace() or ord(c) < 32 for c in url) or url.startswith("-"):
        raise ValueError("The URL cannot hold spaces or control characters, nor start with '-'.")
    if _TRANSPORT.match(url):
        # git's <transport>::<address> (ext:: runs a command); git refuses them too.
        raise ValueError("A repository URL cannot name a git transport helper (<name>::).")
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ValueError("A file:// URL names a path on this server: file:///srv/repo.git")
            return _check_local(url, parts.path, settings)
        if scheme not in ("https", "http", "ssh", "git"):
            raise ValueError("The URL's scheme must be https, http, ssh, git or file.")
        if not parts.hostname or parts.path.strip("/") == "":
            raise ValueError("The URL needs a host and the repository's path on it.")
        if parts.netloc.startswith("-") or parts.hostname.startswith("-"):
            # ssh would take it for an option (git refuses it too).
            raise ValueError("The URL's host cannot start with '-'.")
        return url
    if url.startswith("/"):
        return _check_local(url, url, settings)
    if _SCP_LIKE.match(url):
        return url
    raise ValueError(
        "Give the repository as an https://, ssh://, git:// or file:// URL, as "
        "user@host:path, or as an absolute path."
    )


def check_address(url: str, settings: Settings) -> None:
    """Refuse a remote repository whose host resolves to an address that is not public
    (loopback, private, link-local, the cloud's metadata service...), unless
    LABELYARD_ALLOW_PRIVATE_URLS. A host that does not resolve now may later: the
    operations find out, connecting only to the address they checked."""
    try:
        route(url, resolver(settings), "ssh")
    except HostNotFound:
        pass
    except AddressRefused as exc:
        raise ValueError(f"The repository's host is refused: {exc}.") from None


def resolver(settings: Settings) -> Callable[[str, int], str]:
    """How git's remotes are resolved: once, and to public addresses only."""
    return partial(network.resolve, allow_private=settings.allow_private_urls)


def _check_local(url: str, path: str, settings: Settings) -> str:
    """A repository on this server's disk is allowed only under the export roots, as
    local export addresses are: anywhere else could be anyone's repository."""
    if not settings.export_roots:
        raise ValueError("Local repositories are off: the server has no LABELYARD_EXPORT_ROOTS.")
    # Resolved, so neither ``..`` nor a symbolic link leads out of the roots.
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in settings.export_roots):
        raise ValueError("A local repository must be under one of LABELYARD_EXPORT_ROOTS.")
    return url


def check_path(text: str) -> str:
    """The file's path in the repository: relative, inside it, ending in one of
    EXTENSIONS. A leading '/' is dropped, as CVAT does. Raises ValueError."""
    path = text.strip().lstrip("/")
    if len(path) > PATH_MAX:
        raise ValueError(f"The path is longer than {PATH_MAX} characters.")
    if "\\" in path or any(ord(c) < 32 for c in path):
        raise ValueError("The path cannot hold backslashes or control characters.")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("The path must stay inside the repository: no '..' or empty parts.")
    if any(part.lower() == ".git" for part in parts):
        raise ValueError("The path cannot go into .git.")
    if PurePosixPath(path).suffix.lower() not in EXTENSIONS:
        raise ValueError(
            "The file must end in .zip (the whole export), or .xml or .json (the export's "
            "one file of that kind)."
        )
    return path


def default_path(task: Task) -> str:
    """CVAT's: ``annotation/<task name>.zip``."""
    name = _UNSAFE_IN_NAME.sub("_", task.name).strip("._")[:100] or f"task_{task.id}"
    return f"annotation/{name}.zip"


def branch_name(task: Task) -> str:
    """The task's branch: ``labelyard_<id>_<name>`` (CVAT's is ``cvat_<id>_<name>``), in
    characters every git host takes."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", task.name).strip("_-")[:60].rstrip("_-")
    return f"labelyard_{task.id}_{slug}" if slug else f"labelyard_{task.id}"


# --- the operations -----------------------------------------------------------------


@dataclass
class _Linked:
    url: str
    path: str
    format: str
    branch: str
    resolve: Callable[[str, int], str]


def _linked(context: OperationContext, task_id: int) -> _Linked:
    with context.uow() as uow:
        link = _link_of(uow, task_id)
        if link is None:
            raise UserFacingError("The task has no linked repository any more.")
        try:
            check_url(link.url, context.deps.settings)  # the export roots may have changed
        except ValueError as exc:
            raise UserFacingError(f"The linked repository cannot be used any more: {exc}") from None
        settings = context.deps.settings
        return _Linked(link.url, link.path, link.format, link.branch, resolver(settings))


def _record(context: OperationContext, task_id: int, **values: Any) -> None:
    with context.uow() as uow:
        uow.session.execute(
            update(GitRepository).where(GitRepository.task_id == task_id).values(**values)
        )
        uow.commit()


@contextlib.contextmanager
def _errors_recorded(context: OperationContext, task_id: int) -> Iterator[None]:
    """Whatever fails the operation is also the link's ``status.error``."""
    try:
        yield
    except OperationCancelled:
        raise
    except GitError as exc:
        _record(context, task_id, error=str(exc))
        raise UserFacingError(str(exc)) from None
    except UserFacingError as exc:
        _record(context, task_id, error=str(exc))
        raise
    except LabelyardError as exc:
        _record(context, task_id, error=exc.detail)
        raise
    except Exception as exc:
        message = f"Internal error ({type(exc).__name__}); the server log has the details."
        _record(context, task_id, error=message)
        raise


def run_link(context: OperationContext) -> dict[str, Any]:
    """Check that the linked repository can be read."""
    task_id = context.params["task"]
    with _errors_recorded(context, task_id):
        linked = _linked(context, task_id)
        context.progress(0.1, "Reading the repository", force=True)
        with tempfile.TemporaryDirectory(prefix="labelyard-git-") as scratch:
            heads = Scratch(linked.url, Path(scratch), resolve=linked.resolve).heads()
    _record(context, task_id, error=None)
    return {"branch": linked.branch, "default_branch": heads.default,
            "branch_exists": linked.branch in heads.heads}  # fmt: skip


def run_push(context: OperationContext) -> dict[str, Any]:
    """Export the task's annotations and commit them to its branch."""
    task_id, task_url = context.params["task"], context.params.get("task_url", "")
    with _errors_recorded(context, task_id):
        linked = _linked(context, task_id)
        chosen = find(linked.format, exporting=True)
        with context.uow() as uow:
            task = uow.session.get_one(Task, task_id)
            # Read first: a change while this push runs leaves the status at !sync.
            stamp = task.updated_date
            title = f'Annotations of task {task.id} "{task.name}" in {chosen.display_name}'
            bug_tracker = task.bug_tracker
            pusher = uow.session.get(User, context.owner_id) if context.owner_id else None
            name = pusher.username if pusher else "labelyard"
            identity = Identity(
                name, (pusher.email if pusher else "") or f"{name}@labelyard.invalid"
            )
        with tempfile.TemporaryDirectory(prefix="labelyard-git-") as scratch_name:
            scratch = Path(scratch_name)
            context.progress(0.02, "Reading the repository", force=True)
            remote = Scratch(linked.url, scratch / "repository", resolve=linked.resolve)
            heads = remote.heads()
            # The task's branch goes on from where it is; the first push starts it from
            # the default branch (or from nothing, in an empty repository).
            base = linked.branch if linked.branch in heads.heads else heads.default
            parent = remote.fetch(base) if base is not None and base in heads.heads else None
            snapshot = exchange.take_snapshot(context, "task", task_id)
            archive = scratch / "export.zip"
            exchange.build_archive(context, snapshot, chosen, with_images=False, archive=archive)
            content = _file_for(linked.path, archive, chosen.display_name, scratch)
            context.progress(0.85, "Committing", force=True)
            counts = {kind: sum(len(part.objects.get(kind, [])) for part in snapshot.parts)
                      for kind in ("tags", "shapes", "tracks")}  # fmt: skip
            message = _message(title, task_url, identity.name, counts, bug_tracker)
            commit = remote.commit_file(
                linked.path, content, message=message, identity=identity, parent=parent
            )
            # None: the file already holds these annotations; the branch may still be new.
            head = commit or parent
            assert head is not None, "only a commit on a parent can be unchanged"
            if heads.heads.get(linked.branch) != head:
                context.progress(0.9, f"Pushing to {linked.branch}", force=True)
                remote.push(head, linked.branch)
    _record(
        context, task_id, status=GitStatus.SYNCED, error=None, pushed_commit=head,
        synced_stamp=stamp, sync_date=utcnow(), checked_date=None,
    )  # fmt: skip
    return {"branch": linked.branch, "path": linked.path, "commit": head,
            "changed": commit is not None}  # fmt: skip


def run_check(context: OperationContext) -> dict[str, Any]:
    """Whether the pushed commit reached the default branch (``merged``), is still only on
    the task's branch (``sync``), or the branch was deleted unmerged (``!sync``, as CVAT)."""
    task_id, commit = context.params["task"], context.params["commit"]
    with _errors_recorded(context, task_id):
        linked = _linked(context, task_id)
        with tempfile.TemporaryDirectory(prefix="labelyard-git-") as scratch:
            remote = Scratch(linked.url, Path(scratch), resolve=linked.resolve)
            heads = remote.heads()
            default_head = heads.heads.get(heads.default) if heads.default else None
            merged = default_head == commit
            if default_head is not None and not merged:
                remote.fetch(str(heads.default), whole_history=True)
                merged = remote.is_ancestor(commit, "FETCH_HEAD")
    if merged:
        status = GitStatus.MERGED
    else:
        status = GitStatus.SYNCED if linked.branch in heads.heads else GitStatus.NOT_SYNCED
    with context.uow() as uow:
        # Only about the commit it checked: a push meanwhile has its own status.
        uow.session.execute(
            update(GitRepository)
            .where(GitRepository.task_id == task_id, GitRepository.pushed_commit == commit)
            .values(status=status, error=None)
        )
        uow.commit()
    return {"status": str(status)}


def _message(
    title: str, task_url: str, pusher: str, counts: dict[str, int], bug_tracker: str
) -> str:
    lines = [
        title,
        "",
        f"Pushed by {pusher} from labelyard" + (f": {task_url}" if task_url else "."),
        ", ".join(f"{kind.capitalize()}: {count}" for kind, count in counts.items()) + ".",
    ]
    if bug_tracker:
        lines.append(f"Bug tracker: {bug_tracker}")
    return "\n".join(lines) + "\n"


def _file_for(path: str, archive: Path, format_name: str, scratch: Path) -> Path:
    """What is committed at ``path``: the export as a stable zip, or its one file with
    the path's extension."""
    out = scratch / "committed"
    with zipfile.ZipFile(archive) as export:
        names = sorted(export.namelist())
        suffix = PurePosixPath(path).suffix.lower()
        if suffix == ".zip":
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as packed:
                for name in names:
                    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    packed.writestr(info, export.read(name))
            return out
        matching = [name for name in names if name.lower().endswith(suffix)]
        if len(matching) != 1:
            found = f"{len(matching)} {suffix} files" if matching else f"no {suffix} file"
            raise UserFacingError(
                f"{format_name} makes {found}, and the linked path {path} holds one: link the "
                "repository with a .zip path to commit the whole export."
            )
        out.write_bytes(export.read(matching[0]))
    return out


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(LINK)(run_link)
    registry.register(PUSH)(run_push)
    registry.register(CHECK)(run_check)
