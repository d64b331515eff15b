"""The SLSA v1 provenance predicate (https://slsa.dev/spec/v1.0/provenance) of one image (or one variant)
that pipeline built and pushed, from the facts the run gathered (`BuildFacts`). Pure: no I/O.

Build type `https://github.com/pipeline-build/pipeline/buildtypes/image/v1` (`BUILD_TYPE`)
------------------------------------------------------------------------------------------
One image of a pipelines.yaml, built by `pipeline run` from a git checkout and pushed by digest; the
provenance's subject is that digest (an image index's digest for an image with variants is attested by
each variant's own provenance and the index's). To rebuild: check out `source.repository` at the commit
of the git dependency and run `pipeline run -f CONFIG PIPELINE` (`--version VERSION` when set): IMAGE is
built with BUILDARGS as rendered here.

externalParameters (what the user controls; a verifier checks them):
  config      string   path of pipelines.yaml from the repository root
  pipeline    string   the pipeline's name in it
  image       string   the image's name in that pipeline
  variant     string   the variant's name, for one variant of an image with `variants:`
  version     string   the version the run was given (a release), if any
  target      string   the Dockerfile stage built, if not the last
  platform    string   the platform built for (`linux/arm64`), if one was asked for
  osVersion   string   the Windows version a windows/* variant is built for
  buildArgs   object   build args (string -> string) as the build got them, templates rendered, sorted
                       by name. Build secrets (`secrets:`) are a separate mechanism and never appear.
  source      object   `repository`: the checkout's `origin` URL; `ref`: the git ref checked out
                       (`refs/heads/main`; absent on a detached HEAD); `dirty`: true when the tree had
                       uncommitted changes (absent otherwise), in which case the commit is not the whole
                       input.
internalParameters (what pipeline decided; for debugging and incident response):
  inputDigest string   pipeline's own cache key of the build's inputs (`sha256:<hex>`)
  builder     string   the backend: `buildx` (BuildKit), `classic` or `acr`
  engine      string   the name of the engine the build ran on (pipelines.yaml `engines:`)
  dockerfile  string   the Dockerfile's path from the repository root, as pipelines.yaml resolves it
  context     string   the build context's path from the repository root
  acr         object   `registry` and `runId` of an ACR Tasks build
  reason      string   why a trigger ran the build, when one did (`base update: <ref> <old> → <new>`)
resolvedDependencies:
  - the source: `git+<repository URI>@<ref, or the commit on a detached HEAD>`, digest `gitCommit`
    (scp-like remotes are written `ssh://user@host/path`; without a remote, the digest alone)
  - the Dockerfile: `name` its path, digest `sha256` of the file as built; `uri`
    `git+<repository URI>@<commit>#<path>` when the tree was clean (otherwise the file is not that)
  - each base image: `name` the reference the Dockerfile resolved to, `uri` its package URL
    (`pkg:docker/<path>@<tag>?platform=...&repository_url=<registry>`), digest `sha256`
runDetails.builder.id: `https://github.com/pipeline-build/pipeline/builders/<kind>` (`builder_id`) for kind
`buildx`, `classic` or `acr`, one id per mode of operation as SLSA asks, so a trust policy matches all of
pipeline's builders with the glob `https://github.com/pipeline-build/pipeline/builders/*` or one kind
exactly; who ran it is the attestation's signer, not the id. `version` names `pipeline`, `engine` (the
Docker engine's version) and `buildx`. metadata: `invocationId` is the run's id; `startedOn`/`finishedOn`
the build's start and end (RFC 3339, UTC).

Every URL in the predicate has its userinfo removed, wherever it came from (a remote, a build arg): a
token in a URL must not be published with the image. Fields without a value are left out, never null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pipeline import __version__
from pipeline.attest.uris import git_source_uri, image_purl
from pipeline.common.fields import fields_of
from pipeline.common.urls import strip_credentials
from pipeline.signing.payloads import SLSA_PROVENANCE_V1, in_toto_statement

BUILD_TYPE = "https://github.com/pipeline-build/pipeline/buildtypes/image/v1"
BUILDER_ID_PREFIX = "https://github.com/pipeline-build/pipeline/builders/"
BuilderKind = Literal["buildx", "classic", "acr"]

_DIGEST = re.compile(r"^[a-z0-9_]+:[0-9a-f]+$")
_GIT_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class BaseImage(NamedTuple):
    reference: str  # as the Dockerfile's FROM resolved it: `registry/path:tag`
    digest: str  # sha256:<hex> of what the build pulled


@dataclass(frozen=True, kw_only=True)
class BuildFacts:
    """What a run knows about one pushed image or variant. Paths are POSIX, from the repository root;
    digests `algorithm:<lowercase hex>`; times aware (stored in UTC). No build secret has a field here."""

    config_path: str
    pipeline: str
    image: str
    repository: str  # the subject: where the image was pushed, without tag or digest
    digest: str  # the subject's manifest (or index) digest
    builder: BuilderKind
    variant: str | None = None
    version: str | None = None
    target: str | None = None
    platform: str | None = None
    os_version: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    source_repository: str | None = None  # origin's URL (any credentials are stripped here too)
    source_ref: str | None = None  # `refs/heads/main`; None on a detached HEAD
    commit: str | None = None
    dirty: bool = False
    dockerfile: str | None = None
    dockerfile_digest: str | None = None
    context: str | None = None
    base_images: tuple[BaseImage, ...] = ()
    input_digest: str | None = None
    engine: str | None = None  # the engine's name in pipelines.yaml
    engine_version: str | None = None
    buildx_version: str | None = None
    acr_registry: str | None = None
    acr_run_id: str | None = None
    reason: str | None = None  # why a trigger ran the build (a base update)
    pipeline_version: str = __version__
    invocation_id: str | None = None
    started_on: datetime | None = None
    finished_on: datetime | None = None

    def __post_init__(self) -> None:
        digests = [self.digest, self.dockerfile_digest, *(base.digest for base in self.base_images)]
        for digest in filter(None, digests):
            if not _DIGEST.match(digest):
                raise ValueError(f"'{digest}' is not a digest (algorithm:<lowercase hex>)")
        if self.commit is not None and not _GIT_COMMIT.match(self.commit):
            raise ValueError(f"'{self.commit}' is not a git commit (40 or 64 lowercase hex)")
        for moment in (self.started_on, self.finished_on):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{moment!r} has no time zone: a provenance time must be UTC")


def builder_id(kind: BuilderKind) -> str:
    return BUILDER_ID_PREFIX + kind


def provenance_predicate(facts: BuildFacts) -> dict[str, Any]:
    """The predicate of `https://slsa.dev/provenance/v1` for `facts`, as described in this module."""
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": _external_parameters(facts),
            "internalParameters": _internal_parameters(facts),
            "resolvedDependencies": _resolved_dependencies(facts),
        },
        "runDetails": {
            "builder": {
                "id": builder_id(facts.builder),
                "version": {
                    "pipeline": facts.pipeline_version,
                    "engine": facts.engine_version,
                    "buildx": facts.buildx_version,
                },
            },
            "metadata": {
                "invocationId": facts.invocation_id,
                "startedOn": _timestamp(facts.started_on),
                "finishedOn": _timestamp(facts.finished_on),
            },
        },
    }
    return _scrub(predicate)  # type: ignore[no-any-return]  # a dict stays a dict


def provenance_statement(facts: BuildFacts) -> bytes:
    """The in-toto v1 statement of `facts`' provenance about the pushed digest: the payload to sign."""
    return in_toto_statement(facts.repository, facts.digest, SLSA_PROVENANCE_V1, provenance_predicate(facts))


