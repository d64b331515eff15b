"""What the commands share: the group, common options, the session from the environment, secrets."""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from pipeline import __version__
from pipeline.common.reporting import Forward
from pipeline.errors import ConfigError, UsageError

# The config (pydantic and its models) loads when a command reads one: `changed` starts git first. The
# run's settings (and the CI detection they read) when a command reads them: `changed` never does.
if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from pipeline.config import LoadedConfig
    from pipeline.redaction import Redactor
    from pipeline.run.executor import RunOptions
    from pipeline.run.session import Session
    from pipeline.run.settings import ProgressMode, Secrets, Settings
    from pipeline.signing.signer import SignatureStorage, Signer

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """A group whose commands are imported when one runs (or `--help` lists them): `pipeline run` then
    loads neither the web server of `serve`, the Azure sync of `acr` nor the signing commands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}  # command name -> "module:attribute"
        self.summaries: dict[str, click.Command] = {}  # command name -> a stand-in with its summary only

    def add_lazy_command(self, name: str, where: str, summary: str, hidden: bool = False) -> None:
        """`summary`: the first sentence of the command's help, which is all its short help is made of."""
        self.lazy[name] = where
        self.summaries[name] = click.Command(name, help=summary, hidden=hidden)

    def summary_of(self, name: str) -> click.Command:
        """The command if it is loaded, else its stand-in: the same short help and hidden flag, and no
        import of its module (`pipeline --help`, completing a command name)."""
        return self.commands.get(name) or self.summaries[name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, from the summaries: nothing else of a command is shown."""
        commands = [(name, self.summary_of(name)) for name in self.list_commands(ctx)]
        rows = [(name, command) for name, command in commands if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """click's own completions (command names, then the group's options), from the summaries."""
        from click.shell_completion import CompletionItem

        commands = [(name, self.summary_of(name)) for name in self.list_commands(ctx) if name.startswith(incomplete)]
        results = [
            CompletionItem(name, help=command.get_short_help_str()) for name, command in commands if not command.hidden
        ]
        return [*results, *click.Command.shell_complete(self, ctx, incomplete)]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """An unknown command is one line naming the closest command (`relase`: did you mean 'release'?)."""
        name = args[0] if args else ""
        if ctx.resilient_parsing or not name or name.startswith("-") or self.get_command(ctx, name) is not None:
            return super().resolve_command(ctx, args)
        close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"see '{ctx.command_path} --help' for the commands"
        # Without the context click prints one line, not the usage and a hint above it.
        raise click.UsageError(f"no such command '{name}' ({hint})")

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _passed_as(name: str, flags: type[Any]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A command's options named by the fields of the dataclass `flags`, handed to it as one argument
    `name`: the commands that share those options share their parameters too."""
    fields = tuple(flags.__dataclass_fields__)

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        @wraps(func)
        def command(**kwargs: Any) -> None:
            func(**{name: flags(**{field: kwargs.pop(field) for field in fields})}, **kwargs)

        return command

    return decorate


@dataclass(frozen=True)
class SignerFlags:
    """--key, --identity-token, --trust-config and --storage (signer_options passes them as `signing`)."""

    key_path: Path | None
    token: str | None
    trust_config: Path | None
    storage: SignatureStorage

    @property
    def given(self) -> bool:
        """Whether any of them was given (--storage: other than the default "legacy")."""
        return bool(self.key_path or self.token or self.trust_config or self.storage != "legacy")

    def signer(self) -> Callable[[], Signer]:
        """The signer they describe, made when called (so the passphrase or token is asked for only once
        the digest is known): `sign`, `attest` and `promote --resign` alike."""
        from pipeline.signing.actions import make_signer  # signing loads only for the commands that sign

        return partial(
            make_signer,
            key_path=self.key_path,
            passphrase=passphrase,
            identity_token=lambda: identity_token(self.token),
            trust_config=str(self.trust_config) if self.trust_config else None,
            storage=self.storage,
        )


