"""Signing and verification, with cosign and skopeo (Debian trixie) as independent implementations."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline.registry.client import RegistryClient
from pipeline.registry.copy import copy_image
from pipeline.registry.reference import parse_repository
from pipeline.signing.storage import signature_tag
from tests.helpers import BASE_DOCKERFILE, built_steps, init_git, run_cli, shop_project, write_project
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

PASSWORD = "correct horse battery staple"
ENV = {"COSIGN_PASSWORD": PASSWORD}
CHILD = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo child >> /layers\n"


def signed_project(root: Path, registry: str, storage: str = "legacy") -> None:
    shop_project(
        root,
        registry,
        images=("base", "app"),
        extra_config=f"registries:\n  {registry.split('/')[0]}: {{signature_storage: {storage}}}",
    )
    assert run_cli(["keys", "generate"], root, env=ENV).code == 0


def push_unsigned(root: Path, services: Services, namespace: str) -> str:
    """Build and push an image nobody signed; return it by digest."""
    write_project(
        root,
        f"registry: {services.plain_registry}/{namespace}\nnetwork: none\n"
        "pipelines:\n  p:\n    images:\n      base: {context: images/base}\n",
        {"base": BASE_DOCKERFILE + "RUN echo unsigned > /unsigned\n"},
        busybox=("base",),
    )
    result = run_cli(["run", "--json"], root)
    assert result.code == 0, result.output
    reference: str = json.loads(result.stdout)["images"][0]["reference"]
    return reference


def cosign(services: Services, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [services.cosign, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False
    )


def cosign_verify(services: Services, key: Path, ref: str) -> subprocess.CompletedProcess[str]:
    return cosign(services, "verify", "--key", str(key), "--insecure-ignore-tlog", "--allow-http-registry", ref)


def cosign_sign(services: Services, key: Path, ref: str) -> subprocess.CompletedProcess[str]:
    """trixie's cosign signs `ref` with our key, its signature in the registry (no transparency log here)."""
    return cosign(
        services, "sign", "--key", str(key), "--tlog-upload=false", "--allow-http-registry", "--yes", ref, env=ENV
    )


