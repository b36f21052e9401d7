"""The git command line, for committing one file to a branch of a remote repository.

Work happens in a scratch bare repository with plumbing commands: nothing is checked
out, so a large repository costs only the objects fetched (one commit deep). Nothing ever
waits for a person: terminal prompts are off, SSH runs in batch mode, every command has
a timeout. Only the transports in PROTOCOLS may be used (git's ``ext::`` runs commands)."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from labelyard.adapters.network import DEFAULT_PORTS

GIT = shutil.which("git") or "git"
TIMEOUT = 300.0
PROTOCOLS = ("https", "http", "ssh", "git", "file")
# Over HTTP the user part is a credential (a token often stands alone as the user name);
# over SSH it is only a login name.
_HTTP_USER = re.compile(r"(?i)(https?://)[^/\s@]+@")
# The host of git's scp-like syntax, ``[user@]host:path``.
_SCP_HOST = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/\[\]]+):(?!//)")


class GitError(Exception):
    """A git command failed. The message is meant for the user: it says what could not be
    done and git's own reason, and never shows a password."""


@dataclass(frozen=True)
class Identity:
    """Who a commit is by (author and committer)."""

    name: str
    email: str


@dataclass(frozen=True)
class RemoteHeads:
    """The remote's branches (name -> commit) and the one its HEAD names, if any."""

    default: str | None
    heads: dict[str, str] = field(default_factory=dict)


def shown_url(url: str) -> str:
    """``url`` without credentials: an HTTP(S) URL's user part becomes ``***``, another
    URL's password does."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() in ("http", "https"):
        user = "***"
    elif parts.password is not None:
        user = f"{parts.username}:***"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _scrub(text: str) -> str:
    return _HTTP_USER.sub(r"\1***@", text)


def _reason(stderr: str) -> str:
    """git's own explanation: its first ``fatal:`` line, a refused ref of a push
    (``! [rejected] ... (why)``), or its first ``error:`` line, else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for prefix in ("fatal: ", "! [", "error: "):
        for line in lines:
            if line.startswith(prefix):
                return _scrub(line.removeprefix(prefix) if prefix != "! [" else line)
    return _scrub(lines[-1]) if lines else "git gave no reason"


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    # An operator may configure SSH (keys, known hosts) through GIT_SSH_COMMAND; by
    # default ssh must never prompt for a password or an unknown host key.
    environment.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return environment


def _protocol_options() -> list[str]:
    options = ["-c", "protocol.allow=never"]
    for protocol in PROTOCOLS:
        options += ["-c", f"protocol.{protocol}.allow=always"]
    return options


Resolver = Callable[[str, int], str]


@dataclass(frozen=True)
class Route:
    """How git reaches a remote at an address resolved once: the URL to give git, its
    options and environment. Over HTTP(S) curl is handed the address for the host (and
    follows no redirect, which could name another host); git:// gets the address in its
    URL; ssh connects to it, checking the host's key under the host's name."""

    url: str
    options: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)


