"""Helpers shared by the tests: temporary projects and running the real CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pipeline.attest.provenance import BuildFacts
    from pipeline.builders import BuildRequest


class RegistryPeekLike(Protocol):
    def digest(self, repo_path: str, reference: str) -> str | None: ...
    def all_tags(self, repo_path: str) -> set[str]: ...


BUSYBOX = Path(os.environ.get("PIPELINE_BUSYBOX", "/bin/busybox"))

BASE_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
RUN echo base > /layers
"""


def write_project(root: Path, config: str, dockerfiles: dict[str, str], *, busybox: tuple[str, ...] = ()) -> Path:
    """Write pipelines.yaml and one context dir per entry of `dockerfiles` (`images/<name>/Dockerfile`).
    Contexts named in `busybox` get the static busybox binary. Returns the config path."""
    root.mkdir(parents=True, exist_ok=True)
    config_file = root / "pipelines.yaml"
    config_file.write_text(textwrap.dedent(config), encoding="utf-8")
    for name, dockerfile in dockerfiles.items():
        context = root / "images" / name
        context.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile").write_text(textwrap.dedent(dockerfile), encoding="utf-8")
        if name in busybox:
            shutil.copy(BUSYBOX, context / "busybox")
    return config_file


FROM_BASE = 'build_args: {BASE_IMAGE: "{{ images.base }}"}'
# `web` built FROM `app` (its build arg BASE).
WEB_ON_APP = '{context: images/web, depends_on: [app], build_args: {BASE: "{{ images.app }}"}}'


def image_entry(name: str, *keys: str) -> str:
    """An image's YAML flow mapping: `context: images/<name>`, then each of `keys` (`key: value`)."""
    return "{" + ", ".join((f"context: images/{name}", *keys)) + "}"


def shop_config(
    registry: str,
    images: dict[str, str] | tuple[str, ...],
    *,
    pipeline: str = "shop",
    top: str = "",
    network: str | None = "none",
    keys: str = "",
    more: dict[str, dict[str, str] | tuple[str, ...]] | None = None,
) -> str:
    """pipelines.yaml's text: `registry`, `network` (BuildKit's RUN steps default to the bridge network,
    which this machine's engines lack), the top-level YAML `top` (unindented lines), then pipeline
    `pipeline` with its own `keys` (unindented YAML lines) and `images`, then the pipelines of `more`.
    Images map a name to its flow mapping (`image_entry(...)`; empty: just its context `images/<name>`);
    a tuple names images that have only a context."""
    lines = [f"registry: {registry}", *([f"network: {network}"] if network else []), *textwrap.dedent(top).splitlines()]
    lines.append("pipelines:")
    for name, members in {pipeline: images, **(more or {})}.items():
        entries = members if isinstance(members, dict) else dict.fromkeys(members, "")
        lines.append(f"  {name}:")
        if name == pipeline:
            lines += [f"    {line}" for line in textwrap.dedent(keys).splitlines()]
        lines.append("    images:")
        lines += [f"      {image_name}: {entry or image_entry(image_name)}" for image_name, entry in entries.items()]
    return "\n".join(lines) + "\n"


def app_project(
    root: Path,
    registry: str,
    dockerfile: str,
    *,
    busybox: bool = False,
    platforms: tuple[str, ...] = (),
    image: str = "app",
) -> Path:
    """The smallest project: pipeline `shop` with one image (`app`, context images/app) under `registry`
    (a full repository prefix), on BuildKit with `network: none`; with `platforms`, built for each of them
    and published as an image index. Returns the config path."""
    variants = f", platforms: [{', '.join(platforms)}]" if platforms else ""
    return write_project(
        root,
        shop_config(registry, {image: f"{{context: images/{image}{variants}}}"}),
        {image: dockerfile},
        busybox=(image,) if busybox else (),
    )


def push_upstream(root: Path, reference: str, content: str) -> None:
    """A one-file image FROM scratch pushed to `reference` (the upstream's release), its local tag removed."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "up.txt").write_text(content)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY up.txt /up.txt\n")
    for command in (["build", "-q", "-t", reference, str(root)], ["push", "-q", reference]):
        done = subprocess.run(["docker", *command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    subprocess.run(["docker", "rmi", reference], capture_output=True, check=False)


def two_upstreams(root: Path, registry: str, namespace: str) -> tuple[str, str]:
    """Upstream releases `base:1` (up.txt "one") and `other:1` (up.txt "other") pushed under
    `<registry>/<namespace>-upstream/`; their references."""
    base, other = (f"{registry}/{namespace}-upstream/{name}:1" for name in ("base", "other"))
    push_upstream(root / "up-base", base, "one\n")
    push_upstream(root / "up-other", other, "other\n")
    return base, other


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
    """Run `python -m pipeline ARGS` as a user would, in `cwd`."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    _check_reports(args, cwd, done.stdout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def _check_reports(args: list[str], cwd: Path, stdout: str) -> None:
    """Every report a command wrote (`--report FILE`; `run --json`'s stdout) matches
    schema/report.schema.json, in whichever test it was written: the schema is the stable interface."""
    for i, arg in enumerate(args):
        name = args[i + 1] if arg == "--report" and i + 1 < len(args) else arg.partition("=")[2]
        if (arg == "--report" or arg.startswith("--report=")) and name and name != "-":
            path = Path(name) if Path(name).is_absolute() else cwd / name
            if path.is_file() and path.stat().st_size:
                assert_valid_report(path)
    if args[:1] == ["run"] and "--json" in args and stdout.strip():
        # In CI an annotation or Azure's output variables may follow the report (docs/ci.md): the first
        # JSON document is the report.
        report, _ = json.JSONDecoder().raw_decode(stdout.lstrip())
        assert_valid_report(json.dumps(report))


