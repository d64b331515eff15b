"""The exception hierarchy; cli.py alone maps these to messages and exit codes."""

from __future__ import annotations


class PipelineError(Exception):
    """An expected failure with a message a user can act on."""

    exit_code = 1


class ConfigError(PipelineError):
    """pipelines.yaml (or a command's arguments) is invalid; nothing was built."""

    exit_code = 2


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