def route(url: str, resolve: Resolver | None, ssh_command: str) -> Route:
    """The route to ``url``, its host resolved by ``resolve`` (which raises what refuses
    it); local repositories and ``resolve=None`` go as they are."""
    if resolve is None:
        return Route(url)
    if "://" in url:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    elif scp := _SCP_HOST.match(url):
        scheme, host, port = "ssh", scp["host"], None
    else:
        return Route(url)  # a local path
    if scheme == "file" or not host:
        return Route(url)
    port = port or DEFAULT_PORTS[scheme]
    address = resolve(host, port)
    if _is_literal(host):
        return Route(url)
    shown = f"[{address}]" if ":" in address else address
    if scheme in ("http", "https"):
        resolved = f"http.curloptResolve={host}:{port}:{shown}"
        return Route(url, ("-c", resolved, "-c", "http.followRedirects=false"))
    if scheme == "git":
        netloc = f"{shown}:{parts.port}" if parts.port else shown
        return Route(urlunsplit(parts._replace(netloc=netloc)))
    alias = host if port == DEFAULT_PORTS["ssh"] else f"[{host}]:{port}"
    command = f"{ssh_command} -o HostName={address} -o HostKeyAlias={alias}"
    return Route(url, environment={"GIT_SSH_COMMAND": command})


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Scratch:
    """A throwaway bare repository in ``folder`` that talks to the remote ``url``; with
    ``resolve``, at the address it answers for the URL's host (see ``route``)."""

    def __init__(
        self,
        url: str,
        folder: Path,
        *,
        timeout: float = TIMEOUT,
        resolve: Resolver | None = None,
    ) -> None:
        if url.startswith("-"):
            raise GitError("A repository URL cannot start with '-'.")
        self.url = url
        self.folder = folder
        self.timeout = timeout
        self._index = folder / "labelyard-index"
        self._environment = _environment()
        try:
            self._route = route(url, resolve, self._environment["GIT_SSH_COMMAND"])
        except ValueError as exc:  # the resolver's refusal
            raise GitError(f"Could not reach {shown_url(url)}: {exc}") from None
        self._environment |= self._route.environment
        folder.mkdir(parents=True, exist_ok=True)
        self._git("init", "--bare", "--quiet", "--template=", ".", doing="prepare a repository")

    def _git(
        self,
        *args: str,
        doing: str,
        stdin: str | None = None,
        index: bool = False,
        config: tuple[str, ...] = (),
    ) -> str:
        command = [GIT, *_protocol_options(), *self._route.options, *config, *args]
        environment = self._environment
        if index:
            environment = environment | {"GIT_INDEX_FILE": str(self._index)}
        try:
            done = subprocess.run(
                command, cwd=self.folder, env=environment, input=stdin, capture_output=True,
                text=True, timeout=self.timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise GitError(
                f"Could not {doing}: {shown_url(self.url)} did not answer within "
                f"{self.timeout:.0f} s."
            ) from None
        except OSError as exc:
            raise GitError(f"Could not {doing}: git cannot run here ({exc.strerror}).") from None
        if done.returncode != 0:
            raise GitError(f"Could not {doing}: {_reason(done.stderr)}")
        return done.stdout.strip()

    def heads(self) -> RemoteHeads:
        """The remote's branches; also proves that it can be reached and read."""
        listing = self._git(
            "ls-remote", "--symref", self._route.url, "HEAD", "refs/heads/*",
            doing=f"read the repository {shown_url(self.url)}",
        )  # fmt: skip
        default = None
        heads: dict[str, str] = {}
        for line in listing.splitlines():
            left, _, ref = line.partition("\t")
            if left.startswith("ref: refs/heads/") and ref == "HEAD":
                default = left.removeprefix("ref: refs/heads/")
            elif ref.startswith("refs/heads/"):
                heads[ref.removeprefix("refs/heads/")] = left
        return RemoteHeads(default, heads)

    def fetch(self, branch: str, *, whole_history: bool = False) -> str:
        """Fetch ``branch``: its last commit only, or (``whole_history``) all its commits
        and trees but no file contents. Answers the commit it is at."""
        depth = ["--filter=blob:none"] if whole_history else ["--depth=1"]
        self._git(
            "fetch", "--quiet", "--no-tags", *depth, self._route.url, f"refs/heads/{branch}",
            doing=f"fetch the branch {branch}",
        )  # fmt: skip
        return self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}", doing="read FETCH_HEAD")

    def commit_file(
        self, path: str, content: Path, *, message: str, identity: Identity, parent: str | None
    ) -> str | None:
        """A commit of ``parent``'s tree (or an empty one) with ``content`` at ``path``;
        None when the file there already holds exactly that."""
        doing = f"write {path} into the repository"
        if parent is None:
            self._git("read-tree", "--empty", doing=doing, index=True)
        else:
            self._git("read-tree", parent, doing=doing, index=True)
        blob = self._git("hash-object", "-w", "--no-filters", "--", str(content), doing=doing)
        self._git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", doing=doing,
                  index=True)  # fmt: skip
        tree = self._git("write-tree", doing=doing, index=True)
        if parent is not None and tree == self._git("rev-parse", f"{parent}^{{tree}}", doing=doing):
            return None
        parents = ["-p", parent] if parent is not None else []
        who = ("-c", f"user.name={identity.name}", "-c", f"user.email={identity.email}")
        return self._git(
            "commit-tree", tree, *parents, "-F", "-", doing="commit", stdin=message, config=who
        )

    def push(self, commit: str, branch: str) -> None:
        """Move ``branch`` on the remote to ``commit``, which must descend from where it
        is (never forced: what others pushed to the branch is not thrown away)."""
        try:
            self._git(
                "push", "--quiet", "--no-verify", self._route.url, f"{commit}:refs/heads/{branch}",
                doing=f"push to the branch {branch}",
            )  # fmt: skip
        except GitError as exc:
            if "[rejected]" in str(exc):
                raise GitError(
                    f"The branch {branch} changed on the remote while this push ran; push again."
                ) from None
            raise

    def is_ancestor(self, commit: str, of: str) -> bool:
        """Whether ``commit`` is in the history of ``of`` (False when it is unknown here)."""
        try:
            self._git("merge-base", "--is-ancestor", commit, of, doing="compare commits")
        except GitError:
            return False
        return True