_BUILD_PROGRESS = re.compile(r"^\[ *[\d.]+s\] (\S+) +build +(.+)$", re.MULTILINE)


def built_steps(progress: str) -> list[str]:
    """The Dockerfile steps a run's progress (its stderr) shows being built, as `image: step`, on either
    local builder (BuildKit's `[1/3] COPY ...`, the classic builder's `Step 1/4 : COPY ...`)."""
    return [f"{image}: {step}" for image, step in _BUILD_PROGRESS.findall(progress)]


def git(cwd: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def init_git(root: Path) -> str:
    """Make `root` a git repository with everything committed; return HEAD's sha."""
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return git(root, "rev-parse", "HEAD")


def commit_files(root: Path, files: dict[str, str], message: str = "change") -> str:
    """Write `files` (paths relative to `root`) and commit everything; return the new HEAD's sha."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


def build_request(root: Path, reference: str, **more: Any) -> BuildRequest:
    """The request to build `reference`'s image (`.../<pipeline>/<image>:<tag>`) from `root` and its
    Dockerfile, with `more`."""
    from pipeline.builders import BuildRequest
    from pipeline.registry.reference import parse_reference

    tag = parse_reference(reference)
    image = "/".join(reference.rsplit(":", 1)[0].split("/")[-2:])
    return BuildRequest(image=image, context=root, dockerfile=root / "Dockerfile", tag=tag, **more)


def build_facts(repository: str, digest: str, builder: str = "buildx", **more: Any) -> BuildFacts:
    """The BuildFacts of `repository`'s image (`.../<pipeline>/<image>`) built from pipelines.yaml, with `more`."""
    from pipeline.attest.provenance import BuildFacts

    pipeline, image = repository.split("/")[-2:]
    known = {"config_path": "pipelines.yaml", "pipeline": pipeline, "image": image, "builder": builder}
    return BuildFacts(**{**known, "repository": repository, "digest": digest, **more})


def fake_digests(chars: str) -> tuple[str, ...]:
    """One well-formed sha256 digest per character of `chars` (`sha256:` and 64 of it)."""
    return tuple(f"sha256:{char * 64}" for char in chars)


SHOP_IMAGES = ("base", "app", "worker")


def shop_project(
    root: Path,
    registry: str,
    *,
    sign: bool = True,
    images: tuple[str, ...] = SHOP_IMAGES,
    app_dockerfile: str | None = None,
    base_dockerfile: str = BASE_DOCKERFILE,
    extra_config: str = "",
    triggers: str = "",
) -> Path:
    """The shop: `base` (busybox on scratch) and `app` and `worker` built FROM its digest, pushed under
    `registry/`, RUN steps without a network; signed with ./cosign.key when `sign` (make it with
    `pipeline keys generate`).
    `images` picks a subset (base always included), `extra_config` adds top-level YAML (unindented lines),
    `triggers` the pipeline's `triggers:` value."""
    assert images[0] == "base" and set(images) <= set(SHOP_IMAGES), images
    dockerfiles = {
        "base": base_dockerfile,
        "app": app_dockerfile or "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n",
        "worker": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo worker > /worker\n",
    }
    config = [
        f"registry: {registry}",
        # BuildKit's RUN steps default to the bridge network, which this machine's engines lack.
        "network: none",
        *(["sign: {key: cosign.key}"] if sign else []),
        *extra_config.splitlines(),
        "pipelines:",
        "  shop:",
        *([f"    triggers: {triggers}"] if triggers else []),
        "    images:",
        "      base: {context: images/base}",
    ]
    for name in images[1:]:
        config += [
            f"      {name}:",
            f"        context: images/{name}",
            '        build_args: {BASE_IMAGE: "{{ images.base }}"}',
        ]
    return write_project(
        root, "\n".join(config) + "\n", {name: dockerfiles[name] for name in images}, busybox=("base",)
    )


def user_tags(tags: set[str]) -> set[str]:
    """The tags a user releases with: without build (`sha-…`), cache (`inputs-…`) and signature tags."""
    return {t for t in tags if not t.startswith(("sha-", "inputs-", "sha256-"))}


def release_tags(peek: RegistryPeekLike, namespace: str) -> dict[str, dict[str, str | None]]:
    """Per shop image, every release/floating/extra tag and the digest it names."""
    return {
        name: {tag: peek.digest(f"{namespace}/{name}", tag) for tag in user_tags(peek.all_tags(f"{namespace}/{name}"))}
        for name in SHOP_IMAGES
    }


REPORT_SCHEMA = Path(__file__).resolve().parents[1] / "schema" / "report.schema.json"


def assert_valid_report(source: Path | str) -> dict[str, Any]:
    """A run report (a --report file, or --json's stdout) checked against schema/report.schema.json; its data."""
    from jsonschema import Draft202012Validator

    data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8") if isinstance(source, Path) else source)
    validator = Draft202012Validator(json.loads(REPORT_SCHEMA.read_text(encoding="utf-8")))
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in validator.iter_errors(data)]
    assert not problems, f"the report does not match {REPORT_SCHEMA.name}: {problems}"
    return data


DOCS = Path(__file__).resolve().parents[1] / "docs"


def docs_text(page: str) -> str:
    """A page of the documentation site (docs/PAGE), where README's reference moved; `README.md` is the
    front page itself."""
    path = DOCS.parent / "README.md" if page == "README.md" else DOCS / page
    return path.read_text(encoding="utf-8")


def docs_pages() -> list[str]:
    """README and every written page of the site (not the generated docs/reference/), in a stable order."""
    return ["README.md", *sorted(str(p.relative_to(DOCS)) for p in DOCS.glob("*.md"))]
