"""The exception hierarchy; cli.py alone maps these to messages and exit codes."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from dataclasses import dataclass


class PipelineError(Exception):
    """An expected failure with a message a user can act on."""

    exit_code = 1


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in a config file and where it is: `key` is the dotted key path ("" for the file's own,
    such as invalid YAML). Shown as `file:line:column: key: message`, one line."""

    file: str
    line: int
    column: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(PipelineError):
    """pipelines.yaml (or a command's arguments) is invalid; nothing was built. `problems` lists each
    mistake found in a config file with its position (empty for an error that names no position); the
    message is then their lines, one per problem."""

    exit_code = 2

    def __init__(self, message: str = "", problems: Iterable[ConfigProblem] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__(message or "\n".join(str(problem) for problem in self.problems))


class UsageError(ConfigError):
    """A command-line argument is invalid."""


class BuildError(PipelineError):
    """An image failed to build; `log_tail` holds the failing step's last output lines, `step` names it."""

    def __init__(self, message: str, log_tail: tuple[str, ...] = (), step: str | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail
        self.step = step


class EngineUnavailable(BuildError):
    """The engine a build ran on stopped answering (checked, not guessed from an error text)."""

    def __init__(self, message: str, engine: str) -> None:
        super().__init__(message)
        self.engine = engine


class RegistryError(PipelineError):
    """A registry refused or failed a request (after retries where they apply)."""


class AuthError(RegistryError):
    """A registry rejected our credentials, or we had none."""


class TagConflict(PipelineError):
    """A release tag already names a different image; nothing was moved."""


class PublishFailed(PipelineError):
    """Publishing a run's tags failed part-way; what could be moved back was (the message names the rest)."""


class SigningError(PipelineError):
    """A key could not be read or used, or a signature could not be made or stored."""


class VerificationFailed(PipelineError):
    """An image has no acceptable signature (none, bad, or the wrong identity)."""


class RunFailed(PipelineError):
    """One or more images of a run failed; details are in the run's report."""


class SourceUnavailable(PipelineError):
    """The repository a trigger reads cannot be read: it cannot be cloned or fetched, or has no such branch."""

    exit_code = 4


class EnvironmentProblem(PipelineError):
    """Something the tool needs is not there (no Docker engine, no git)."""

    exit_code = 3


class Interrupted(KeyboardInterrupt):
    """A signal stopped the process: SIGINT (Ctrl-C, or a cancelled job's first signal) or SIGTERM. Not a
    PipelineError: nothing failed, so `except Exception` (notifications, cleanups) lets it through; the
    CLI exits 128 + the signal's number (130, 143) after writing what the run knew."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interrupt_of(exc: BaseException) -> Interrupted:
    """A KeyboardInterrupt as the Interrupted it stands for (Python raises a bare one for SIGINT)."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
