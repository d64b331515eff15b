"""What a run reports and hands between its parts: the report rows (`ImageResult`, `RunResult`), the
progress `Event`, the run's options, and what one image build returns (`ImageOutcome`, immutable: what
dependants and publishing read, while the row stays its build's own)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from pipeline.bases.resolve import ResolvedBase
from pipeline.plan import PlannedImage
from pipeline.release.publish import TagChange


class Status(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # was being built, checked or pushed when a signal stopped the run


@dataclass
class ImageResult:
    key: str
    repository: str
    status: Status = Status.PENDING
    digest: str | None = None
    image_id: str | None = None
    tags: list[str] = field(default_factory=list)
    started: float | None = None  # monotonic clock, for elapsed times
    started_at: float | None = None  # wall clock (epoch seconds), for the report
    finished_at: float | None = None
    duration: float = 0.0
    error: str | None = None
    build_started_at: float | None = None  # wall clock while it held a build slot (None: not built)
    build_finished_at: float | None = None
    inputs: str | None = None  # the input digest (see inputs.py)
    cached: bool = False  # reused an earlier build with the same inputs instead of building
    engine: str | None = None  # where it was built, or its last build failed (None: not built, or remotely)
    log_tail: tuple[str, ...] = ()  # a failed build: the failing step's last output lines
    failed_step: str | None = None  # a failed build: the Dockerfile step that failed, when the builder says
    variants: dict[str, ImageResult] = field(default_factory=dict)  # by variant name (an image index's children)
    platform: str | None = None  # a variant: what it was built for (`windows/amd64 10.0.17763`)
    # A reused image: the version and commit its labels name (those of the earlier build that made it).
    built_from: dict[str, str | None] | None = None
    # Images under this run's input tags that were not reused, and why (docs/reuse-and-trust.md).
    not_reused: list[str] = field(default_factory=list)
    # The external base images it stands on, as this run resolved them (an index: its variants', together).
    bases: list[ResolvedBase] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        return f"{self.repository}@{self.digest}" if self.digest else None


@dataclass
class RunResult:
    images: dict[str, ImageResult]
    duration: float = 0.0
    published: bool = False
    tag_changes: list[TagChange] = field(default_factory=list)
    error: str | None = None  # a run-level failure (publishing), beside per-image errors
    interrupted: str | None = None  # the signal that stopped the run (SIGINT, SIGTERM)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.interrupted is None
            and all(r.status == Status.SUCCEEDED for r in self.images.values())
        )


@dataclass(frozen=True)
class Event:
    image: str
    step: str
    message: str
    elapsed: float  # seconds since the run started (one clock for every image)
    log_tail: tuple[str, ...] = ()  # a "failed" event: the failing step's last output lines


@dataclass(frozen=True)
class RunOptions:
    jobs: int = 1
    keep_going: bool = False
    push: bool = True
    force: bool = False  # overwrite existing release tags
    cache: bool = True  # reuse an image already pushed with the same input digest
    locked: bool = False  # --locked: every external base must be in pipelines.lock


@dataclass(frozen=True)
class Built:
    """What the executor knows of one build it pushed (an image, or one variant of one): what its
    provenance says (run.attesting)."""

    view: PlannedImage  # the image, or the variant's view of it
    digest: str
    build_args: Mapping[str, str]
    input_digest: str | None
    engine: str | None
    started_at: float | None  # wall clock, epoch seconds
    finished_at: float | None
    remote_run: str | None = None  # ACR Tasks' run id
    bases: tuple[ResolvedBase, ...] = ()  # the external bases it stood on, as the run resolved them


# Not a Reporter: structured `Event`s (image, step, elapsed time, log tail) for the report and CI groups, not lines.
EventSink = Callable[[Event], None]
# Signs a pushed digest as the image's pipeline says; returns a progress line (None: not signed).
DigestSigner = Callable[[PlannedImage, str], str | None]
# Attests a pushed digest (and an index's children) from what this run built; returns a progress line.
DigestAttester = Callable[[PlannedImage, str, Sequence[Built]], str | None]
# Checks an image's base images against the trust policy before it is built; returns what it verified.
BaseGate = Callable[[PlannedImage, Mapping[str, str]], list[str]]


@dataclass(frozen=True)
class ImageOutcome:
    """What one image build ended with, handed to the scheduler once it is over: dependants build on its
    digest (or reference), publishing tags it and its variants' digests. Never changed after."""

    key: str
    repository: str
    status: Status
    digest: str | None = None
    variants: Mapping[str, str | None] = field(default_factory=dict)  # variant name -> its own digest

    def __post_init__(self) -> None:
        # A read-only copy: neither the builder's dict nor a reader can change it afterwards.
        object.__setattr__(self, "variants", MappingProxyType(dict(self.variants)))

    @property
    def reference(self) -> str | None:
        return f"{self.repository}@{self.digest}" if self.digest else None

    @staticmethod
    def of(row: ImageResult) -> ImageOutcome:
        variants = {name: child.digest for name, child in row.variants.items()}
        return ImageOutcome(row.key, row.repository, row.status, row.digest, variants)


# Not a Reporter: it makes an `Event` (with the build's log tail) on the run's clock for the EventSink.
class Emit(Protocol):
    """Says one progress step of an image (an `Event` on the run's clock)."""

    def __call__(self, key: str, step: str, message: str, log_tail: tuple[str, ...] = ()) -> None: ...
