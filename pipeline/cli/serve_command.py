"""The `serve` command: webhook receiver, run queue and status page."""

from __future__ import annotations

import os
import re
import shlex
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import cast

import click

from pipeline.cli.common import F, settings
from pipeline.common.reporting import Forward
from pipeline.errors import UsageError
from pipeline.redaction import Redactor
from pipeline.triggers.registry_hooks import DEFAULT_HEADER, REGISTRY_SOURCES, RegistryEndpoints, RegistrySource
from pipeline.triggers.server import ServerLimits, ServeSettings, Service
from pipeline.triggers.worker import DEFAULT_COMMAND, WorkerSettings, log_redactor

# URLs and scp-like `user@host:path` are handed to the runs as they are; anything else is a local path.
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://|^[^/]+@[^/:]+:")


def _repo_argument(repo: str) -> str:
    if _REMOTE.match(repo):
        return repo
    path = Path(repo).expanduser().resolve()
    if not path.exists():
        raise UsageError(f"--repo {repo}: no such directory (give a local repository path or a URL)")
    return str(path)


def _secret(secret_env: str, insecure: bool) -> bytes | None:
    value = os.environ.get(secret_env, "")
    if value:
        return value.encode("utf-8")
    if insecure:
        return None
    raise UsageError(
        f"{secret_env} is not set: webhooks would run builds for anyone who can reach the port; "
        f"set it to the webhook's secret, or pass --insecure-no-secret on a trusted network"
    )


# The server's limits: each option is named after its ServerLimits field, which also holds its default.
_LIMITS: tuple[tuple[str, click.FloatRange | click.IntRange, str], ...] = (
    (
        "read_timeout",
        click.FloatRange(min=0.1),
        "Seconds a client has to send its whole request; a slower one is dropped.",
    ),
    ("max_body", click.IntRange(min=1024), "Largest request body in bytes (413 beyond; GitHub sends up to 25 MB)."),
    (
        "max_connections",
        click.IntRange(min=1),
        "Requests served at once; as many more get 503 (/healthz still answers), the rest wait. A connection "
        "that has sent nothing yet holds no slot.",
    ),
)


def _limit_options(command: F) -> F:
    """--read-timeout, --max-body and --max-connections, in that order, defaults from ServerLimits."""
    for field, kind, help_text in reversed(_LIMITS):
        flag = "--" + field.replace("_", "-")
        default = getattr(ServerLimits, field)
        command = click.option(flag, field, type=kind, default=default, show_default=True, help=help_text)(command)
    return command


_MIN_REGISTRY_SECRET = 16
_REGISTRY_SECRET = re.compile(r"[A-Za-z0-9_-]+")


def _registry_endpoints(
    hooks: tuple[str, ...], secret_env: str, dockerhub_secret_env: str, header: str, branch: str
) -> RegistryEndpoints:
    """Each registry endpoint asked for, with its secret; one whose secret is not set refuses to start
    (fail closed: --insecure-no-secret is for git webhooks only)."""
    secrets: dict[RegistrySource, bytes] = {}
    for hook in hooks:
        source = cast(RegistrySource, hook)
        name = dockerhub_secret_env if source == "dockerhub" else secret_env
        value = os.environ.get(name, "")
        if not value:
            where = "the last segment of its URL" if source == "dockerhub" else f"its {header} header"
            raise UsageError(
                f"--registry-hook {source}: {name} is not set; registry notifications are always authenticated: "
                f"set it to the secret the registry sends in {where}"
            )
        if len(value) < _MIN_REGISTRY_SECRET or not _REGISTRY_SECRET.fullmatch(value):
            # Never the value itself. Shorter ones are not masked in the logs (nor hard to guess), and other
            # characters reach serve percent-encoded in Docker Hub's URL: logged and compared as sent.
            raise UsageError(
                f"--registry-hook {source}: {name} must be at least {_MIN_REGISTRY_SECRET} characters, only "
                "letters, digits, '_' and '-' (e.g. `openssl rand -hex 32`)"
            )
        secrets[source] = value.encode("utf-8")
    if not header.isascii() or not header.replace("-", "").isalnum():
        raise UsageError(f"--registry-header {header!r}: not a header name")
    return RegistryEndpoints(secrets, header=header, ref=f"refs/heads/{branch.removeprefix('refs/heads/')}")


def _log(message: str) -> None:
    click.echo(f"serve    {message}", err=True)


