"""Who may write what a run reuses, and what a run may reuse. Pure: no I/O.

A pull/merge request's build runs code nobody has reviewed yet, so it never writes what a branch or
tag build reuses: its input tags are `inputs-pr-<hash>` (a branch build reads only `inputs-<hash>`) and
its build tags `pr-sha-<commit>` (a branch build's cache sources are `sha-<commit>` tags). It may read
both. Where the run is one of a pull request comes from the CI environment (RunContext.git_pr).

What a candidate must prove before it is reused is the pipeline's `reuse:` (resolved into
PlannedImage.reuse): `trusted` (signed by the pipeline's own signer), `any` or `never`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.cache.inputs import INPUTS_TAG_PREFIX, InputDigest
from pipeline.plan import Plan, PlannedImage, RunContext

PR_INPUTS_PREFIX = INPUTS_TAG_PREFIX + "pr-"

# Checks a candidate for reuse: (the image or variant, the candidate's digest, the inputs it must have been
# built from; None for a cache source) -> None when it may be used, else why not (`sha256:… is not
# signed by this pipeline's key`).
Vouch = Callable[[PlannedImage, str, InputDigest | None], str | None]


@dataclass(frozen=True)
class Scope:
    """The tags a run writes and reads for reuse."""

    untrusted: bool  # a pull/merge request's build
    why: str  # "pull request 9" / "branch build"

    @property
    def input_prefix(self) -> str:
        return PR_INPUTS_PREFIX if self.untrusted else INPUTS_TAG_PREFIX

    @property
    def read_prefixes(self) -> tuple[str, ...]:
        return (INPUTS_TAG_PREFIX, PR_INPUTS_PREFIX) if self.untrusted else (INPUTS_TAG_PREFIX,)

    def write_tag(self, inputs: InputDigest) -> str:
        """The input tag this run pushes a build under."""
        return self.input_prefix + inputs.tag.removeprefix(INPUTS_TAG_PREFIX)

    def read_tags(self, inputs: InputDigest) -> tuple[str, ...]:
        """The input tags this run may reuse an image from, in the order they are tried."""
        hexpart = inputs.tag.removeprefix(INPUTS_TAG_PREFIX)
        return tuple(prefix + hexpart for prefix in self.read_prefixes)


def scope_of(context: RunContext) -> Scope:
    if context.git_pr is not None:
        return Scope(True, f"pull/merge request {context.git_pr}")
    return Scope(False, "not a pull/merge request")


def reuse_warnings(plan: Plan) -> list[str]:
    """Unsafe `reuse:` choices of the plan's pipelines, once per pipeline."""
    warned: dict[str, str] = {}
    for image in plan.images.values():
        if image.pipeline in warned:
            continue
        if image.sign is not None and image.reuse == "any":
            warned[image.pipeline] = (
                f"pipeline {image.pipeline}: `reuse: any` on a pipeline that signs reuses images anyone with "
                "push rights can plant under an inputs- tag, then signs them (use `reuse: trusted`)"
            )
    return list(warned.values())
