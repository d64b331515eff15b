"""The one redactor every output goes through: what it hides (known values and their base64 forms, each
line of a multi-line secret, docker config credentials, URL credentials, JWTs) and what it leaves alone."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.redaction import Redactor

FILE_LINES = ("file-line-one-SECRETSCAN-a8Qw", "file-line-two-SECRETSCAN-Zx41")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_each_line_of_a_multi_line_secret_file_is_hidden_where_it_shows_alone(tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("\n".join(FILE_LINES) + "\n")
    redactor = Redactor.for_run({}, (), [secret])
    # `cat` of the file in a build step: the log tail holds one entry per line.
    tail = [f"#7 0.21 {FILE_LINES[0]}", f"#7 0.21 {FILE_LINES[1]}", f"encoded {b64(FILE_LINES[1])}"]
    assert redactor.data(tail) == ["#7 0.21 ***", "#7 0.21 ***", "encoded ***"]


def test_short_lines_of_a_secret_are_not_hidden_everywhere(tmp_path: Path) -> None:
    secret = tmp_path / "key.json"
    secret.write_text('{\n  "k": "key-material-SECRETSCAN-77",\n  x\n}\n')
    redactor = Redactor.for_run({}, (), [secret])
    assert redactor.text('step {\n  x\n} "k": "key-material-SECRETSCAN-77",') == "step {\n  x\n} ***"


def test_a_multi_line_environment_secret_is_hidden_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nbWF0ZXJpYWwtU0VDUkVUU0NBTg\n-----END KEY-----"
    redactor = Redactor.for_run({"SSH_KEY": key}, ["SSH_KEY"])  # a build secret from a variable
    assert redactor.text("line bWF0ZXJpYWwtU0VDUkVUU0NBTg here") == "line *** here"


def test_the_docker_config_auth_value_itself_and_its_tokens_are_hidden(tmp_path: Path) -> None:
    auth = b64("robot:registry-pw-SECRETSCAN-Hh7")
    config = {
        "auths": {
            "127.0.0.1:5001": {"auth": auth},
            "example.azurecr.io": {"identitytoken": "identity-SECRETSCAN-r3"},
            "other.example.com": {"registrytoken": "registry-token-SECRETSCAN-p0"},
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    redactor = Redactor.for_run({}, docker_config=tmp_path)
    text = (
        f"Authorization: Basic {auth} ({auth.rstrip('=')}) pw registry-pw-SECRETSCAN-Hh7 "
        "robot:registry-pw-SECRETSCAN-Hh7 identity-SECRETSCAN-r3 registry-token-SECRETSCAN-p0"
    )
    assert "SECRETSCAN" not in redactor.text(text)
    assert auth.rstrip("=") not in redactor.text(text)
    assert redactor.text(f"Basic {auth}") == "Basic ***"


def test_url_credentials_go_whole_even_with_an_at_sign_in_the_password() -> None:
    redactor = Redactor([])
    assert redactor.text("clone https://x:ab@cd@github.com/o/r.git failed") == "clone https://github.com/o/r.git failed"
    assert redactor.text("GET https://h.example/p?access_token=tok-SECRETSCAN&page=2") == (
        "GET https://h.example/p?access_token=REDACTED&page=2"
    )
    assert redactor.text("ssh://git@github.com/o/r.git") == "ssh://git@github.com/o/r.git"  # a name, no password


def test_known_values_their_base64_forms_and_jwts_are_hidden_and_trivial_values_are_not() -> None:
    env = {"REGISTRY_PASSWORD": "hunter2-pw", "APP_TOKEN_ENABLED": "1", "X_SECRET": "", "NPM_AUTH": "npm-auth-val"}
    redactor = Redactor.for_run(env, ["NPM_AUTH"])
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9.c2lnbmF0dXJlLXNlY3JldA"
    text = f"pw hunter2-pw {b64('hunter2-pw')} {b64('npm-auth-val').rstrip('=')} npm-auth-val 1 of 1 {jwt}"
    assert redactor.text(text) == "pw *** *** *** *** 1 of 1 ***"


@pytest.mark.parametrize("prefix", ["gitlab-ci-token:", "oauth2:", "user:", "ab:"])
@pytest.mark.parametrize("token", ["glpat-SECRETSCAN-x7Qm1", "glpat-SECRETSCAN-x7Qm1b", "glpat-SECRETSCAN-x7Qm1bc"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_a_secrets_base64_is_hidden_at_any_byte_offset_in_an_encoded_text(
    prefix: str, token: str, encode: Callable[[bytes], bytes]
) -> None:
    """HTTP Basic credentials put the token 0, 1 or 2 bytes into a base64 group (after `gitlab-ci-token:`,
    16 bytes, it is 1), and text may follow it in the same encoding."""
    redactor = Redactor.for_run({"CI_JOB_TOKEN": token})
    for encoded in (encode(f"{prefix}{token}".encode()), encode(f"{prefix}{token}@host".encode())):
        header = f"Authorization: Basic {encoded.decode()}"
        masked = redactor.text(header)
        before, mask, after = masked.partition("***")
        assert mask, header
        # Left: what encodes the prefix (and the first group the token shares), the last few characters.
        assert before.startswith("Authorization: Basic ")
        assert len(before) <= len("Authorization: Basic ") + len(encode(prefix.encode()).rstrip(b"=")) + 1
        assert len(after) <= 4 + len(encode(b"@host"))


def test_a_short_secret_is_hidden_inside_other_words_too() -> None:
    """README's side effect of the 4-character minimum: a value is hidden wherever it shows."""
    redactor = Redactor.for_run({"DEPLOY_TOKEN": "test"})
    assert redactor.text("pushed :latest") == "pushed :la***"
