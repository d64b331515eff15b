"""What a run is given from outside: the settings the CLI reads from the environment (once), and the
secrets it asks for (a key's passphrase, an OIDC token), so nothing below the CLI reads either itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.ci import CiEnvironment, detect
from pipeline.errors import UsageError

# How a run shows its progress (--progress; -q is quiet).
PROGRESS_MODES = ("auto", "plain", "quiet")
ProgressMode = Literal["auto", "plain", "quiet"]


@dataclass(frozen=True)
class Settings:
    """What the environment says, read once (by the CLI) and passed in; nothing below reads it again."""

    environment: Mapping[str, str] = field(repr=False)  # for backends: DOCKER_HOST, AZURE_*
    docker_config: Path
    lock_dir: Path
    state_dir: Path
    cache_dir: Path
    registry_timeout: float
    ci: CiEnvironment | None = None  # the CI service the run is inside (branch and PR of its checkout)
    claims: bool = True  # versioned runs claim their version on the git remote (PIPELINE_CLAIMS=off: not)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """The one place the defaults live: `from_environment({})` is a run with nothing set."""
        home = Path.home()
        cache = Path(environ.get("XDG_CACHE_HOME") or home / ".cache")
        runtime = environ.get("XDG_RUNTIME_DIR") or environ.get("XDG_CACHE_HOME") or str(home / ".cache")
        return cls(
            environment=dict(environ),
            docker_config=docker_config_dir(environ),
            lock_dir=Path(runtime) / "pipeline" / "locks",
            # Publish journals must outlive a crash: XDG's state home.
            state_dir=Path(environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "pipeline",
            cache_dir=cache / "pipeline",
            registry_timeout=_registry_timeout(environ.get("PIPELINE_REGISTRY_TIMEOUT", "60")),
            ci=detect(environ),
            claims=_claims(environ.get("PIPELINE_CLAIMS", "on")),
        )

    @property
    def repos_dir(self) -> Path:
        """Where remote repositories are mirrored (triggers, watch, serve)."""
        return self.cache_dir / "repos"


def docker_config_dir(environ: Mapping[str, str]) -> Path:
    """Where docker keeps its config (and `docker login`'s credentials)."""
    return Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _claims(raw: str) -> bool:
    """PIPELINE_CLAIMS: `off` for a runner that cannot push to its git remote (it then has only the
    guarantees of a checkout without one)."""
    if raw not in ("on", "off"):
        raise UsageError(f"PIPELINE_CLAIMS={raw!r}: give on or off")
    return raw == "on"


def _registry_timeout(raw: str) -> float:
    """Seconds a registry request may wait for the server; one that outlasts it is retried like a
    dropped connection."""
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise UsageError(f"PIPELINE_REGISTRY_TIMEOUT={raw!r}: give seconds between 0 and 3600")
    return value


@dataclass(frozen=True)
class Secrets:
    """How a run gets what must never be an argument: a key's passphrase (asked for each key once, before
    anything is built) and the OIDC token for keyless signing (asked for only when a plan signs keyless)."""

    passphrase: Callable[[str], str]  # a key's path -> its passphrase (the CLI: COSIGN_PASSWORD or a prompt)
    identity_token: Callable[[], str | None] = lambda: None
