"""`pipeline tree`'s text and JSON, from a tree built by hand (pure)."""

from __future__ import annotations

from pipeline.cli.tree_command import tree_data, tree_lines
from pipeline.registry.reference import parse_repository
from pipeline.signing.attached import Attached, Attachment, Signer
from pipeline.signing.tree import TreeNode

REPO = parse_repository("reg.example.com/shop/app")
INDEX, AMD64, ARM64 = "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "3" * 64
SIG_MANIFEST, BUNDLE, SBOM_SIG = "sha256:" + "4" * 64, "sha256:" + "5" * 64, "sha256:" + "6" * 64
PROVENANCE = "https://slsa.dev/provenance/v1"


def legacy_signature(digest: str) -> Attachment:
    tag = digest.replace(":", "-") + ".sig"
    return Attachment("signature", "legacy", SIG_MANIFEST, "sig-type", None, Signer(), tag, "sha256:layer")


def sample() -> TreeNode:
    attestation = Attachment(
        "attestation",
        "referrers",
        BUNDLE,
        "bundle-type",
        PROVENANCE,
        Signer(subject="ci@example.com", issuer="https://issuer"),
        descriptor={"digest": BUNDLE},
        referrers=(Attachment("signature", "referrers", SBOM_SIG, "bundle-type", None, Signer(key_hint="k1")),),
    )
    other = Attachment("other", "referrers", "sha256:" + "7" * 64, "application/x-thing", None, None)
    top = Attached(REPO, INDEX, (legacy_signature(INDEX), attestation, other), False)
    amd64 = TreeNode(REPO, AMD64, ("amd64",), Attached(REPO, AMD64, (legacy_signature(AMD64),), False), "linux/amd64")
    arm64 = TreeNode(REPO, ARM64, (), Attached(REPO, ARM64, (), False), "linux/arm64")
    return TreeNode(REPO, INDEX, ("1.0.0", "latest"), top, None, (amd64, arm64))


def test_tree_text_draws_unicode_branches() -> None:
    sig = INDEX.replace(":", "-") + ".sig"
    assert tree_lines(sample()) == [
        f"reg.example.com/shop/app@{INDEX}",
        "├── tags: 1.0.0, latest",
        "├── signatures (1)",
        f"│   └── legacy {sig}  signer key (no hint stored) (unverified)",
        "├── attestations (1)",
        f"│   └── {PROVENANCE}  referrer {BUNDLE}  signer ci@example.com (https://issuer) (unverified)",
        f"│       └── referrer {SBOM_SIG}  signer key k1 (unverified)",
        "├── other (1)",
        f"│   └── application/x-thing  referrer sha256:{'7' * 64}",
        f"├── linux/amd64: {AMD64}  (tags: amd64)",
        "│   └── signatures (1)",
        f"│       └── legacy {AMD64.replace(':', '-')}.sig  signer key (no hint stored) (unverified)",
        f"└── linux/arm64: {ARM64}",
        "    └── signatures (0)",
    ]


def test_tree_json_has_one_shape_for_an_index_and_its_children() -> None:
    data = tree_data(sample())
    assert list(data) == [
        "reference",
        "digest",
        "platform",
        "tags",
        "signatures",
        "attestations",
        "sboms",
        "other",
        "referrers_api",
        "children",
    ]
    assert data["attestations"] == [
        {
            "form": "referrers",
            "manifest": BUNDLE,
            "tag": None,
            "media_type": "bundle-type",
            "predicate_type": PROVENANCE,
            "signer": {
                "kind": "certificate",
                "subject": "ci@example.com",
                "issuer": "https://issuer",
                "verified": False,
            },
            "referrers": [
                {
                    "form": "referrers",
                    "manifest": SBOM_SIG,
                    "tag": None,
                    "media_type": "bundle-type",
                    "predicate_type": None,
                    "signer": {"kind": "key", "hint": "k1", "verified": False},
                    "referrers": [],
                }
            ],
        }
    ]
    assert [(c["platform"], c["tags"], len(c["signatures"]), c["children"]) for c in data["children"]] == [
        ("linux/amd64", ["amd64"], 1, []),
        ("linux/arm64", [], 0, []),
    ]
    assert data["platform"] is None and data["referrers_api"] is False
