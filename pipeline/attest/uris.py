"""How provenance names what a build used: URLs without credentials, a git source as an SPDX download
location (`git+https://host/repo.git@ref`) and an image as a package URL (`pkg:docker/...`). Pure."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from packageurl import PackageURL

from pipeline.common.urls import strip_credentials
from pipeline.errors import ConfigError
from pipeline.registry.reference import DOCKER_HUB, parse_reference

# git's scp-like syntax `[user@]host:path`, which is not a URI (git itself reads it as ssh).
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:\s]+@)?(?P<host>[^@/:\s]{2,}):(?P<path>[^/\s].*)$")


def git_source_uri(remote: str) -> str | None:
    """A git remote as a URI (scheme and host in lower case, as in-toto's ResourceURI asks): an scp-like
    `git@host:x/y.git` becomes `ssh://git@host/x/y.git`, an absolute path `file:///srv/x.git`; None for
    a relative path, which names nothing outside the machine that built."""
    remote = strip_credentials(remote)
    scp = _SCP_LIKE.match(remote)
    if "://" not in remote and scp is not None:
        remote = f"ssh://{scp['user'] or ''}{scp['host']}/{scp['path']}"
    elif remote.startswith("/"):
        remote = f"file://{remote}"
    parts = urlsplit(remote)
    if not parts.scheme or "://" not in remote:
        return None
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()))


def image_purl(reference: str, platform: str | None = None) -> str | None:
    """`registry/path[:tag][@digest]` as a package URL of type docker
    (https://github.com/package-url/purl-spec/blob/main/PURL-TYPES.rst#docker): the registry in
    `repository_url` (none for Docker Hub, whose `library/` is implied), the tag as the version (the
    digest when there is no tag) and the platform the image was resolved for. None if `reference` is not
    an image reference."""
    try:
        ref = parse_reference(reference)
    except ConfigError:
        return None
    registry, path = ref.repository.registry, ref.repository.path
    qualifiers = {"platform": platform} if platform else {}
    if registry == DOCKER_HUB:
        path = path.removeprefix("library/")
    else:
        qualifiers["repository_url"] = registry
    namespace, _, name = path.rpartition("/")
    purl = PackageURL(
        type="docker", namespace=namespace or None, name=name, version=ref.tag or ref.digest, qualifiers=qualifiers
    )
    return str(purl.to_string())
