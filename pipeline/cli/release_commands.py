"""Commands for release managers: release, promote, tags."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.cli.common import (
    RunFlags,
    SignerFlags,
    config_option,
    echo_json,
    insecure_option,
    optional_config,
    optional_config_option,
    redacted,
    run_options,
    secrets,
    session,
    signer_options,
)
from pipeline.cli.completion import complete_pipelines
from pipeline.common.reporting import Forward
from pipeline.errors import UsageError

# --help and completion import this module: the config models, the run stack, the registry client and
# signing load in the commands' bodies.
if TYPE_CHECKING:
    from pipeline.release.cut import BumpChoice
    from pipeline.release.promote import Promotion
    from pipeline.release.tagview import VersionRow
    from pipeline.run.release import ReleasePreview
    from pipeline.signing.actions import SignResult
    from pipeline.signing.signer import Signer
from pipeline.versioning import FLOATING_KINDS, parse_version, tag_set


def _progress(step: str, message: str) -> None:
    # The messages name registries, git remotes and refusals: text from outside, so redacted.
    click.echo(f"{step:<8} {redacted(message)}", err=True)


# Release's and promote's own steps (image "": the release as a whole), each image's named before its message.
_STEPS = Forward(step=lambda image, step, message: _progress(step, f"{image}: {message}" if image else message))


def _print_dry_run(found: ReleasePreview, as_json: bool) -> None:
    """Print the plan, then refuse exactly as the real run would: the first refusal decides the exit code."""
    from pipeline.run.report import tag_change_data

    chosen, plan, changes, refusals = found.chosen, found.plan, found.preview.changes, found.preview.refusals
    if as_json:
        data = {
            "version": str(chosen.version),
            "git_tag": chosen.git_tag,
            "reason": chosen.reason,
            "rerun": chosen.rerun,
            "images": {key: list(image.tags.all) for key, image in plan.images.items()},
            "tag_changes": [tag_change_data(c) for c in changes or []],
            "refusals": [{"message": str(r), "exit_code": r.exit_code} for r in refusals],
        }
        echo_json(data)
    else:
        click.echo(f"version {chosen.version} ({chosen.reason}); git tag {chosen.git_tag}")
        for key, image in plan.images.items():
            click.echo(f"{key} -> {image.repository}")
            click.echo(f"  {image.tags.primary:<24} push     the build's own tag")
            for change in (c for c in changes or [] if c.image == key):
                click.echo(f"  {change.tag:<24} {change.action.value:<8} {change.reason}")
    if refusals:
        for other in refusals[1:]:
            _progress("refused", f"the release would also refuse: {other}")
        raise refusals[0]


@click.command()
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option(
    "--bump",
    type=click.Choice(["major", "minor", "patch", "auto"]),
    help="Next version after the latest vX.Y.Z git tag; auto reads Conventional Commits since it.",
)
@click.option("--version", "version", metavar="X.Y.Z", help="Release exactly this version.")
@click.option("--pre", metavar="LABEL", help="A prerelease: X.Y.Z-LABEL.N with N the next free number.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the version, each image's tags and which floating tags move; then refuse, with the same exit "
    "code, whatever the release would refuse.",
)
@click.option(
    "--push-tag",
    is_flag=True,
    help="Push the git tag to origin after a successful release; origin is checked first (it exists, answers, "
    "accepts the tag and does not hold it already), before anything is tagged or published, and by --dry-run.",
)
@run_options
def release(
    pipelines: tuple[str, ...],
    config_file: Path,
    bump: BumpChoice | None,
    version: str | None,
    pre: str | None,
    dry_run: bool,
    push_tag: bool,
    flags: RunFlags,
) -> None:
    """Cut a release: choose the version, tag HEAD (annotated vX.Y.Z), build and publish it.

    Refuses a dirty working tree. If any image fails, the git tag is removed again and no release or
    floating tag moves, so the same command can simply be run again. On a HEAD that already carries a
    release of the requested kind (stable, or --pre LABEL) the command is a re-run of that release:
    it finishes what is unfinished (tags, --push-tag) and cuts no new version.

    \b
    Example:
      pipeline release --bump auto --dry-run     # what would happen, and why
      pipeline release --bump minor --push-tag
      pipeline release --version 2.1.0 --pre rc  # 2.1.0-rc.N
    """
    from pipeline.cli.workflow import report_sink, run_session
    from pipeline.config import load_config
    from pipeline.run.release import Release

    config = load_config(config_file)
    the_session = run_session(config, flags.progress, flags.quiet)
    cut = Release(the_session, bump, version, pre)
    options, token = flags.options(push=True), secrets(flags.token)
    if dry_run:
        found = cut.dry_run(pipelines, options, token, flags.report_file, _STEPS, flags.junit_file, push_tag)
        _print_dry_run(found, flags.as_json)
        return
    chosen = [f"{name}/{image}" for name, spec in config.spec.pipelines.items() for image in spec.images]
    to_ci = report_sink(the_session, flags.dotenv, "pipeline release", [k for k in chosen if _in(k, pipelines)])
    cut.run(pipelines, options, token, flags.report_file, flags.as_json, push_tag, _STEPS, flags.junit_file, to_ci)


def _in(image: str, pipelines: tuple[str, ...]) -> bool:
    return not pipelines or image.split("/", 1)[0] in pipelines


@click.command()
@click.argument("source")
@click.argument("destination")
@click.option("--version", "version", required=True, metavar="X.Y.Z", help="The release to tag it as.")
@click.option("--suffix", default="", help="Variant suffix for every tag (e.g. -windows).")
@click.option(
    "--floating",
    default=",".join(FLOATING_KINDS),
    show_default=True,
    help="Floating tags to consider, comma-separated (minor,major,latest; empty for none).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing release tag that names another image.")
@click.option(
    "--resign",
    is_flag=True,
    help="Sign the destination's digest (and an index's children) with --key or keyless instead of carrying "
    "the source's signatures; attestations are still carried unchanged.",
)
@signer_options("--resign")
@insecure_option
@optional_config_option("trust policy (checked on the source) and registry settings")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def promote(
    source: str,
    destination: str,
    version: str,
    suffix: str,
    floating: str,
    force: bool,
    resign: bool,
    signing: SignerFlags,
    insecure: tuple[str, ...],
    config_file: Path | None,
    as_json: bool,
) -> None:
    """Copy a tested image SOURCE (repo:tag or repo@digest) to DESTINATION (a repository) and tag it.

    The image is copied by digest (blobs mounted across repositories of one registry, copied
    otherwise), so the destination holds exactly the tested bytes. What is attached to the digest (and
    to an index's children) comes along: cosign's `sha256-<hex>.sig`/`.att`/`.sbom` tags and the OCI
    referrers (signatures, attestations, SBOMs), listed in the destination's fallback referrers index
    where it has no referrers API. They arrive before any tag moves: if one cannot be copied, nothing is
    tagged. A SOURCE given by tag is resolved once; if the tag moves during the copy, nothing is tagged.
    Release and floating tags in the destination follow the same rules as `run`.

    \b
    Example:
      pipeline promote stage.example.com/shop/app:sha-0123456789ab prod.example.com/shop/app --version 2.1.5
      COSIGN_PASSWORD=... pipeline promote stage.example.com/shop/app:1.0.0 prod.example.com/shop/app \\
          --version 1.0.0 --resign --key prod.key --storage both
    """
    from pipeline.registry.reference import parse_reference, parse_repository
    from pipeline.release.promote import promote as promote_image
    from pipeline.signing.actions import sign_reference

    kinds = _floating_kinds(floating)
    if not resign and signing.given:
        raise UsageError("--key, --identity-token, --trust-config and --storage go with --resign")
    source_ref = parse_reference(source)
    destination_repo = parse_repository(destination)
    tags = tag_set(parse_version(version), None, suffix=suffix, floating=kinds)  # type: ignore[arg-type]
    the_session = session(optional_config(config_file))
    policy = the_session.trust_policy()
    with the_session.registry(insecure) as registry:
        resigner = partial(sign_reference, registry, signer=_signer_now(signing)) if resign else None
        claims = the_session.promote_claims(str(destination_repo), str(tags.release), force, Path.cwd())
        done = promote_image(registry, source_ref, destination_repo, tags, force, _STEPS, policy, resigner, claims)
    if as_json:
        echo_json(_promotion_data(done))
        return
    _echo_promotion(done)


def _signer_now(signing: SignerFlags) -> Callable[[], Signer]:
    """The `--resign` signer, made (key read, passphrase or token asked for) now, before anything is copied:
    a missing key or a wrong passphrase must not leave the image copied, untagged, at the destination."""
    made = signing.signer()()
    return lambda: made


def _floating_kinds(floating: str) -> list[str]:
    """The floating tag kinds of `--floating` (comma-separated), each one of FLOATING_KINDS."""
    kinds = [k for k in floating.split(",") if k]
    bad = [k for k in kinds if k not in FLOATING_KINDS]
    if bad:
        raise click.BadParameter(
            f"unknown floating tag kind '{bad[0]}' (minor, major, latest)", param_hint="--floating"
        )
    return kinds


def _promotion_data(done: Promotion) -> dict[str, Any]:
    """`promote --json`: where the image went, what was copied, carried and signed, and the tag changes."""
    from pipeline.run.report import tag_change_data

    return {
        "source": str(done.source),
        "digest": done.digest,
        "destination": str(done.destination),
        "reference": f"{done.destination}@{done.digest}",
        "blobs": {
            "present": done.stats.blobs_present,
            "mounted": done.stats.blobs_mounted,
            "copied": done.stats.blobs_copied,
            "bytes_copied": done.stats.bytes_copied,
        },
        "carried": done.carried.counts,  # written now
        "already": done.carried.already,  # held by the destination before
        "resigned": _resigned_data(done.resigned),
        "tag_changes": [tag_change_data(c) for c in done.changes],
    }


def _echo_promotion(done: Promotion) -> None:
    """The promoted reference, what was carried (or already there), the signer, and the tag changes."""
    click.echo(f"{done.destination}@{done.digest}")
    carried = ", ".join(f"{count} {kind}" for kind, count in done.carried.counts.items() if count)
    already = ", ".join(f"{count} {kind}" for kind, count in done.carried.already.items() if count)
    click.echo(f"  carried: {carried or ('nothing new' if already else 'nothing attached')}")
    if already:
        click.echo(f"  already there: {already}")
    if done.resigned is not None:
        click.echo(f"  signed by {done.resigned.signer} ({1 + len(done.resigned.children)} digests)")
    for change in done.changes:
        click.echo(f"  {change.tag:<24} {change.action.value:<9} {change.reason}")


def _resigned_data(signed: SignResult | None) -> list[dict[str, Any]] | None:
    """Each digest signed at the destination (an index's children, then the index), or None."""
    if signed is None:
        return None
    return [
        {"digest": s.digest, "platform": s.platform or None, "signer": s.signer, "written": list(s.written)}
        for s in (*signed.children, signed)
    ]


@click.command()
@click.argument("repository")
@click.option("--suffix", default="", help="Only versions with this variant suffix.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also the tags pipeline keeps for itself: inputs-… (input cache), sha256-… (signatures, attestations) "
    "and the variants' build tags sha-…-<variant> (part of the index sha-… names).",
)
@insecure_option
@optional_config_option("registry settings")
@click.option("--json", "as_json", is_flag=True, help="Print the view as JSON.")
def tags(
    repository: str, suffix: str, everything: bool, insecure: tuple[str, ...], config_file: Path | None, as_json: bool
) -> None:
    """Show REPOSITORY's tags as versions: one row per digest with every version on it, its platforms
    (an image index), the tags that share it, and the version whose build made it when that is another
    (a reused image keeps the labels of its build).

    \b
    Example:
      pipeline tags 127.0.0.1:5000/demo/app --json
      pipeline tags 127.0.0.1:5000/demo/app --all   # also inputs-… and sha256-….sig/.att tags
    """
    from pipeline.registry.reference import parse_repository
    from pipeline.release.tagview import tag_view

    repo = parse_repository(repository)
    with session(optional_config(config_file)).registry(insecure) as registry:
        view = tag_view(registry, repo, suffix, everything)
    if as_json:
        data = {
            "repository": str(view.repository),
            # One entry per digest: `version`/`tag` its highest version and its tag, `versions`/`version_tags`
            # all of them (a tag is the version plus --suffix).
            "versions": [
                {
                    "version": r.version,
                    "tag": r.tag,
                    "versions": list(r.versions),
                    "version_tags": list(r.tags),
                    "digest": r.digest,
                    "also": list(r.also),
                    "platforms": [{"platform": platform, "digest": child} for child, platform in r.platforms],
                    "built_from": vars(r.built_from) if r.built_from is not None else None,
                }
                for r in view.versions
            ],
            "other_tags": view.other,
            "hidden_tags": view.hidden,
        }
        echo_json(data)
        return
    if not view.versions and not view.other:
        click.echo(
            f"{view.repository}: no tags" + (f" ({view.hidden} internal; --all shows them)" if view.hidden else "")
        )
        return
    names = [", ".join(r.tags) for r in view.versions]
    others: dict[str | None, list[str]] = {}
    for tag, digest in sorted(view.other.items()):
        others.setdefault(digest, []).append(tag)
    width = max([len(n) for n in names] + [7])
    for name, row in zip(names, view.versions, strict=True):
        also = f"  ({', '.join(row.also)})" if row.also else ""
        platforms = f"  [{', '.join(platform for _child, platform in row.platforms)}]" if row.platforms else ""
        click.echo(f"{name:<{width}}  {(row.digest or '-')[:19]}{platforms}{_built_from(row, suffix)}{also}")
    for digest, other in others.items():
        click.echo(f"{', '.join(other):<{width}}  {(digest or '-')[:19]}  (not on any version)")
    if view.hidden:
        click.echo(f"({view.hidden} internal tags not shown: inputs-…, sha256-…, sha-…-<variant>; --all shows them)")


def _built_from(row: VersionRow, suffix: str) -> str:
    """`built as V at C`, where the image's labels name another version than the row's highest: a reused
    image keeps the labels of the build that made it."""
    made = row.built_from
    if made is None or made.version is None or made.version in (row.tag, row.tag.removesuffix(suffix)):
        return ""
    # Label values are anyone's text (whoever pushed the image): no terminal escapes reach the screen.
    return f"  built as {_printable(made.version)}" + (f" at {_printable(made.revision[:12])}" if made.revision else "")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