@click.command()
@click.option("--repo", required=True, metavar="PATH_OR_URL", help="The repository the pushes are to.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".pipeline-serve"),
    show_default=True,
    help="The run queue (SQLite), each run's log and report.",
)
@click.option("-f", "--file", "config_file", metavar="PATH", help="The pipelines file, as a path inside the repo.")
@click.option(
    "--secret-env",
    default="PIPELINE_WEBHOOK_SECRET",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the webhook secret (HMAC key; GitLab token).",
)
@click.option(
    "--insecure-no-secret", is_flag=True, help="Accept unauthenticated git deliveries (trusted networks only)."
)
@click.option(
    "--registry-hook",
    "registry_hooks",
    multiple=True,
    type=click.Choice(REGISTRY_SOURCES),
    help="Also accept this registry's push notifications (repeatable): POST /hooks/registry/distribution "
    "(Docker Distribution), /hooks/registry/acr, /hooks/registry/dockerhub/SECRET. Each push of an image "
    "queues a base update run (`pipeline trigger --base REFERENCE` on --branch).",
)
@click.option(
    "--registry-secret-env",
    default="PIPELINE_REGISTRY_SECRET",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the secret Distribution and ACR send in --registry-header.",
)
@click.option(
    "--registry-header",
    default=DEFAULT_HEADER,
    show_default=True,
    metavar="NAME",
    help="The header with the registry secret (its value: the secret, or `Bearer SECRET`).",
)
@click.option(
    "--dockerhub-secret-env",
    default="PIPELINE_DOCKERHUB_SECRET",
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the secret ending Docker Hub's webhook URL.",
)
@click.option("--branch", default="main", show_default=True, help="The branch base update runs build (its tip).")
@click.option(
    "--command",
    "command",
    metavar="COMMAND",
    help="Run this instead of `pipeline trigger` (its arguments are appended: --repo, --ref, --before, "
    "--after, --report, -f; for a base update --repo, --ref, --base, --report, -f).",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="On SIGTERM/SIGINT, seconds the current run may still take before it is terminated.",
)
@_limit_options
@click.option(
    "--public-url",
    metavar="URL",
    help="The status page's address for people (behind a proxy): notifications link to URL/runs/ID "
    "(default: the address it listens on).",
)
def serve(
    repo: str,
    host: str,
    port: int,
    state_dir: Path,
    config_file: str | None,
    secret_env: str,
    insecure_no_secret: bool,
    registry_hooks: tuple[str, ...],
    registry_secret_env: str,
    registry_header: str,
    dockerhub_secret_env: str,
    branch: str,
    command: str | None,
    stop_timeout: float,
    read_timeout: float,
    max_body: int,
    max_connections: int,
    public_url: str | None,
) -> None:
    """Receive push webhooks (GitHub, GitLab, generic JSON), run `pipeline trigger` for each pushed
    range one at a time, and show the runs on a status page.

    Deliveries must be signed with the secret (X-Hub-Signature-256, or X-Gitlab-Token); a redelivery
    runs nothing, and queued pushes to one branch are coalesced into one run. With --registry-hook,
    registries' push notifications queue base update runs the same way. Endpoints: POST /webhook,
    POST /hooks/registry/..., GET / (status page), /runs/ID, /api/runs, /api/runs/ID, /healthz.

    \b
    Example:
      PIPELINE_WEBHOOK_SECRET=... pipeline serve --repo /srv/git/shop.git --port 8080 -f pipelines.yaml
    """
    secret = _secret(secret_env, insecure_no_secret)
    registry = _registry_endpoints(registry_hooks, registry_secret_env, dockerhub_secret_env, registry_header, branch)
    state_dir = state_dir.resolve()
    # The runs don't need the webhook or registry secrets; keep them out of their environment altogether.
    hidden = {secret_env, registry_secret_env, dockerhub_secret_env}
    worker = _worker_settings(repo, state_dir, config_file, command, hidden, stop_timeout, public_url)
    limits = ServerLimits(read_timeout, max_body, max_connections)
    service = Service(
        ServeSettings(host, port, state_dir, secret, worker, limits, registry),
        _redactor(secret, registry),
        Forward(_log),
    )
    _serve_until_signalled(service, worker, state_dir, secret, registry)


def _worker_settings(
    repo: str,
    state_dir: Path,
    config_file: str | None,
    command: str | None,
    hidden: set[str],
    stop_timeout: float,
    public_url: str | None,
) -> WorkerSettings:
    """How the worker runs each queued push: the command (`pipeline trigger` unless --command), in an
    environment without the `hidden` variables, its logs and reports under the state directory."""
    prefix = tuple(shlex.split(command)) if command else DEFAULT_COMMAND
    if not prefix:
        raise UsageError("--command: empty command")
    env = {name: value for name, value in os.environ.items() if name not in hidden}
    return WorkerSettings(
        repo=_repo_argument(repo),
        runs_dir=state_dir / "runs",
        config=config_file,
        command=prefix,
        env=env,
        stop_timeout=stop_timeout,
        cache_dir=settings().repos_dir,  # the mirror `pipeline trigger` uses; the worker fetches it between runs
        public_url=public_url,
    )


def _redactor(secret: bytes | None, registry: RegistryEndpoints) -> Redactor:
    """What serve hides in its log and the runs' (see log_redactor): the webhook and registry secrets among them."""
    registry_secrets = [value.decode("utf-8") for value in registry.secrets.values()]
    return log_redactor(
        os.environ, secret.decode("utf-8") if secret else None, settings().docker_config, registry_secrets
    )


def _serve_until_signalled(
    service: Service, worker: WorkerSettings, state_dir: Path, secret: bytes | None, registry: RegistryEndpoints
) -> None:
    """Start the service, say where it listens, and serve until SIGTERM or SIGINT; then stop it (the
    current run may finish within --stop-timeout)."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    service.start()
    _log(f"listening on {service.url} for {worker.repo} (state: {state_dir})")
    if secret is None:
        _log("warning: --insecure-no-secret: deliveries are not authenticated")
    for source in registry.secrets:
        path = "/hooks/registry/dockerhub/***" if source == "dockerhub" else f"/hooks/registry/{source}"
        _log(f"registry notifications: POST {path} -> base update runs on {registry.ref}")
    while not stopping.wait(1.0):
        pass
    _log("stopping: no new deliveries; waiting for the current run")
    service.stop()
    _log("stopped")
