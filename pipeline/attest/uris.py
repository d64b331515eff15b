"""How provenance names what a build used: URLs without credentials, a git source as an SPDX download
location (`git+https://host/repo.git@ref`) and an image as a package URL (`pkg:docker/...`). Pure."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from packageurl import PackageURL

from pipeline.errors import ConfigError
from pipeline.registry.reference import DOCKER_HUB, parse_reference

# `scheme://userinfo@` anywhere in a text: userinfo runs to the last `@` before the path, so a password
# with a raw `@` in it goes too.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#\s]*)@")
# Query parameters that carry a credential by convention (OAuth access tokens, S3 and Azure SAS
# signatures, API keys): their values are replaced, the rest of the URL kept.
_SECRET_QUERY = re.compile(
    r"(?P<lead>[?&](?:[A-Za-z0-9_.-]*?(?:token|password|passwd|secret|api[_-]?key|apikey|auth|credential|signature)"
    r"[A-Za-z0-9_.-]*|sig|key|code))=(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)
REDACTED = "REDACTED"
# git's scp-like syntax `[user@]host:path`, which is not a URI (git itself reads it as ssh).
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:\s]+@)?(?P<host>[^@/:\s]{2,}):(?P<path>[^/\s].*)$")


def strip_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it removed: `https://user:token@host/x.git` ->
    `https://host/x.git`, also inside a longer value such as `--index-url https://u:p@host/simple`.
    An ssh URL keeps a user name without a password (`ssh://git@host/x.git`: ssh authenticates by key,
    and the name is part of where to clone from), as does git's scp-like `git@host:x.git`. Over HTTP
    the user name alone can be the token (GitHub takes `https://<token>@github.com/...`), so it goes.
    The values of query parameters named like credentials (`access_token=`, `X-Amz-Signature=`, `sig=`,
    `api_key=`…) are replaced by REDACTED."""
    without_userinfo = _USERINFO.sub(_without_credentials, text)
    return _SECRET_QUERY.sub(lambda m: f"{m['lead']}={REDACTED}", without_userinfo)


def _without_credentials(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    if "ssh" in scheme.lower().split("+") and ":" not in userinfo:
        return match[0]
    return f"{scheme}://"


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
