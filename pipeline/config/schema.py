"""The pipelines.yaml schema as pydantic models; defaults live here and nowhere else.

Every field has a description and an example: `pipeline schema` turns these models into the JSON Schema
editors show on hover and complete from (pipeline/config/json_schema.py)."""

# No `from __future__ import annotations`: pydantic would evaluate each of the ~100 annotations from its
# text (typing.ForwardRef compiles and evals every one, ~2.5 ms of each start that builds the models).

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from pipeline.config import no_pydantic_plugins

no_pydantic_plugins.install()  # before the first model is built

NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=128)]
SecretId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
# `platform: 42` is a mistake, not the platform "42"; the grammar is checked in checks.py.
PlatformText = Annotated[str, Strict(), StringConstraints(min_length=1)]
# A Windows version as Windows reports it (major.minor.build[.revision]): 10.0.17763 is ltsc2019.
OsVersion = Annotated[str, Strict(), StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)?$")]
# Lax pydantic would read `keyless: "no"` as false and `timeout: true` as one second; a JSON Schema
# (and so an editor) says boolean and integer, and the loader means the same.
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict()]


def no_items() -> list[Any]:
    """The default of the list fields: a Python function, not `list`, whose signature pydantic reads without
    inspect parsing a builtin's text signature (which compiles tokenize's patterns: ~5 ms of each start
    that builds these models)."""
    return []


