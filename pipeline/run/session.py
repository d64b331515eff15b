"""The run session: a loaded config plus settings turned into ready parts (plan, registry client, build
backends, signer, trust gate, locks) and a plan run through them. Every command that builds or talks to
a registry on a config's behalf (`run`, `release`, `trigger`, hooks, `watch`, `serve`'s worker, bench/)
comes through here, so a run is wired in one place.

>>> session = Session(load_config(Path("pipelines.yaml")), Settings.from_environment(os.environ))  # doctest: +SKIP
>>> result = session.execute(session.plan(("shop",), "2.1.5"), RunOptions(jobs=4), Secrets(ask))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from pipeline.acr.auth import AcrExchangeCredentials
from pipeline.bases.resolve import BaseResolver, open_resolver, plan_builds
from pipeline.builders import Backend, open_backends
from pipeline.cache.inputs import GitBlobs, InputDigest
from pipeline.cache.predict import Prediction, predict
from pipeline.cache.scope import Vouch, reuse_warnings
from pipeline.ci import checkout_of
from pipeline.ci.commands import GroupSyntax
from pipeline.common.reporting import SILENT, Forward, Reporter
from pipeline.config import LoadedConfig
from pipeline.config.resolved import AcrSettings
from pipeline.errors import ConfigError, PipelineError, RegistryError, RunFailed, UsageError
from pipeline.files import check_regular_file
from pipeline.plan import Plan, PlannedImage, RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.registry.contentcache import ContentCache
from pipeline.registry.credentials import CredentialLookup, DockerConfigCredentials
from pipeline.registry.reference import parse_repository
from pipeline.registry.tls import ssl_context
from pipeline.release.journal import JournalEntry, read_journal
from pipeline.release.publish import (
    Action,
    Released,
    TagChange,
    Target,
    complete_journal,
    read_back,
    settle_floating,
)
from pipeline.run.executor import EventSink, Executor, RunInterrupted, RunOptions, RunResult, Status
from pipeline.run.locks import pipeline_keys, pipeline_locks
from pipeline.run.redacting import redact_result, redacting, run_redactor
from pipeline.run.report import ProgressMode, ProgressPrinter
from pipeline.run.settings import Secrets, Settings
from pipeline.signing.trust import BaseImageGate, TrustPolicy
from pipeline.vcs.info import read_git_info
from pipeline.versioning import parse_version, version_tag

# What only some commands or configs use is imported where it is used: start-up is most of a no-op run.
if TYPE_CHECKING:
    from pipeline.cache.explain import Explanation
    from pipeline.release.claims import ReleaseClaims
    from pipeline.run.attesting import RunAttester
    from pipeline.signing.runsigner import RunSigner

T = TypeVar("T")


class _Check(Protocol):
    """Runs one pre-build step: raising its refusal (a run) or recording it (a dry run)."""

    def __call__(self, step: Callable[[], T]) -> T | None: ...


def _strict(step: Callable[[], T]) -> T | None:
    return step()


@dataclass
class _Parts:
    backends: dict[str, Backend] | None
    credentials: CredentialLookup
    registry: RegistryClient
    reachable: bool
    signer: RunSigner | None
    policy: TrustPolicy | None
    bases: BaseResolver | None  # the run's external base images, each resolved once


@dataclass
class Preview:
    """What a dry run found: the tag changes the run would make, and every refusal it would stop at, in
    the order the run meets them (the first decides the exit code)."""

    changes: list[TagChange] | None
    refusals: list[PipelineError]


@dataclass(eq=False)  # identity: one config and its settings
class Session:
    """One config (or none: registry commands outside a project) and the settings; makes plans and runs
    them. `reporter` takes progress lines meant for stderr; `progress` is how much of a run's progress is
    printed there (`--progress`, `-q`)."""

    config: LoadedConfig | None
    settings: Settings
    reporter: Reporter = SILENT
    progress: ProgressMode = "auto"
    groups: GroupSyntax | None = None  # fold each image's progress into a CI log group
    # Where a versioned run claims its version (several runners): a remote of the checkout by name, or the
    # URL or path of the repository a trigger builds from.
    claims_remote: str = "origin"

    @property
    def loaded(self) -> LoadedConfig:
        if self.config is None:
            raise UsageError("no pipelines file: pass -f FILE")
        return self.config

    # --- planning --------------------------------------------------------------------------------

    def plan(
        self,
        pipelines: Iterable[str],
        version: str | None,
        branch: str | None = None,
        trigger_tags: dict[str, tuple[str, ...]] | None = None,
    ) -> Plan:
        """The plan for this checkout; `branch` names the branch of a detached checkout (triggers)."""
        config = self.loaded
        git = read_git_info(config.base_dir)
        checkout = checkout_of(
            git.sha if git else None, git.branch if git else None, git.root if git else None, self.settings.ci, branch
        )
        context = replace(
            RunContext.of(checkout),
            version=parse_version(version) if version else None,
            source_url=git.remote_url if git else None,
            created=git.committed_at if git else None,
            dirty=git.dirty if git else False,
            earlier_commits=git.earlier if git else (),
        )
        return make_plan(
            config.spec, config.base_dir, list(pipelines), context, config.positions, trigger_tags, config.images
        )

    def blobs(self) -> GitBlobs | None:
        return GitBlobs.read(self.loaded.base_dir)

    def predictions(self, plan: Plan) -> dict[str, Prediction]:
        """Which images the registry's input-digest tags let a run reuse (`plan`)."""
        with self.registry() as registry:
            return predict(plan, registry, self.blobs(), bases=self._bases(plan, registry).digests)

    def explain(self, plan: Plan, key: str) -> Explanation:
        from pipeline.cache.explain import explain_image

        with self.registry() as registry:
            resolver = self._bases(plan, registry)
            return explain_image(plan, key, registry, self.blobs(), self.loaded.base_dir, resolver.digests)

    def _bases(self, plan: Plan, registry: RegistryClient) -> BaseResolver:
        """The resolver a run of `plan` would use (pipelines.lock beside the config), so `plan`, `explain`
        and the release pre-check compute the run's input digests."""
        return open_resolver(registry, plan, self.loaded.file)

    # --- the registry ----------------------------------------------------------------------------

    def credentials(self, acr: Iterable[AcrSettings] = ()) -> CredentialLookup:
        """The docker config, then (for ACR login servers: *.azurecr.io and those of `acr`) an ACR refresh
        token exchanged for the Azure AD token."""
        specs = list(acr)
        arm_endpoint = specs[0].arm_endpoint if specs else AcrSettings.arm_endpoint
        environment = self.settings.environment

        def aad_token() -> str:
            from pipeline.acr.client import aad_token, azure_credential  # the Azure SDK is slow to import

            return aad_token(azure_credential(environment), str(arm_endpoint))

        docker_config = DockerConfigCredentials(self.settings.docker_config)
        return AcrExchangeCredentials(docker_config, aad_token, [s.server for s in specs])

    def registry(self, insecure: Iterable[str] = (), credentials: CredentialLookup | None = None) -> RegistryClient:
        """The client for the config's registries, with its TLS settings (`insecure_registries`,
        `registries.*.ca_file`) plus any `--insecure-registry` given."""
        hosts = [*insecure, *(self.config.spec.insecure_registries if self.config else [])]
        return RegistryClient(
            credentials or self.credentials(self._acr_specs()),
            insecure_registries=hosts,
            timeout=self.settings.registry_timeout,
            ca_files=self._ca_files(),
            content_cache=ContentCache(self.settings.cache_dir / "content"),
        )

    def _acr_specs(self) -> list[AcrSettings]:
        """The config's ACR registries (top level and pipelines'): `sign`, `verify`, `promote` and `tags`
        on their login servers authenticate as a run does."""
        if self.config is None:
            return []
        spec = self.config.spec
        found = [spec.acr, *(p.acr for p in spec.pipelines.values())]
        return list({a.server: AcrSettings.of(a) for a in found if a is not None}.values())

    def trust_policy(self) -> TrustPolicy | None:
        """The config's trust policy (None without a config)."""
        return TrustPolicy.from_config(self.config.spec, self.config.base_dir) if self.config else None

    def _ca_files(self) -> dict[str, Path]:
        """`registries: {HOST: {ca_file}}`, resolved against pipelines.yaml's directory."""
        config = self.config
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

    # --- running ---------------------------------------------------------------------------------

    def journal_dirs(self, plan: Plan) -> dict[str, Path]:
        """Each pipeline of the plan -> the directory of its publish journal."""
        return {name: self.settings.state_dir / "pipelines" / key for name, key in pipeline_keys(plan).items()}

    def execute(
        self, plan: Plan, options: RunOptions, secrets: Secrets, on_event: EventSink | None = None
    ) -> RunResult:
        """Check everything a run needs, then build, push, sign and publish the plan; a failed image is
        in the result (check_result raises for it), a refusal before building is raised."""
        with self._prepare(plan, options, secrets, _strict) as parts:
            assert parts.backends is not None and parts.policy is not None  # _strict raised otherwise
            assert parts.bases is not None
            registry = parts.registry
            gate = BaseImageGate(
                registry, parts.policy, {str(i.repository) for i in plan.images.values()}, parts.bases.subjects
            )
            journals = self.journal_dirs(plan)
            # One redactor for everything the run shows: its progress now, its result (reports) after.
            redactor = run_redactor(self.settings, plan)
            executor = Executor(
                plan,
                parts.backends,
                registry,
                parts.credentials,
                options,
                on_event=redacting(on_event or ProgressPrinter(self.progress, groups=self.groups), redactor),
                sign=parts.signer,
                attest=self._attester(plan, registry, parts),
                gate=gate,
                blobs=self.blobs(),
                journals=journals.__getitem__,
                vouch=self._vouch(registry, parts),
                claims=self.claims(plan, options.force) if options.push else None,
                bases=parts.bases,
            )
            for warning in reuse_warnings(plan):
                self.reporter.warn(f"warning: {warning}")
            # Runs of one pipeline on this machine take turns; a second one then finds the first's images.
            locks = pipeline_locks(plan, self.settings.lock_dir, self.reporter) if options.push else nullcontext()
            with locks:
                if options.push:
                    self._complete_interrupted(plan, registry)
                try:
                    return redact_result(executor.run(), redactor)
                except RunInterrupted as stopped:
                    stopped.result = redact_result(stopped.result, redactor)  # it is reported too
                    raise

    def claims(self, plan: Plan, force: bool) -> ReleaseClaims | None:
        """A versioned run's claims on the checkout's git remote `origin` (shared by every runner that
        releases from a clone of it); None for a run without a release tag or without the remote (no
        network is asked to decide)."""
        version = plan.context.version
        sha = plan.context.git_sha
        if not self.settings.claims or version is None or sha is None:
            return None
        if not any(i.tags.release for i in plan.images.values()):
            return None
        from pipeline.release.claims import ReleaseClaims, this_runner
        from pipeline.vcs.refs import RefsRemote

        remote = RefsRemote.of(self.loaded.base_dir, self.claims_remote)
        if remote is None:
            return None
        repositories = [str(i.repository) for i in plan.images.values() if i.tags.release]
        return ReleaseClaims(
            remote,
            repositories,
            version_tag(version),
            sha,
            this_runner(self.settings.environment),
            force,
            self.reporter,
        )

    def promote_claims(
        self, destination: str, version: str, force: bool, where: Path
    ) -> Callable[[str], ReleaseClaims] | None:
        """`promote`'s claims on `version` in `destination` (a digest -> them), on the git remote `origin`
        of the repository at `where` (the config's, else the working directory); None outside git or
        without that remote."""
        from pipeline.release.claims import ReleaseClaims, this_runner
        from pipeline.vcs.refs import RefsRemote

        if not self.settings.claims:
            return None
        remote = RefsRemote.of(self.config.base_dir if self.config else where)
        if remote is None:
            return None
        runner = this_runner(self.settings.environment)
        return lambda digest: ReleaseClaims(
            remote, [destination], version, digest, runner, force, self.reporter, kind="digest"
        )

    def preview(self, plan: Plan, options: RunOptions, secrets: Secrets, notify: Reporter) -> Preview:
        """A dry run: every check `execute` makes before building, read-only and in its order, each refusal
        recorded instead of raised; then the tag changes the run would publish."""
        refusals: list[PipelineError] = []

        def check(step: Callable[[], T]) -> T | None:
            try:
                return step()
            except PipelineError as exc:
                refusals.append(exc)
                return None

        from pipeline.release.cut import check_publishing

        changes = None
        with self._prepare(plan, options, secrets, check) as parts:
            if parts.reachable and parts.bases is not None:
                resolver = parts.bases
                for refusal in resolver.resolve_all(plan_builds(plan)).values():
                    refusals.append(refusal)
                blobs = self.blobs()
                changes = check(
                    lambda: check_publishing(
                        plan, parts.registry, options.force, options.cache, blobs, notify, resolver.digests
                    )
                )
        return Preview(changes, refusals)

    @contextmanager
    def _prepare(self, plan: Plan, options: RunOptions, secrets: Secrets, check: _Check) -> Iterator[_Parts]:
        """The pre-build steps, in the order a run meets them: backends (an engine that answers), the
        registries (a certificate that does not verify stops here), the signing keys, the trust policy."""
        backends = check(
            lambda: open_backends(
                {i.builder for i in plan.images.values()}, self.settings.environment, plan.engines, self.reporter
            )
        )
        check(lambda: check_build_secrets(plan, self.settings.environment))
        credentials = self.credentials(image.acr for image in plan.images.values() if image.acr is not None)
        with self.registry(credentials=credentials) as registry:
            hosts = sorted({image.repository.registry for image in plan.images.values()})
            reachable = check(lambda: [registry.session.connect(host) for host in hosts]) is not None
            signer = check(lambda: self._signer(plan, registry, secrets)) if options.push else None
            policy = check(lambda: TrustPolicy.from_config(self.loaded.spec, self.loaded.base_dir))
            bases = check(
                lambda: open_resolver(registry, plan, self.loaded.file, locked=options.locked, reporter=self.reporter)
            )
            yield _Parts(backends, credentials, registry, reachable, signer, policy, bases)

    def _vouch(self, registry: RegistryClient, parts: _Parts) -> Vouch | None:
        """What checks a `reuse: trusted` pipeline's candidates: its own signer (docs/reuse-and-trust.md)."""
        return None if parts.signer is None else self._reuse_verifier(registry, parts.signer)

    def _reuse_verifier(self, registry: RegistryClient, signer: RunSigner) -> Vouch:
        """The one check of a candidate by a pipeline's signer, for reuse and for pins alike, remembering
        what passed in this machine's verdict store."""
        from pipeline.signing.reuse import ReuseVerifier, VerdictStore

        return ReuseVerifier(registry, signer, VerdictStore(self.settings.cache_dir / "verdicts"))

    def pin_vouch(self, plan: Plan, registry: RegistryClient, secrets: Secrets) -> Vouch:
        """What checks a dependency `run --since` or a trigger would pin instead of building (a
        `reuse: trusted` pipeline's last build): its pipeline's signer, as for reuse. The keys are read on
        first use (a narrowed plan that pins nothing trusted reads none)."""
        verifier: list[Vouch] = []

        def vouch(image: PlannedImage, digest: str, inputs: InputDigest | None) -> str | None:
            if not verifier:
                try:
                    signer = self._signer(plan, registry, secrets)
                except PipelineError as exc:  # e.g. `run --since --no-push` without the key's passphrase
                    return f"{digest} cannot be verified ({exc})"
                if signer is None:
                    return f"{digest} cannot be checked: pipeline {image.pipeline} does not sign"
                verifier.append(self._reuse_verifier(registry, signer))
            return verifier[0](image, digest, inputs)

        return vouch

    def _attester(self, plan: Plan, registry: RegistryClient, parts: _Parts) -> RunAttester | None:
        """Provenance and SBOM for the pipelines whose `sign:` asks for them (None: none does)."""
        if parts.signer is None or not any(i.sign is not None and i.sign.attest for i in plan.images.values()):
            return None
        from pipeline.run.attesting import RunAttester  # SBOM readers: only for a plan that attests

        return RunAttester(
            registry,
            parts.signer,
            plan,
            self.loaded.file,
            invocation_id=str(uuid.uuid4()),
            backends=parts.backends,
            bases=parts.bases,
        )

    def _signer(self, plan: Plan, registry: RegistryClient, secrets: Secrets) -> RunSigner | None:
        """Decrypt each signing key the plan uses once, before anything is built."""
        specs = [image.sign for image in plan.images.values() if image.sign is not None]
        if not specs:
            return None
        from pipeline.signing.keys import read_private_key  # cryptography: only for a plan that signs
        from pipeline.signing.runsigner import RunSigner

        keys = {}
        for path in sorted({s.key for s in specs if s.key}):
            keys[path] = read_private_key(Path(path), secrets.passphrase(path))
        keyless = None
        if any(s.keyless for s in specs):
            found = secrets.identity_token()
            if not found:
                raise UsageError("keyless signing needs an OIDC identity token: --identity-token or SIGSTORE_ID_TOKEN")
            trust = self.loaded.spec.sigstore.trust_config
            from pipeline.signing.keyless import KeylessSigner  # sigstore is slow to import; only when used

            keyless = KeylessSigner(found, str(self.loaded.base_dir / trust) if trust else None)
        return RunSigner(registry, keys, keyless)

    @contextmanager
    def _journal_lease(self, entries: Iterable[JournalEntry]) -> Iterator[Released | None]:
        """With the git remote: the publishing lease of the journal's repositories for the block (yields what
        floating tags may settle onto); without it, nothing to hold (yields None)."""
        from pipeline.release.claims import claim_done, repositories_lease, this_runner
        from pipeline.vcs.refs import RefsRemote

        remote = RefsRemote.of(self.loaded.base_dir, self.claims_remote) if self.settings.claims else None
        if remote is None:
            yield None
            return
        runner = this_runner(self.settings.environment)
        with repositories_lease(remote, [e.repository for e in entries], runner, self.reporter, "completing"):
            yield lambda repository, version: claim_done(remote, repository, version)

    def _complete_interrupted(self, plan: Plan, registry: RegistryClient) -> None:
        """Finish what a killed run of these pipelines recorded in its publish journal, before anything else."""
        for name, directory in self.journal_dirs(plan).items():
            journal = read_journal(directory)
            if journal is None:
                continue
            self.reporter.say(
                f"pipeline {name}: a run interrupted while publishing ({journal.what}, "
                f"{len(journal.entries)} tag change(s) recorded in {journal.path}); completing it first"
            )
            with self._journal_lease(journal.entries) as released:
                done = complete_journal(journal, registry, Forward(lambda m: self.reporter.say(f"  {m}")))
                if released is not None:
                    # Under the lease, as a run's publishing: floating tags onto the highest released version,
                    # then every tag the journal wrote read back (another runner may have won meanwhile).
                    keys = {e.image for e in journal.entries}
                    targets = [Target(k, i.repository, i.tags) for k, i in plan.images.items() if k in keys]
                    notify = Forward(step=lambda image, step, message: self.reporter.say(f"  {image}: {message}"))
                    changes = [
                        TagChange(
                            e.image,
                            parse_repository(e.repository),
                            e.tag,
                            e.kind,
                            Action.MOVE,
                            e.digest,
                            e.previous,
                            "",
                        )
                        for e in journal.entries
                        if not any(s.startswith(f"{e.repository}:{e.tag} ") for s in done.skipped)
                    ]
                    read_back(settle_floating(changes, targets, registry, notify, released), registry)
            left = f"; left as they are (moved since): {', '.join(done.skipped)}" if done.skipped else ""
            self.reporter.say(
                f"pipeline {name}: completed the interrupted publish: {done.written} tag(s) written, "
                f"{done.already} already in place{left}"
            )


def check_build_secrets(plan: Plan, environment: Mapping[str, str]) -> None:
    """Every build secret's source is there before anything is built (its value is not read here:
    buildx reads it itself)."""
    for key, image in plan.images.items():
        for secret in image.secrets:
            if secret.env is not None and secret.env not in environment:
                raise UsageError(f"{key}: build secret '{secret.id}': environment variable {secret.env} is not set")
            if secret.file is None:
                continue
            try:  # BuildKit would wait on a FIFO, or read a device without end
                check_regular_file(secret.file, "secret file")
            except ConfigError as exc:
                raise UsageError(f"{key}: build secret '{secret.id}': {exc}") from None
            except OSError:
                pass  # said just below
            if not (secret.file.is_file() and os.access(secret.file, os.R_OK)):
                raise UsageError(f"{key}: build secret '{secret.id}': cannot read the file {secret.file}")


def check_result(result: RunResult) -> None:
    """Raise RunFailed (exit 1) if anything in the run failed."""
    if result.error:
        raise RunFailed(result.error)
    if not result.ok:
        failed = [k for k, r in result.images.items() if r.status == Status.FAILED]
        raise RunFailed(f"{len(failed)} image(s) failed: {', '.join(failed)}; no release or floating tag moved")