def _external_parameters(facts: BuildFacts) -> dict[str, Any]:
    return {
        "config": facts.config_path,
        **fields_of(facts, "pipeline", "image", "variant", "version", "target", "platform"),
        "osVersion": facts.os_version,
        "buildArgs": {name: facts.build_args[name] for name in sorted(facts.build_args)},
        "source": {
            "repository": facts.source_repository,
            "ref": facts.source_ref,
            "dirty": True if facts.dirty else None,
        },
    }


def _internal_parameters(facts: BuildFacts) -> dict[str, Any]:
    return {
        "inputDigest": facts.input_digest,
        **fields_of(facts, "builder", "engine", "dockerfile", "context"),
        "acr": {"registry": facts.acr_registry, "runId": facts.acr_run_id},
        "reason": facts.reason,
    }


def _resolved_dependencies(facts: BuildFacts) -> list[dict[str, Any]]:
    source = git_source_uri(facts.source_repository) if facts.source_repository else None
    dependencies: list[dict[str, Any]] = []
    if facts.commit is not None:
        at = facts.source_ref or facts.commit
        dependencies.append({"uri": source and f"git+{source}@{at}", "digest": {"gitCommit": facts.commit}})
    if facts.dockerfile_digest is not None:
        in_commit = source and facts.commit and facts.dockerfile and not facts.dirty
        dependencies.append(
            {
                "name": facts.dockerfile,
                "uri": f"git+{source}@{facts.commit}#{facts.dockerfile}" if in_commit else None,
                "digest": _digest_set(facts.dockerfile_digest),
            }
        )
    for base in facts.base_images:
        purl = image_purl(base.reference, facts.platform)
        dependencies.append({"name": base.reference, "uri": purl, "digest": _digest_set(base.digest)})
    return dependencies


def _digest_set(digest: str) -> dict[str, str]:
    algorithm, _, hexdigest = digest.partition(":")
    return {algorithm: hexdigest}


def _timestamp(moment: datetime | None) -> str | None:
    # RFC 3339 in UTC with a `Z`, as in-toto's Timestamp asks; whole seconds are enough for a build.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def _scrub(value: Any) -> Any:
    """Without credentials in any string and without empty fields (SLSA reads unset, null and empty
    alike, so writing them only adds noise); `False` and `0` are values and stay."""
    if isinstance(value, str):
        return strip_credentials(value)
    if isinstance(value, dict):
        kept = {key: _scrub(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item is not None and item != {} and item != []}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value
