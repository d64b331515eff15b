"""encoded_at and whole_groups: what of a secret's base64 shows when other data comes before and after it."""

from __future__ import annotations

import base64

import pytest

from pipeline.redaction.wrapped import OFFSETS, encoded_at, whole_groups


@pytest.mark.parametrize("secret", [b"s3cr", b"s3cre", b"s3cret", b"hunter2-and-more", b"\xff\xfe\xfd\xfc"])
@pytest.mark.parametrize("before", [b"", b"x", b"xy", b"Basic ", b"gitlab-ci-token:"])
@pytest.mark.parametrize("after", [b"", b"\n", b"tail!"])
def test_the_determined_characters_stand_in_any_encoding_of_the_secret_between_other_data(
    secret: bytes, before: bytes, after: bytes
) -> None:
    offset = len(before) % 3
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        shown = encode(before + secret + after).decode()
        determined = encoded_at(secret, offset, encode)[: whole_groups(secret, offset)]
        assert determined in shown
        assert len(determined) >= len(secret) * 4 // 3 - 4  # at most one group short at each end


def test_exact_forms_and_counts() -> None:
    # b"abcd" after 0, 1 and 2 bytes: "YWJjZA==", "AGFiY2Q=", "AABhYmNk" less what encodes those bytes
    assert [encoded_at(b"abcd", offset) for offset in OFFSETS] == ["YWJjZA==", "FiY2Q=", "hYmNk"]
    assert [whole_groups(b"abcd", offset) for offset in OFFSETS] == [4, 2, 5]
    assert whole_groups(b"a", 2) == 1 and whole_groups(b"a", 1) == 0  # never below 0
    assert encoded_at(b"hi", 0, base64.urlsafe_b64encode) == "aGk="