class StrictModel(BaseModel):
    """Unknown keys are errors, and scalars are strings only where a string is meant."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


Suffix = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{0,64}$")]

# Values that reach a command line (docker buildx build's argv, docker context inspect, buildx inspect)
# have a grammar that no flag and no `key=value` splitting can hide in; the sizes of values are bounded
# in config/arguments.py. BuildKit's stage names start with a letter (matched without regard to case).
TARGET_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"
Target = Annotated[str, StringConstraints(pattern=TARGET_PATTERN)]
# A build arg is `--build-arg NAME=VALUE`: a NAME with `=` in it would be another arg's name and value.
BUILD_ARG_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
BuildArgName = Annotated[str, StringConstraints(pattern=BUILD_ARG_PATTERN)]
# Labels are `--label KEY=VALUE`: reverse-DNS keys (org.opencontainers.image.source) and the like.
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$"
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
# As `docker context create` allows them, and as `docker buildx create --name` does.
CONTEXT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$"
ContextName = Annotated[str, StringConstraints(pattern=CONTEXT_PATTERN)]
BUILDX_BUILDER_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"
BuildxBuilderName = Annotated[str, StringConstraints(pattern=BUILDX_BUILDER_PATTERN)]
# `--secret id=ID,src=FILE` is read as comma-separated fields: a `,` or `"` in FILE would start another.
# The length is max_length, not `{1,4096}` in the pattern: pydantic-core's regex engine unrolls a counted
# repetition, and that one pattern cost ~20 ms of CPU (5 ms a compile, once per model holding secrets)
# at every start that loads the config; loader.py gives both mistakes the same message.
SECRET_FILE_PATTERN = r'^[^,"\x00-\x1f]+$'
SecretFile = Annotated[str, StringConstraints(pattern=SECRET_FILE_PATTERN, max_length=4096)]
# DOCKER_HOST: its URL's parts are checked in config/arguments.py.
HostUrl = Annotated[str, StringConstraints(min_length=1, max_length=1024)]

# The NAME of an environment variable, never its value: a secret written here would be committed.
EnvName = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]


class TagPolicy(StrictModel):
    """Which tags a release gets. Set at the top level, per pipeline or per image; the nearest wins."""

    floating: list[Literal["minor", "major", "latest"]] | None = Field(
        None,
        description="Floating tags to move (default: minor, major, latest; [] for none)",
        examples=[["minor", "major", "latest"], []],
    )
    extra: list[NonEmpty] | None = Field(
        None,
        description="Extra tag templates: {{ version }}, {{ major }}, {{ git.short_sha }}, {{ git.branch }}...",
        examples=[["{{ version }}-{{ git.short_sha }}", "{{ git.branch }}"]],
    )
    suffix: Suffix | None = Field(
        None, description="Variant suffix appended to every tag, e.g. '-windows'", examples=["-windows"]
    )
    variants: Flag | None = Field(
        None,
        description="Images with variants: also tag each variant alone, as <tag>-<variant> (2.1.5-ltsc2019), "
        "for users who pin one variant (default: false)",
        examples=[True],
    )


class SignSpec(StrictModel):
    """Sign every pushed digest: with a cosign key, or keyless (an OIDC token given at run time)."""

    key: NonEmpty | None = Field(
        None,
        description="cosign private key file, relative to this file (its passphrase from COSIGN_PASSWORD)",
        examples=[".keys/cosign.key"],
    )
    keyless: Flag = Field(
        False, description="Sign with a Fulcio certificate for the run's OIDC identity token", examples=[True]
    )
    attest: list[Literal["provenance", "sbom"]] = Field(
        default_factory=no_items,
        description="Also attest every pushed digest, signed the same way: provenance (SLSA v1: how it was "
        "built) and sbom (CycloneDX: what its layers contain)",
        examples=[["provenance", "sbom"]],
    )


# Which earlier build with the same input digest a run may reuse instead of building (docs/reuse-and-trust.md):
# `trusted` only one signed (and, with `attest: [provenance]`, attested for these inputs) by the
# pipeline's own signer; `any` whatever the `inputs-` tag holds; `never` none. Unset: `trusted` where the
# pipeline signs, else `any`.
Reuse = Literal["trusted", "any", "never"]
REUSE_DESCRIPTION = (
    "Which earlier build with the same inputs may be reused: trusted (signed by this pipeline's signer, and "
    "attested for these inputs where it attests; needs `sign`), any (whatever the inputs- tag holds), never "
    "(default: trusted where the pipeline signs, else any)"
)


class RegistrySpec(StrictModel):
    """Settings for one registry, keyed by its host[:port] under `registries:`."""

    signature_storage: Literal["legacy", "referrers", "both"] = Field(
        "legacy",
        description="legacy: cosign's sha256-<hex>.sig tag; referrers: OCI 1.1 bundle; both",
        examples=["both"],
    )
    ca_file: NonEmpty | None = Field(
        None,
        description="PEM CA certificate(s), relative to this file, that the registry's TLS certificate is "
        "verified against (in addition to the system CAs); the registry is then always reached over HTTPS",
        examples=["certs/registry-ca.pem"],
    )


class IdentitySpec(StrictModel):
    """A keyless signer: the OIDC issuer and subject its Fulcio certificate must name."""

    issuer: NonEmpty = Field(
        description="OIDC issuer of the signer's identity token",
        examples=["https://token.actions.githubusercontent.com"],
    )
    subject: NonEmpty = Field(
        description="The certificate's subject: the signer's identity (a workflow URI or an e-mail address)",
        examples=["https://github.com/org/base/.github/workflows/release.yml@refs/heads/main"],
    )


class ProvenanceRule(StrictModel):
    """Signed SLSA v1 provenance the images must carry, and what it must say."""

    builder_ids: list[NonEmpty] = Field(
        default_factory=no_items,
        description="Glob patterns; the provenance's runDetails.builder.id must match one (none given: any builder)",
        examples=[["https://github.com/pipeline-build/pipeline/builders/*"]],
    )
    sources: list[NonEmpty] = Field(
        default_factory=no_items,
        description="Glob patterns of the git repository it was built from: a resolved dependency with a "
        "gitCommit digest whose URI (without git+ and @ref) matches one (none given: any source)",
        examples=[["https://git.example.com/platform/*"]],
    )


class TrustRule(StrictModel):
    """Images of matching repositories need a signature from one of these keys or identities (and, where
    asked, attestations signed by one of them)."""

    repositories: list[NonEmpty] = Field(
        min_length=1,
        description="Glob patterns over <registry>/<path>, e.g. 127.0.0.1:5000/base/*",
        examples=[["127.0.0.1:5000/base/*"]],
    )
    keys: list[NonEmpty] = Field(
        default_factory=no_items,
        description="cosign public keys, relative to this file",
        examples=[["keys/base-team.pub"]],
    )
    identities: list[IdentitySpec] = Field(
        default_factory=no_items,
        description="Keyless signer identities",
        examples=[
            [
                {
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subject": "https://github.com/org/base/.github/workflows/release.yml@refs/heads/main",
                }
            ]
        ],
    )
    provenance: ProvenanceRule | None = Field(
        None,
        description="Require signed SLSA provenance (from these builders, of these sources)",
        examples=[{"builder_ids": ["https://github.com/pipeline-build/pipeline/builders/*"]}],
    )
    sbom: Flag = Field(False, description="Require a signed CycloneDX SBOM attestation", examples=[True])


class SigstoreSpec(StrictModel):
    """The Sigstore deployment (Fulcio, Rekor and their trust roots) keyless signing and verifying use."""

    trust_config: NonEmpty | None = Field(
        None,
        description="sigstore ClientTrustConfig JSON for a private deployment, relative to this file "
        "(default: the public instance)",
        examples=["sigstore/trust-config.json"],
    )


class AcrSpec(StrictModel):
    """Where `builder: acr` images build: an Azure Container Registry and its Tasks runners."""

    registry: NonEmpty = Field(
        description="Registry resource name (its login server is <name>.azurecr.io)", examples=["shopacr"]
    )
    resource_group: NonEmpty = Field(description="Azure resource group holding the registry", examples=["builds"])
    subscription: NonEmpty = Field(
        description="Azure subscription ID holding the resource group",
        examples=["00000000-0000-0000-0000-000000000000"],
    )
    arm_endpoint: NonEmpty = Field(
        "https://management.azure.com",
        description="ARM endpoint (sovereign clouds)",
        examples=["https://management.usgovcloudapi.net"],
    )
    login_server: NonEmpty | None = Field(
        None, description="Registry host; default <registry>.azurecr.io", examples=["shopacr.azurecr.io"]
    )
    timeout: Count = Field(
        3600, gt=0, description="Seconds a remote run may take before it is cancelled", examples=[7200]
    )

    @property
    def server(self) -> str:
        """The login server: the registry host that images built here are pushed to."""
        return self.login_server or f"{self.registry.lower()}.azurecr.io"


Builder = Literal["docker", "classic", "acr"]
# As `docker build --network` takes them; unset: the engine's own default.
Network = Literal["default", "none", "host"]


class SecretSource(StrictModel):
    """Where a build secret's value comes from at run time; it is never stored, logged or layered."""

    env: EnvName | None = Field(None, description="Environment variable holding the value", examples=["NPM_TOKEN"])
    file: SecretFile | None = Field(
        None, description="File holding the value (relative to this file; ~ expands)", examples=["~/.npmrc"]
    )


