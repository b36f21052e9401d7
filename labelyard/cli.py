"""The ``labelyard`` command: serve, migrate, createsuperuser, openapi."""

from __future__ import annotations

import json
import sys

import click

from labelyard.config import Settings


@click.group()
@click.version_option(package_name="labelyard")
def main() -> None:
    """labelyard, a self-hostable data-annotation platform server."""


@main.command()
@click.option("--host", default=None, help="Address to bind (LABELYARD_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (LABELYARD_PORT, 8080).")
def serve(host: str | None, port: int | None) -> None:
    """Migrate the database, make sure an admin exists, and serve the API."""
    import uvicorn

    from labelyard.app import create_app
    from labelyard.services import auth
    from labelyard.services.uow import UnitOfWork

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    app = create_app(settings)
    with UnitOfWork(app.state.session_factory) as uow:
        generated = auth.ensure_first_admin(
            uow,
            username=settings.admin_username,
            email=settings.admin_email,
            password=settings.admin_password,
        )
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    base = f"http://{shown_host}:{port}"
    lines = [
        f"labelyard {app.version} listening on http://{host}:{port}",
        f"  database: {app.state.engine.url.render_as_string(hide_password=True)}",
        f"  API docs: {base}/api/v1/docs",
        f"  log in:   POST {base}/api/v1/auth/login",
    ]
    if generated:
        lines += [
            f"  A first admin was created: username {settings.admin_username!r}, "
            f"password {generated!r}",
            "  This password is shown only now; change it with POST /api/v1/auth/password/change.",
        ]
    elif settings.admin_password:
        lines.append(f"  admin user: {settings.admin_username!r} (LABELYARD_ADMIN_PASSWORD)")
    click.echo("\n".join(lines), err=False)
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run background operations from the Redis queue (LABELYARD_REDIS_URL). Start as
    many as you like, on as many machines as share the database, storage and Redis."""
    import logging

    from labelyard.worker import serve_queue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings()
    if not settings.redis_url:
        raise click.ClickException("Set LABELYARD_REDIS_URL: the worker takes work from Redis.")
    click.echo(f"labelyard worker taking operations from {settings.redis_url}")
    serve_queue(settings, burst=burst)


@main.command()
def migrate() -> None:
    """Apply database migrations up to the newest revision."""
    from labelyard.adapters.db.engine import make_engine
    from labelyard.adapters.db.engine import migrate as run_migrations

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    run_migrations(engine)
    click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")


@main.command()
@click.option("--username", prompt=True)
@click.option("--email", prompt=True, default="")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def createsuperuser(username: str, email: str, password: str) -> None:
    """Create an admin; asks for what is not given as an option."""
    from labelyard.adapters.db.engine import make_engine, make_session_factory
    from labelyard.adapters.db.engine import migrate as run_migrations
    from labelyard.services import auth
    from labelyard.services.errors import InvalidInput
    from labelyard.services.uow import UnitOfWork

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    run_migrations(engine)
    with UnitOfWork(make_session_factory(engine)) as uow:
        try:
            user = auth.create_superuser(uow, username=username, email=email, password=password)
        except InvalidInput as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"superuser {user.username!r} created (id {user.id})")


@main.command()
def openapi() -> None:
    """Print the OpenAPI schema as JSON."""
    import tempfile

    from labelyard.adapters.db.engine import make_engine
    from labelyard.app import create_app

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings(data_dir=data_dir), engine=make_engine("sqlite://"))
        click.echo(json.dumps(app.openapi(), indent=2))
