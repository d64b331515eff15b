"""What the commands share: the group, common options, wiring a run from config to report."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline import __version__
from pipeline.acr.auth import AcrExchangeCredentials, CredentialLookup
from pipeline.builders import Builder
from pipeline.cache.inputs import GitBlobs
from pipeline.config import LoadedConfig, load_config
from pipeline.config.schema import AcrSpec
from pipeline.errors import RegistryError, RunFailed, UsageError
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.registry.credentials import DockerConfigCredentials
from pipeline.registry.tls import ssl_context
from pipeline.release.journal import read_journal
from pipeline.release.publish import complete_journal
from pipeline.run.executor import Executor, RunOptions, RunResult, Status
from pipeline.run.locks import pipeline_keys, pipeline_locks
from pipeline.run.report import ProgressPrinter, print_summary, report_data, write_report
from pipeline.signing.keys import read_private_key
from pipeline.signing.runsigner import RunSigner
from pipeline.signing.trust import BaseImageGate, TrustPolicy
from pipeline.vcs.info import read_git_info
from pipeline.versioning import parse_version

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pipeline")
def cli() -> None:
    """Build, tag, push and release DAGs of container images declared in pipelines.yaml.

    \b
    Example:
      pipeline plan                       # what would be built, in which order, with which tags
      pipeline run --version 2.1.5        # build, push and tag every pipeline
      pipeline release --bump auto        # next version from Conventional Commits, tag, build, publish
    """


def config_option(func: F) -> F:
    return click.option(
        "-f",
        "--file",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("pipelines.yaml"),
        show_default=True,
        help="The pipelines file.",
    )(func)


insecure_option = click.option(
    "--insecure-registry", "insecure", multiple=True, help="Reach this registry over plain HTTP (or unverified TLS)."
)


def optional_config_option(purpose: str) -> Callable[[F], F]:
    """-f for commands that work without a pipelines file but honour one (`purpose` says for what)."""
    return click.option(
        "-f",
        "--file",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help=f"Use this pipelines file's {purpose} (default: ./pipelines.yaml if present).",
    )


def run_options(func: F) -> F:
    """Options that `run` and `release` share."""
    options = [
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            default=os.cpu_count() or 1,
            show_default=True,
            help="Images built at once.",
        ),
        click.option("--keep-going", is_flag=True, help="After a failure, still build images that don't depend on it."),
        click.option(
            "--force", is_flag=True, help="Overwrite an existing release tag that names another image (loud)."
        ),
        click.option("--no-cache", is_flag=True, help="Build every image even if one with the same inputs exists."),
        click.option(
            "--report",
            "report_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Write the JSON report here.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of the table."),
        click.option(
            "--identity-token",
            "token",
            metavar="JWT",
            envvar=None,
            help="OIDC token for keyless signing (default: SIGSTORE_ID_TOKEN or the CI's ambient one).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def credentials(acr: Iterable[AcrSpec] = ()) -> CredentialLookup:
    """The docker config, then (for ACR login servers: *.azurecr.io and those of `acr`) an ACR refresh
    token exchanged for the Azure AD token."""
    specs = list(acr)
    arm_endpoint = specs[0].arm_endpoint if specs else AcrSpec.model_fields["arm_endpoint"].default

    def aad_token() -> str:
        from pipeline.acr.client import aad_token, azure_credential  # the Azure SDK is slow to import

        return aad_token(azure_credential(os.environ), str(arm_endpoint))

    return AcrExchangeCredentials(DockerConfigCredentials(docker_config_dir()), aad_token, [s.server for s in specs])


def ca_files(config: LoadedConfig | None) -> dict[str, Path]:
    """`registries: {HOST: {ca_file}}`, resolved against pipelines.yaml's directory."""
    if config is None:
        return {}
    found: dict[str, Path] = {}
    for host, settings in config.spec.registries.items():
        if settings.ca_file is None:
            continue
        path = config.base_dir / settings.ca_file
        where = ("registries", host, "ca_file")
        if not path.is_file():
            raise config.positions.error(where, f"CA file {path} does not exist")
        try:
            ssl_context(str(path.resolve()))
        except RegistryError:
            raise config.positions.error(where, f"{path} holds no PEM CA certificate") from None
        found[host] = path.resolve()
    return found