class BuildxSpec(StrictModel):
    """A buildx builder to build on instead of an engine."""

    builder: BuildxBuilderName = Field(
        description="A builder made with `docker buildx create` (any driver), used as is", examples=["arm-builder"]
    )


class EngineSpec(StrictModel):
    """A place to build: a Docker engine (URL or docker context) or a buildx builder."""

    host: HostUrl | None = Field(
        None,
        description="DOCKER_HOST-style URL: unix://PATH, tcp://HOST:PORT (with cert_path), ssh://[USER@]HOST[:PORT], "
        "npipe://PATH; no spaces",
        examples=["ssh://builder@arm-box.lan", "tcp://10.0.0.5:2376"],
    )
    context: ContextName | None = Field(
        None, description="A docker context name (docker context ls)", examples=["arm-box"]
    )
    buildx: BuildxSpec | None = Field(
        None, description="A buildx builder instead of an engine", examples=[{"builder": "arm-builder"}]
    )
    cert_path: NonEmpty | None = Field(
        None,
        description="Directory with ca.pem, cert.pem, key.pem for tcp:// with TLS (relative to this file)",
        examples=["certs/build-box"],
    )
    jobs: Count | None = Field(
        None, gt=0, description="Builds at once on this engine (default: the run's --jobs)", examples=[2]
    )
    os: Literal["linux", "windows"] = Field(
        "linux", description="What the engine builds: linux or windows images", examples=["windows"]
    )
    os_version: OsVersion | None = Field(
        None,
        description="A Windows engine's version (process isolation builds only variants of this version)",
        examples=["10.0.17763"],
    )


class VariantSpec(StrictModel):
    """One build of an image for one platform (and Windows version); an image's variants are published
    under one tag as an image index, and each node pulls the variant that matches it."""

    platform: PlatformText = Field(
        description="os/arch[/variant] of this variant, e.g. windows/amd64", examples=["windows/amd64"]
    )
    os_version: OsVersion | None = Field(
        None,
        description="Windows version the variant's base must match, e.g. 10.0.17763 (ltsc2019)",
        examples=["10.0.17763"],
    )
    build_args: dict[BuildArgName, str] = Field(
        default_factory=dict,
        description="Build args over the image's, e.g. the matching servercore tag",
        examples=[{"SERVERCORE_TAG": "ltsc2019"}],
    )
    builder: Builder | None = Field(
        None, description="Builder for this variant (default: the image's)", examples=["acr"]
    )
    engine: Name | None = Field(
        None, description="Build this variant only on this engine (a name under engines:)", examples=["win2019"]
    )