def cosign_attest(services: Services, root: Path, ref: str, provenance: dict[str, Any], *extra: str) -> None:
    """trixie's cosign attests `provenance` (SLSA v1) for `ref` with root/cosign.key, no transparency log
    (`--new-bundle-format` in `extra`: as a sigstore bundle referrer, else in the legacy `.att` tag)."""
    (root / "provenance.json").write_text(json.dumps(provenance))
    done = cosign(
        services,
        "attest",
        "--key",
        str(root / "cosign.key"),
        "--type",
        "slsaprovenance1",
        "--predicate",
        str(root / "provenance.json"),
        "--tlog-upload=false",
        "--allow-http-registry",
        "--yes",
        *extra,
        ref,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr


def consumer_project(
    root: Path,
    registry: str,
    upstream: str,
    public_key: bytes,
    app: str,
    base_image: str | None = None,
    rule: str = "",
) -> None:
    """A project `p` whose one image `app` (Dockerfile `app`; `base_image` given as the build arg
    BASE_IMAGE) pushes to `registry` and trusts images of `upstream/*` only with `public_key`'s signature
    (and what `rule` adds to the trust rule: lines at its indentation)."""
    build_args = f', build_args: {{BASE_IMAGE: "{base_image}"}}' if base_image else ""
    rule = "".join(f"\n            {line}" for line in rule.splitlines())
    write_project(
        root,
        f"""\
        registry: {registry}
        network: none
        trust:
          - repositories: ["{upstream}/*"]
            keys: [upstream.pub]{rule}
        pipelines:
          p:
            images:
              app: {{context: images/app{build_args}}}
        """,
        {"app": app},
    )
    (root / "upstream.pub").write_bytes(public_key)


def test_run_signs_every_pushed_digest_and_cosign_accepts_them(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    signed_project(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)
    result = run_cli(["run", "--version", "1.0.0", "--json"], tmp_path, env=ENV)
    assert result.code == 0, result.output
    assert PASSWORD not in result.output
    for image in json.loads(result.stdout)["images"]:
        repo = f"{namespace}/{image['name']}"
        assert signature_tag(image["digest"]) in plain_peek.tags(repo)
        # cosign, an independent implementation, accepts the signature on the released tag.
        verified = cosign_verify(services, tmp_path / "cosign.pub", f"{services.plain_registry}/{repo}:1.0.0")
        assert verified.returncode == 0, verified.stderr
        assert image["digest"] in verified.stdout
    # Signing happens before release and floating tags move (progress order on stderr).
    lines = result.stderr.splitlines()
    sign_line = next(i for i, line in enumerate(lines) if " sign " in line and "shop/app" in line)
    first_release = next(i for i, line in enumerate(lines) if " tag " in line and ":1.0.0 " in line)
    assert sign_line < first_release

    # ... and cosign rejects a wrong key and an unsigned image.
    assert run_cli(["keys", "generate", "--output-prefix", "other"], tmp_path, env=ENV).code == 0
    wrong = cosign_verify(services, tmp_path / "other.pub", f"{services.plain_registry}/{namespace}/app:1.0.0")
    assert wrong.returncode != 0
    unsigned_ref = push_unsigned(tmp_path / "unsigned", services, f"{namespace}u")
    unsigned = cosign_verify(services, tmp_path / "cosign.pub", unsigned_ref)
    assert unsigned.returncode != 0
    assert "no signatures found" in unsigned.stderr


def test_skopeo_sigstore_policy_accepts_ours_and_rejects_unsigned_and_wrong_key(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    signed_project(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)
    assert run_cli(["run", "--version", "1.0.0"], tmp_path, env=ENV).code == 0
    assert run_cli(["keys", "generate", "--output-prefix", "other"], tmp_path, env=ENV).code == 0
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "local.yaml").write_text(
        f"docker:\n  {services.plain_registry}:\n    use-sigstore-attachments: true\n"
    )

    def copy(key: Path, image: str) -> subprocess.CompletedProcess[str]:
        policy = tmp_path / f"policy-{key.stem}.json"
        rule = {"type": "sigstoreSigned", "keyPath": str(key), "signedIdentity": {"type": "matchRepository"}}
        policy.write_text(
            json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {services.plain_registry: [rule]}}})
        )
        out = tmp_path / f"out-{key.stem}-{image.replace('/', '_').replace(':', '_')}"
        return subprocess.run(
            [
                services.skopeo,
                "--policy",
                str(policy),
                "--registries.d",
                str(registries_d),
                "copy",
                "--src-tls-verify=false",
                f"docker://{services.plain_registry}/{image}",
                f"dir:{out}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    accepted = copy(tmp_path / "cosign.pub", f"{namespace}/app:1.0.0")
    assert accepted.returncode == 0, accepted.stderr
    wrong_key = copy(tmp_path / "other.pub", f"{namespace}/app:1.0.0")
    assert wrong_key.returncode != 0
    assert "rejected" in wrong_key.stderr
    unsigned_ref = push_unsigned(tmp_path / "unsigned", services, f"{namespace}u")
    unsigned = copy(tmp_path / "cosign.pub", unsigned_ref.split("/", 1)[1])
    assert unsigned.returncode != 0
    assert "no signature exists" in unsigned.stderr


def test_signatures_made_by_cosign_and_skopeo_verify_with_pipeline(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    signed_project(tmp_path, f"{services.plain_registry}/{namespace}")
    (tmp_path / "pipelines.yaml").write_text(
        (tmp_path / "pipelines.yaml").read_text().replace("sign: {key: cosign.key}\n", "")
    )
    init_git(tmp_path)
    assert run_cli(["run", "--version", "1.0.0"], tmp_path).code == 0
    ref = f"{services.plain_registry}/{namespace}/app:1.0.0"
    assert run_cli(["verify", ref, "--key", "cosign.pub"], tmp_path).code == 1

    # cosign signs with a key *we* generated.
    signed = cosign_sign(services, tmp_path / "cosign.key", ref)
    assert signed.returncode == 0, signed.stderr
    ours = run_cli(["verify", ref, "--key", "cosign.pub", "--json"], tmp_path)
    assert ours.code == 0, ours.output
    assert json.loads(ours.stdout)["verified"] is True

    # skopeo signs (its docker-reference carries the tag, which verification ignores).
    (tmp_path / "pass").write_text(PASSWORD)
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "local.yaml").write_text(
        f"docker:\n  {services.plain_registry}:\n    use-sigstore-attachments: true\n"
    )
    (tmp_path / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    target = f"{services.plain_registry}/{namespace}/skopeo-copy:1.0.0"
    copied = subprocess.run(
        [
            services.skopeo,
            "--policy",
            str(tmp_path / "policy.json"),
            "--registries.d",
            str(registries_d),
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--sign-by-sigstore-private-key",
            str(tmp_path / "cosign.key"),
            "--sign-passphrase-file",
            str(tmp_path / "pass"),
            f"docker://{ref}",
            f"docker://{target}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    by_skopeo = run_cli(["verify", target, "--key", "cosign.pub"], tmp_path)
    assert by_skopeo.code == 0, by_skopeo.output


def test_we_decrypt_a_key_cosign_generated(tmp_path: Path, services: Services, namespace: str) -> None:
    generated = subprocess.run(
        [services.cosign, "generate-key-pair"], cwd=tmp_path, env={**os.environ, **ENV}, capture_output=True, text=True
    )
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "cosign.key").read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    write_project(
        tmp_path / "p",
        f"registry: {services.plain_registry}/{namespace}\nnetwork: none\npipelines:\n  p:\n    images:\n"
        "      base: {context: images/base}\n",
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    assert run_cli(["run"], tmp_path / "p").code == 0
    ref = f"{services.plain_registry}/{namespace}/base:latest"
    signed = run_cli(["sign", ref, "--key", str(tmp_path / "cosign.key")], tmp_path, env=ENV)
    assert signed.code == 0, signed.output
    assert cosign_verify(services, tmp_path / "cosign.pub", ref).returncode == 0
    wrong = run_cli(["sign", ref, "--key", str(tmp_path / "cosign.key")], tmp_path, env={"COSIGN_PASSWORD": "nope"})
    assert wrong.code == 1
    assert "wrong passphrase" in wrong.output and "nope" not in wrong.output


def test_verify_reasons_and_coexisting_keys(tmp_path: Path, services: Services, namespace: str) -> None:
    write_project(
        tmp_path,
        f"registry: {services.plain_registry}/{namespace}\nnetwork: none\npipelines:\n  p:\n    images:\n"
        "      base: {context: images/base}\n",
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    assert run_cli(["run"], tmp_path).code == 0
    for prefix in ("a", "b", "c"):
        assert run_cli(["keys", "generate", "--output-prefix", prefix], tmp_path, env=ENV).code == 0
    ref = f"{services.plain_registry}/{namespace}/base:latest"

    none = run_cli(["verify", ref, "--key", "a.pub"], tmp_path)
    assert none.code == 1 and none.output.strip().endswith("not verified: no signature")

    assert run_cli(["sign", ref, "--key", "a.key"], tmp_path, env=ENV).code == 0
    assert run_cli(["sign", ref, "--key", "b.key"], tmp_path, env=ENV).code == 0
    again = run_cli(["sign", ref, "--key", "a.key", "--json"], tmp_path, env=ENV)
    assert json.loads(again.stdout)["already_signed"] == ["legacy"]
    both = run_cli(["verify", ref, "--key", "a.pub", "--key", "b.pub", "--json"], tmp_path)
    assert both.code == 0, both.output
    assert json.loads(both.stdout)["signatures_found"] == 2  # a re-sign with a adds no layer

    bad = run_cli(["verify", ref, "--key", "c.pub"], tmp_path)
    assert bad.code == 1 and "not verified: bad signature: no signature verifies with key c.pub" in bad.output

    # The image and its signature copied to another repository: the signature names the old one and
    # still counts there (it signs the digest, as cosign judges it), reported as signed for the source.
    registry = RegistryClient(lambda _: None)
    source, other = (
        parse_repository(f"{services.plain_registry}/{namespace}/base"),
        parse_repository(f"{services.plain_registry}/{namespace}/elsewhere"),
    )
    digest = registry.resolve_digest(source.with_tag("latest"))
    assert digest is not None
    sig_digest = registry.resolve_digest(source.with_tag(signature_tag(digest)))
    assert sig_digest is not None
    copy_image(registry, source, digest, other)
    copy_image(registry, source, sig_digest, other)
    registry.tag(other, sig_digest, signature_tag(digest))
    moved = run_cli(["verify", f"{other}@{digest}", "--key", "a.pub"], tmp_path)
    assert moved.code == 0, moved.output
    assert f"key a.pub (legacy, signed for {source})" in moved.output
    assert cosign_verify(services, tmp_path / "a.pub", f"{other}@{digest}").returncode == 0
    # A signature of one digest tagged as another's (here: as the signature manifest's own) is refused.
    other_digest = sig_digest
    registry.tag(other, sig_digest, signature_tag(other_digest))
    forged = run_cli(["verify", f"{other}@{other_digest}", "--key", "a.pub"], tmp_path)
    assert forged.code == 1
    assert f"wrong identity: the signature is for digest {digest}" in forged.output


def test_referrers_bundles_verify(tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek) -> None:
    signed_project(tmp_path, f"{services.plain_registry}/{namespace}", storage="referrers")
    init_git(tmp_path)
    result = run_cli(["run", "--json"], tmp_path, env=ENV)
    assert result.code == 0, result.output
    app = next(i for i in json.loads(result.stdout)["images"] if i["name"] == "app")
    tags = plain_peek.tags(f"{namespace}/app")
    assert app["digest"].replace(":", "-") in tags  # the referrers fallback index
    assert signature_tag(app["digest"]) not in tags  # no legacy signature
    verified = run_cli(
        ["verify", f"{services.plain_registry}/{namespace}/app@{app['digest']}", "--key", "cosign.pub", "--json"],
        tmp_path,
    )
    assert verified.code == 0, verified.output
    assert json.loads(verified.stdout)["satisfied"] == ["key cosign.pub (referrers)"]
    # A second run (everything reused) and a second `pipeline sign` with the same key add no bundle.
    fallback = f"{namespace}/app", app["digest"].replace(":", "-")
    before = plain_peek.manifest(*fallback)
    assert run_cli(["run"], tmp_path, env=ENV).code == 0
    ref = f"{services.plain_registry}/{namespace}/app@{app['digest']}"
    again = run_cli(["sign", ref, "--key", "cosign.key", "--storage", "referrers", "--json"], tmp_path, env=ENV)
    assert json.loads(again.stdout)["already_signed"] == ["referrers"], again.output
    after = plain_peek.manifest(*fallback)
    assert before is not None and after is not None and len(after[1]["manifests"]) == len(before[1]["manifests"]) == 1


@pytest.mark.parametrize("signed_base", [False, True])
def test_trust_policy_gates_external_base_images_and_promotion(
    tmp_path: Path, services: Services, namespace: str, signed_base: bool
) -> None:
    # An "external" base image published by another team, signed or not.
    upstream = tmp_path / "upstream"
    write_project(
        upstream,
        f"registry: {services.plain_registry}/{namespace}-upstream\nnetwork: none\npipelines:\n  p:\n"
        "    images:\n      base: {context: images/base}\n",
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    assert run_cli(["keys", "generate"], upstream, env=ENV).code == 0
    assert run_cli(["run"], upstream).code == 0
    base_ref = f"{services.plain_registry}/{namespace}-upstream/base:latest"
    if signed_base:
        assert run_cli(["sign", base_ref, "--key", "cosign.key"], upstream, env=ENV).code == 0

    consumer = tmp_path / "consumer"
    consumer_project(
        consumer,
        f"{services.plain_registry}/{namespace}",
        f"{services.plain_registry}/{namespace}-upstream",
        (upstream / "cosign.pub").read_bytes(),
        CHILD,
        base_ref,
    )
    result = run_cli(["run", "--report", "r.json"], consumer)
    if signed_base:
        assert result.code == 0, result.output
        assert "is signed as the policy requires" in result.stderr
    else:
        assert result.code == 1
        assert "is not signed as the trust policy requires: no signature" in result.output
        assert not built_steps(result.output)  # nothing was built on it

    promoted = run_cli(
        ["promote", base_ref, f"{services.plain_registry}/{namespace}/promoted", "--version", "1.0.0"], consumer
    )
    assert promoted.code == (0 if signed_base else 1), promoted.output

    # `pipeline verify` holds the base to the consumer's trust policy the same way the gate does.
    verified = run_cli(["verify", base_ref, "--json"], consumer)
    verdict = json.loads(verified.stdout)
    if signed_base:
        assert (verified.code, verdict["verified"]) == (0, True), verified.output
        assert any("upstream.pub" in s for s in verdict["satisfied"]), verdict
    else:
        assert (verified.code, verdict["verified"]) == (1, False), verified.output
        assert verdict["reason"] == "no signature", verdict
        # Signed, but by a key the policy does not name: the policy's rule is what refuses it.
        assert run_cli(["keys", "generate", "--output-prefix", "other"], consumer, env=ENV).code == 0
        assert run_cli(["sign", base_ref, "--key", "other.key"], consumer, env=ENV).code == 0
        verified = run_cli(["verify", base_ref, "--json"], consumer)
        verdict = json.loads(verified.stdout)
        assert (verified.code, verdict["verified"]) == (1, False), verified.output
        assert verdict["reason"].startswith("trust policy: "), verdict
        assert verdict["reason"] == "trust policy: bad signature: no signature verifies with key upstream.pub", verdict


@pytest.fixture(scope="module")
def unsigned_upstream(tmp_path_factory: pytest.TempPathFactory, services: Services) -> tuple[str, bytes]:
    """Another team's base image, pushed and never signed, and that team's public key: (repository, key)."""
    upstream = tmp_path_factory.mktemp("upstream")
    registry = f"{services.plain_registry}/u{uuid.uuid4().hex[:10]}"
    write_project(
        upstream,
        f"registry: {registry}\nnetwork: none\npipelines:\n  p:\n    images:\n      base: {{context: images/base}}\n",
        {"base": BASE_DOCKERFILE},
        busybox=("base",),
    )
    assert run_cli(["keys", "generate"], upstream, env=ENV).code == 0
    assert run_cli(["run"], upstream).code == 0
    return f"{registry}/base", (upstream / "cosign.pub").read_bytes()


@pytest.mark.parametrize(
    ("form", "line", "why"),
    [
        # An unset ARG with a default is the default, not ''; a tab after FROM is a separator.
        ("ARG BASE\nFROM ${{BASE:-{ref}}}\n", 2, "is not signed as the trust policy requires: no signature"),
        ("# a comment\nFROM\t{ref}\n", 2, "is not signed as the trust policy requires: no signature"),
        # What cannot be resolved is refused, not skipped.
        ("ARG TAG\nFROM {repo}:${{TAG}}\n", 2, "TAG is not set); refusing to build unchecked"),
    ],
    ids=["default", "tab", "unset"],
)
def test_trust_policy_cannot_be_bypassed_by_dockerfile_syntax(
    tmp_path: Path,
    services: Services,
    namespace: str,
    plain_peek: RegistryPeek,
    unsigned_upstream: tuple[str, bytes],
    form: str,
    line: int,
    why: str,
) -> None:
    repo, public_key = unsigned_upstream
    upstream_prefix = repo.rsplit("/", 1)[0]
    consumer = tmp_path / "consumer"
    consumer_project(
        consumer,
        f"{services.plain_registry}/{namespace}",
        upstream_prefix,
        public_key,
        form.format(ref=f"{repo}:latest", repo=repo) + "RUN echo app >> /layers\n",
    )
    result = run_cli(["run", "--version", "1.0.0"], consumer)
    assert result.code == 1, result.output
    assert f"images/app/Dockerfile:{line}: " in result.stderr
    assert why in result.stderr
    assert not built_steps(result.output)  # nothing was built on it
    assert plain_peek.all_tags(f"{namespace}/app") == set()  # and nothing pushed
