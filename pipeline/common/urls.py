"""URLs as pipeline publishes and shows them (OCI labels, provenance, messages, redacted output): without
the credentials a CI checkout's remote or a build arg may carry. Pure, so every layer above may use it."""

from __future__ import annotations

import re

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