def signer_options(what: str, storage_default: str = "legacy") -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--key, --identity-token, --trust-config and --storage: who signs (`what`: e.g. "sign", "attest") and
    where the result goes, for `sign`, `attest` and `promote --resign` alike; the command gets them as
    one `signing: SignerFlags`."""

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        func = _passed_as("signing", SignerFlags)(func)
        options = [
            click.option(
                "--key",
                "key_path",
                type=click.Path(path_type=Path, dir_okay=False),
                help=f"{what}: cosign private key.",
            ),
            click.option(
                "--identity-token",
                "token",
                metavar="JWT",
                help=f"{what} keyless with this OIDC token instead of a key.",
            ),
            click.option(
                "--trust-config",
                type=click.Path(path_type=Path, dir_okay=False),
                help=f"{what} keyless: sigstore ClientTrustConfig JSON (private deployments; default: the public "
                "instance).",
            ),
            click.option(
                "--storage",
                type=click.Choice(["legacy", "referrers", "both"]),
                default=storage_default,
                show_default=True,
                help=f"{what}: legacy, cosign's sha256-<hex>.sig/.att tag; referrers, an OCI 1.1 sigstore bundle; "
                "both (keyless: always a bundle).",
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def progress_options(func: F) -> F:
    """--progress and -q, for the commands that build (`progress_mode` turns them into one mode)."""
    from pipeline.run.settings import PROGRESS_MODES

    func = click.option("-q", "--quiet", is_flag=True, help="Print only the results: no progress lines.")(func)
    return click.option(
        "--progress",
        type=click.Choice(PROGRESS_MODES),
        default="auto",
        show_default=True,
        help="auto: one line per build step; plain: also every line the steps print; quiet: as -q. "
        "A failure shows the failing step's last lines in every mode.",
    )(func)


def progress_mode(progress: str, quiet: bool) -> ProgressMode:
    if quiet and progress == "plain":
        raise UsageError("-q and --progress plain contradict each other: pass one")
    return "quiet" if quiet else cast("ProgressMode", progress)


locked_option = click.option(
    "--locked",
    is_flag=True,
    help="Build only on base images pipelines.lock names (beside the pipelines file): a base it does not name, "
    "or no lock file, is refused before anything builds (exit 2).",
)


@dataclass(frozen=True)
class RunFlags:
    """The options `run` and `release` share, as one value (run_options passes it as `flags`)."""

    jobs: int
    keep_going: bool
    force: bool
    no_cache: bool
    report_file: Path | None
    junit_file: Path | None
    dotenv: Path | None
    as_json: bool
    token: str | None
    progress: str
    quiet: bool
    locked: bool

    def options(self, *, push: bool) -> RunOptions:
        from pipeline.run.executor import RunOptions

        return RunOptions(
            jobs=self.jobs,
            keep_going=self.keep_going,
            push=push,
            force=self.force,
            cache=not self.no_cache,
            locked=self.locked,
        )


def run_options(func: Callable[..., None]) -> Callable[..., None]:
    """Options that `run` and `release` share, handed to the command as one `flags: RunFlags`."""

    wrapped = progress_options(_passed_as("flags", RunFlags)(func))
    wrapped = locked_option(wrapped)
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
        click.option(
            "--junit",
            "junit_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Also write a JUnit XML report here (one test case per image; written when images fail too).",
        ),
        click.option(
            "--dotenv",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Write the run's outputs as KEY=VALUE lines here (GitLab's artifacts:reports:dotenv).",
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
        wrapped = option(wrapped)
    return wrapped


def optional_config(config_file: Path | None) -> LoadedConfig | None:
    """The pipelines file a registry command also honours (TLS settings, trust policy): -f FILE, else
    ./pipelines.yaml when there is one."""
    from pipeline.config import load_config

    path = config_file or (Path("pipelines.yaml") if Path("pipelines.yaml").is_file() else None)
    return load_config(path) if path is not None else None


def echo_json(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> None:
    """A command's --json output, the same data in every environment: written so that no CI runner reads
    a command in it (a path or label with `##[` or `::` in it stays exactly as it is; the filter main()
    puts on stdout in CI then has nothing to change)."""
    from pipeline.ci.commands import inert_json

    click.echo(inert_json(data, indent=indent, sort_keys=sort_keys))


def say(message: str) -> None:
    """A progress line for people, on stderr."""
    click.echo(message, err=True)


STDERR = Forward(say)  # the reporter of every command: its progress lines, warnings too, on stderr


def redacted(text: str) -> str:
    """`text` as the CLI may print it: what main shows of an error (its `error:` line, its CI annotation)
    and release's progress lines come from anywhere (a DOCKER_HOST with a password in it, a registry's
    reply), not only from a run's result, which the run redacts itself."""
    return _redactor().text(text)


def config_errors_json(file: Path, exc: ConfigError) -> list[dict[str, Any]]:
    """`validate --json`'s "errors": each mistake with its file, line, column and key (null where the
    error names none, such as a file that cannot be read), redacted as printed errors are."""
    if exc.problems:
        return [
            {
                "file": problem.file,
                "line": problem.line,
                "column": problem.column,
                "key": redacted(problem.key) or None,
                "message": redacted(problem.message),
            }
            for problem in exc.problems
        ]
    return [{"file": str(file), "line": None, "column": None, "key": None, "message": redacted(str(exc))}]


@cache
def _redactor() -> Redactor:
    # Built on first use: reading the docker config costs nothing on a run that prints no error.
    from pipeline.redaction import Redactor
    from pipeline.run.settings import docker_config_dir

    return Redactor.for_run(os.environ, docker_config=docker_config_dir(os.environ))


def settings() -> Settings:
    """The environment, read here and nowhere below the CLI."""
    from pipeline.run.settings import Settings

    return Settings.from_environment(os.environ)


def session(config: LoadedConfig | None, progress: ProgressMode = "auto") -> Session:
    # Imported here: the session loads every backend, and `changed` (in commit hooks) needs none of them.
    from pipeline.run.session import Session

    return Session(config, settings(), STDERR, progress)


def secrets(token: str | None = None) -> Secrets:
    """A passphrase from COSIGN_PASSWORD or a prompt; the identity token from --identity-token, else
    SIGSTORE_ID_TOKEN, else the CI's ambient credential."""
    from pipeline.run.settings import Secrets

    return Secrets(passphrase=passphrase, identity_token=lambda: identity_token(token))


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