def optional_config(config_file: Path | None) -> LoadedConfig | None:
    """The pipelines file a registry command also honours (TLS settings, trust policy): -f FILE, else
    ./pipelines.yaml when there is one."""
    path = config_file or (Path("pipelines.yaml") if Path("pipelines.yaml").is_file() else None)
    return load_config(path) if path is not None else None


def registry_timeout() -> float:
    """Seconds a registry request may wait for the server (PIPELINE_REGISTRY_TIMEOUT, default 60); a
    request that outlasts it is retried like a dropped connection."""
    raw = os.environ.get("PIPELINE_REGISTRY_TIMEOUT", "60")
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise UsageError(f"PIPELINE_REGISTRY_TIMEOUT={raw!r}: give seconds between 0 and 3600")
    return value


def registry_client(config: LoadedConfig | None, insecure: Iterable[str] = ()) -> RegistryClient:
    """The client for a command's registry operations, with `config`'s TLS settings
    (`insecure_registries`, `registries.*.ca_file`) plus any `--insecure-registry` given."""
    hosts = [*insecure, *(config.spec.insecure_registries if config else [])]
    return RegistryClient(credentials(), hosts, timeout=registry_timeout(), ca_files=ca_files(config))


def build_plan(
    config: LoadedConfig,
    pipelines: tuple[str, ...],
    version: str | None,
    branch: str | None = None,
    trigger_tags: dict[str, tuple[str, ...]] | None = None,
) -> Plan:
    """The plan for this checkout; `branch` names the branch of a detached checkout (triggers)."""
    git = read_git_info(config.base_dir)
    context = RunContext(
        version=parse_version(version) if version else None,
        git_sha=git.sha if git else None,
        git_branch=branch or (git.branch if git else None),
        source_url=git.remote_url if git else None,
        created=git.committed_at if git else None,
        dirty=git.dirty if git else False,
    )
    return make_plan(config.spec, config.base_dir, list(pipelines), context, config.positions, trigger_tags)


def passphrase(what: str) -> str:
    """COSIGN_PASSWORD, else a prompt on a terminal; never an argument (it would show in `ps`)."""
    if "COSIGN_PASSWORD" in os.environ:
        return os.environ["COSIGN_PASSWORD"]
    if not sys.stdin.isatty():
        raise UsageError(f"{what} needs a passphrase: set COSIGN_PASSWORD (no terminal to prompt on)")
    return str(click.prompt(f"Passphrase for {what}", hide_input=True, default="", show_default=False))


def identity_token(explicit: str | None) -> str | None:
    """--identity-token, else SIGSTORE_ID_TOKEN, else the CI's ambient OIDC credential if any."""
    if explicit:
        return explicit
    if os.environ.get("SIGSTORE_ID_TOKEN"):
        return os.environ["SIGSTORE_ID_TOKEN"]
    from sigstore.oidc import detect_credential

    try:
        return detect_credential()
    except Exception:  # noqa: BLE001 - no ambient credential is the normal case outside CI
        return None


def run_signer(plan: Plan, registry: RegistryClient, config: LoadedConfig, token: str | None) -> RunSigner | None:
    """Decrypt each signing key the plan uses once, before anything is built."""
    specs = [image.sign for image in plan.images.values() if image.sign is not None]
    if not specs:
        return None
    keys = {}
    for path in sorted({s.key for s in specs if s.key}):
        keys[path] = read_private_key(Path(path), passphrase(path))
    keyless = None
    if any(s.keyless for s in specs):
        found = identity_token(token)
        if not found:
            raise UsageError("keyless signing needs an OIDC identity token: --identity-token or SIGSTORE_ID_TOKEN")
        trust = config.spec.sigstore.trust_config
        from pipeline.signing.keyless import KeylessSigner  # sigstore is slow to import; only when used

        keyless = KeylessSigner(found, str(config.base_dir / trust) if trust else None)
    return RunSigner(registry, keys, keyless)