class ImageSpec(StrictModel):
    """One image of a pipeline: how it is built, what it is built after, where it is pushed and how tagged."""

    context: NonEmpty = Field(
        description="Build context directory, relative to the pipelines.yaml file", examples=["images/app"]
    )
    dockerfile: NonEmpty = Field(
        "Dockerfile", description="Dockerfile path, relative to the context", examples=["Dockerfile.prod"]
    )
    depends_on: list[Name] = Field(
        default_factory=no_items, description="Images of this pipeline built first", examples=[["base"]]
    )
    build_args: dict[BuildArgName, str] = Field(
        default_factory=dict,
        description="Build args (names are letters, digits and _, not starting with a digit; values up to 64 KiB); "
        "'{{ images.X }}' is X's pushed digest reference (and implies depends_on: [X]); "
        "also {{ version }}, {{ git.sha }}, {{ git.short_sha }}, {{ git.branch }}",
        examples=[{"BASE_IMAGE": "{{ images.base }}", "VERSION": "{{ version }}"}],
    )
    repository: NonEmpty | None = Field(
        None,
        description="Full repository; default <registry>/<image name>",
        examples=["127.0.0.1:5000/other/app"],
    )
    target: Target | None = Field(
        None, description="Multi-stage build target: a stage name of the Dockerfile", examples=["runtime"]
    )
    platform: PlatformText | None = Field(
        None,
        description="os/arch[/variant] to build for, lower case as in OCI image indexes (linux/arm64/v8)",
        examples=["linux/arm64/v8"],
    )
    platforms: list[PlatformText] | None = Field(
        None,
        description="Build for each of these platforms and publish one image index (variants named os-arch)",
        examples=[["linux/amd64", "linux/arm64"]],
    )
    variants: dict[Name, VariantSpec] | None = Field(
        None,
        description="Build these variants and publish one image index (overrides the pipeline's)",
        examples=[
            {
                "ltsc2019": {"platform": "windows/amd64", "os_version": "10.0.17763"},
                "ltsc2022": {"platform": "windows/amd64", "os_version": "10.0.20348"},
            }
        ],
    )
    labels: dict[LabelKey, str] = Field(
        default_factory=dict,
        description="Extra image labels (keys: letters, digits and . _ / -; values up to 64 KiB)",
        examples=[{"team": "shop", "org.opencontainers.image.vendor": "Shop"}],
    )
    tags: TagPolicy = Field(
        TagPolicy(),
        description="Tags for this image (over its pipeline's and the top level's)",
        examples=[{"suffix": "-linux"}],
    )
    paths: list[NonEmpty] = Field(
        default_factory=no_items,
        description="Extra globs (relative to this file) whose changes rebuild the image",
        examples=[["src/**", "requirements.txt"]],
    )
    builder: Builder | None = Field(
        None,
        description="docker (BuildKit through docker buildx), classic (the engine's legacy builder) or acr",
        examples=["classic"],
    )
    network: Network | None = Field(None, description="Network for RUN steps: default, none or host", examples=["none"])
    secrets: dict[SecretId, SecretSource] = Field(
        default_factory=dict,
        description="Build secrets by id (RUN --mount=type=secret,id=ID)",
        examples=[{"npm": {"env": "NPM_TOKEN"}}],
    )
    engine: Name | None = Field(
        None, description="Build only on this engine (a name under engines:)", examples=["arm-box"]
    )


class TriggerRule(StrictModel):
    """Docker Hub style: a branch rule builds what a push changed, a tag rule can cut a release."""

    branch: NonEmpty | None = Field(
        None, description="Regular expression a pushed branch name must match", examples=["^main$"]
    )
    tag: NonEmpty | None = Field(
        None,
        description="Regular expression a pushed tag must match",
        examples=[r"^v(?P<version>\d+\.\d+\.\d+)$"],
    )
    tags: list[NonEmpty] = Field(
        default_factory=no_items, description="Extra tag templates for builds it triggers", examples=[["latest-main"]]
    )
    release: Flag = Field(
        False, description="Tag rules: release the version in the (?P<version>...) group", examples=[True]
    )


class OnBaseUpdate(StrictModel):
    """What a base image update (`trigger --base`, `watch --bases`, serve's registry notifications) publishes."""

    release: Literal["patch", "none"] = Field(
        "none",
        description="patch: cut the next patch version for the images the update rebuilds (the rest keep theirs); "
        "none: publish only their build tags",
        examples=["patch"],
    )


NotifyEvent = Literal["failure", "release"]