def make_builders(plan: Plan) -> dict[str, Builder]:
    """The backends this plan's images use, each checked before anything is built."""
    wanted = {image.builder for image in plan.images.values()}
    builders: dict[str, Builder] = {}
    if "docker" in wanted:
        from pipeline.builders.docker import DockerBuilder  # the docker package is slow to import

        docker_builder = DockerBuilder(os.environ)
        docker_builder.check()
        builders["docker"] = docker_builder
    if "acr" in wanted:
        from pipeline.builders.acr import AcrBuilder  # the Azure SDK is slow to import

        builders["acr"] = AcrBuilder.from_environment(os.environ)
    return builders


def lock_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pipeline" / "locks"


def state_dir() -> Path:
    """Where pipelines keep state that must outlive a crash (publish journals): XDG's state home."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pipeline"


def journal_dirs(plan: Plan) -> dict[str, Path]:
    """Each pipeline of the plan -> the directory of its publish journal."""
    return {name: state_dir() / "pipelines" / key for name, key in pipeline_keys(plan).items()}


def complete_interrupted(plan: Plan, registry: RegistryClient) -> None:
    """Finish what a killed run of these pipelines recorded in its publish journal, before anything else."""
    for name, directory in journal_dirs(plan).items():
        journal = read_journal(directory)
        if journal is None:
            continue
        click.echo(
            f"pipeline {name}: a run interrupted while publishing ({journal.what}, "
            f"{len(journal.entries)} tag change(s) recorded in {journal.path}); completing it first",
            err=True,
        )
        done = complete_journal(journal, registry, lambda m: click.echo(f"  {m}", err=True))
        left = f"; left as they are (moved since): {', '.join(done.skipped)}" if done.skipped else ""
        click.echo(
            f"pipeline {name}: completed the interrupted publish: {done.written} tag(s) written, "
            f"{done.already} already in place{left}",
            err=True,
        )


def execute(
    config: LoadedConfig,
    plan: Plan,
    options: RunOptions,
    report_file: Path | None,
    as_json: bool,
    extra_report: dict[str, Any] | None = None,
    token: str | None = None,
) -> RunResult:
    """Run the plan and write/print the report (check_result tells whether it succeeded)."""
    if report_file and not report_file.parent.resolve().is_dir():
        raise UsageError(f"--report {report_file}: directory {report_file.parent} does not exist")
    builders = make_builders(plan)
    creds = credentials(image.acr for image in plan.images.values() if image.acr is not None)
    client = RegistryClient(
        creds, config.spec.insecure_registries, timeout=registry_timeout(), ca_files=ca_files(config)
    )
    with client as registry:
        for host in sorted({image.repository.registry for image in plan.images.values()}):
            registry.session.connect(host)  # a registry whose certificate does not verify: stop before building
        signer = run_signer(plan, registry, config, token) if options.push else None
        policy = TrustPolicy.from_config(config.spec, config.base_dir)
        gate = BaseImageGate(registry, policy, {str(i.repository) for i in plan.images.values()})
        blobs = GitBlobs.read(config.base_dir)
        journals = journal_dirs(plan)
        executor = Executor(
            plan,
            builders,
            registry,
            creds,
            options,
            on_event=ProgressPrinter(),
            sign=signer,
            gate=gate,
            blobs=blobs,
            journals=journals.__getitem__,
        )
        # Runs of one pipeline on this machine take turns; a second one then finds the first's images.
        locks = pipeline_locks(plan, lock_dir(), lambda m: click.echo(m, err=True)) if options.push else nullcontext()
        with locks:
            if options.push:
                complete_interrupted(plan, registry)
            result = executor.run()
    data = {**report_data(plan, result), **(extra_report or {})}
    if report_file:
        write_report(report_file, data)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        print_summary(result)
    return result


def check_result(result: RunResult) -> None:
    """Raise RunFailed (exit 1) if anything in the run failed."""
    if result.error:
        raise RunFailed(result.error)
    if not result.ok:
        failed = [k for k, r in result.images.items() if r.status == Status.FAILED]
        raise RunFailed(f"{len(failed)} image(s) failed: {', '.join(failed)}; no release or floating tag moved")