class NotifyTarget(StrictModel):
    """One place a notification is posted to: a generic JSON webhook (signed when `secret_env` is given)
    or a Slack-compatible incoming webhook. Give exactly one of `url` and `url_env`."""

    url: NonEmpty | None = Field(
        None,
        description="http(s) URL to POST to; no credentials in it (this file is committed: use url_env)",
        examples=["https://hooks.example.com/pipeline"],
    )
    url_env: EnvName | None = Field(
        None,
        description="Environment variable holding the URL, for URLs that are secrets (a Slack webhook URL is)",
        examples=["SLACK_WEBHOOK_URL"],
    )
    kind: Literal["generic", "slack"] = Field(
        "generic",
        description="generic: a JSON body signed with X-Pipeline-Signature-256; slack: an incoming-webhook "
        "payload (text and blocks)",
        examples=["slack"],
    )
    events: list[NotifyEvent] | None = Field(
        None,
        description="Events posted to this target (default: the notify block's events; [] switches the target off)",
        examples=[["failure", "release"]],
    )
    secret_env: EnvName | None = Field(
        None,
        description="Environment variable holding the HMAC-SHA256 key that signs a generic webhook's body "
        "(the variable's NAME, never the secret itself)",
        examples=["PIPELINE_NOTIFY_SECRET"],
    )


class NotifySpec(StrictModel):
    """Messages sent when a run fails (and, if asked, when a release is published), after the result is
    known; a message that cannot be delivered is a warning and never changes the exit code."""

    events: list[NotifyEvent] = Field(
        default_factory=lambda: list[NotifyEvent](["failure"]),
        description="Events to post: failure (a run or release that failed), release (a published release)",
        examples=[["failure"], ["failure", "release"]],
    )
    targets: list[NotifyTarget] = Field(
        min_length=1,
        description="Where the messages go",
        examples=[[{"url": "https://hooks.example.com/pipeline", "secret_env": "PIPELINE_NOTIFY_SECRET"}]],
    )
    timeout: Annotated[float, Strict()] = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds all deliveries of one message may take together, retries included",
        examples=[30, 10],
    )


class PipelineSpec(StrictModel):
    """A pipeline: a DAG of images built, pushed, tagged and released together."""

    registry: NonEmpty | None = Field(
        None, description="Repository prefix for this pipeline's images", examples=["127.0.0.1:5000/shop"]
    )
    images: dict[Name, ImageSpec] = Field(
        min_length=1,
        description="The pipeline's images by name (lowercase letters and digits separated by single . _ or -)",
        examples=[{"base": {"context": "images/base"}, "app": {"context": "images/app", "depends_on": ["base"]}}],
    )
    tags: TagPolicy = Field(
        TagPolicy(),
        description="Tags for this pipeline's images (over the top level's)",
        examples=[{"floating": ["latest"], "extra": ["{{ git.branch }}"]}],
    )
    sign: SignSpec | None = Field(
        None,
        description="Signing for this pipeline's images (instead of the top level's)",
        examples=[{"keyless": True, "attest": ["provenance"]}],
    )
    reuse: Reuse | None = Field(None, description=REUSE_DESCRIPTION + " (over the top level's)", examples=["never"])
    triggers: list[TriggerRule] = Field(
        default_factory=no_items,
        description="Which pushes build this pipeline",
        examples=[[{"branch": "^main$"}, {"tag": r"^v(?P<version>\d+\.\d+\.\d+)$", "release": True}]],
    )
    on_base_update: OnBaseUpdate = Field(
        OnBaseUpdate(),
        description="What a base image update publishes for this pipeline",
        examples=[{"release": "patch"}],
    )
    builder: Builder | None = Field(
        None, description="Builder for this pipeline's images (default: the top level's)", examples=["acr"]
    )
    acr: AcrSpec | None = Field(
        None,
        description="ACR Tasks settings for this pipeline's `builder: acr` images (instead of the top level's)",
        examples=[
            {"registry": "shopacr", "resource_group": "builds", "subscription": "00000000-0000-0000-0000-000000000000"}
        ],
    )
    network: Network | None = Field(
        None,
        description="Network for RUN steps of this pipeline's images (default: the top level's)",
        examples=["none"],
    )
    secrets: dict[SecretId, SecretSource] = Field(
        default_factory=dict,
        description="Build secrets for every image",
        examples=[{"pip_conf": {"file": "secrets/pip.conf"}}],
    )
    engine: Name | None = Field(
        None,
        description="Build this pipeline's images only on this engine (a name under engines:)",
        examples=["arm-box"],
    )
    platforms: list[PlatformText] | None = Field(
        None, description="Default platforms for this pipeline's images", examples=[["linux/amd64", "linux/arm64"]]
    )
    variants: dict[Name, VariantSpec] | None = Field(
        None,
        description="Default variants for this pipeline's images",
        examples=[
            {
                "linux": {"platform": "linux/amd64"},
                "ltsc2022": {"platform": "windows/amd64", "os_version": "10.0.20348"},
            }
        ],
    )
    notify: NotifySpec | None = Field(
        None,
        description="Notifications for this pipeline (replaces the top-level notify)",
        examples=[{"events": ["failure", "release"], "targets": [{"url_env": "SLACK_WEBHOOK_URL", "kind": "slack"}]}],
    )


class ConfigSpec(StrictModel):
    """pipelines.yaml: pipelines of container images to build, tag, push, sign and release."""

    registry: NonEmpty | None = Field(
        None, description="Default repository prefix: image X is <registry>/X", examples=["127.0.0.1:5000/demo"]
    )
    insecure_registries: list[NonEmpty] = Field(
        default_factory=no_items,
        description="Registries reached over plain HTTP or unverified TLS (loopback: only if they speak no TLS)",
        examples=[["build.lan:5000"]],
    )
    tags: TagPolicy = Field(
        TagPolicy(),
        description="Tags for every image (a pipeline's or image's own tags: win)",
        examples=[{"floating": ["minor", "latest"], "extra": ["git-{{ git.short_sha }}"]}],
    )
    sign: SignSpec | None = Field(
        None,
        description="Default signing for every pipeline",
        examples=[{"key": ".keys/cosign.key", "attest": ["provenance", "sbom"]}],
    )
    reuse: Reuse | None = Field(None, description=REUSE_DESCRIPTION, examples=["trusted"])
    registries: dict[NonEmpty, RegistrySpec] = Field(
        default_factory=dict,
        description="Per-registry settings, by host[:port]",
        examples=[{"127.0.0.1:5000": {"signature_storage": "both"}}],
    )
    trust: list[TrustRule] = Field(
        default_factory=no_items,
        description="Signatures required per repository",
        examples=[[{"repositories": ["127.0.0.1:5000/base/*"], "keys": ["keys/base-team.pub"]}]],
    )
    sigstore: SigstoreSpec = Field(
        SigstoreSpec(),
        description="The Sigstore deployment for keyless signing and verifying (default: the public instance)",
        examples=[{"trust_config": "sigstore/trust-config.json"}],
    )
    builder: Builder = Field(
        "docker", description="Default builder: docker (BuildKit), classic, or acr", examples=["classic"]
    )
    network: Network | None = Field(
        None, description="Default network for RUN steps (default: the engine's)", examples=["none"]
    )
    engines: dict[Name, EngineSpec] = Field(
        default_factory=dict,
        description="Engines to spread builds over (default: DOCKER_HOST alone)",
        examples=[{"local": {"host": "unix:///var/run/docker.sock"}, "arm-box": {"host": "ssh://builder@arm-box.lan"}}],
    )
    acr: AcrSpec | None = Field(
        None,
        description="ACR Tasks settings for `builder: acr` images",
        examples=[
            {"registry": "shopacr", "resource_group": "builds", "subscription": "00000000-0000-0000-0000-000000000000"}
        ],
    )
    platforms: list[PlatformText] | None = Field(
        None, description="Default platforms for every image", examples=[["linux/amd64", "linux/arm64"]]
    )
    variants: dict[Name, VariantSpec] | None = Field(
        None,
        description="Default variants for every image",
        examples=[
            {
                "linux": {"platform": "linux/amd64"},
                "ltsc2022": {"platform": "windows/amd64", "os_version": "10.0.20348"},
            }
        ],
    )
    windows_engine: Flag = Field(
        False,
        description="The local engine builds Windows images (else platform windows/* goes to ACR)",
        examples=[True],
    )
    pipelines: dict[Name, PipelineSpec] = Field(
        min_length=1,
        description="The pipelines by name: each a DAG of images",
        examples=[{"shop": {"images": {"base": {"context": "images/base"}}}}],
    )
    notify: NotifySpec | None = Field(
        None,
        description="Notifications for every pipeline without its own notify",
        examples=[{"targets": [{"url": "https://hooks.example.com/pipeline", "secret_env": "PIPELINE_NOTIFY_SECRET"}]}],
    )
