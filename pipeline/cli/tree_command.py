"""`pipeline tree`: what the supply chain has attached to a reference, as a tree (or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.cli.common import echo_json, insecure_option, optional_config, optional_config_option, session
from pipeline.common.fields import fields_of

# --help and completion import this module: the registry client and signing load in the command.
if TYPE_CHECKING:
    from pipeline.signing.attached import Attached, Attachment, Kind
    from pipeline.signing.tree import TreeNode

SECTIONS: tuple[tuple[Kind, str], ...] = (
    ("signature", "signatures"),
    ("attestation", "attestations"),
    ("sbom", "SBOMs"),
    ("other", "other"),
)
Branch = tuple[str, list["Branch"]]  # a label and the branches under it


@click.command()
@click.argument("reference")
@insecure_option
@optional_config_option("registry settings")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
def tree(reference: str, insecure: tuple[str, ...], config_file: Path | None, as_json: bool) -> None:
    """Show what is attached to REFERENCE's digest, like `cosign tree`: the tags naming it, its
    signatures, attestations (predicate type, signer, storage form), SBOMs and other OCI referrers, and
    for an image index each platform's manifest with its own attachments.

    Signers are read as stored (a key hint, or a certificate's identity and issuer) and marked
    unverified: `pipeline verify` judges them. A referrer's own referrers are shown one level deep.

    \b
    Example:
      pipeline tree 127.0.0.1:5000/demo/app:1.0.0
      pipeline tree 127.0.0.1:5000/demo/app@sha256:0123... --json
    """
    from pipeline.registry.reference import parse_reference
    from pipeline.signing.tree import supply_chain_tree

    ref = parse_reference(reference)
    with session(optional_config(config_file)).registry(insecure) as registry:
        found = supply_chain_tree(registry, ref)
    if as_json:
        echo_json(tree_data(found))
        return
    click.echo("\n".join(tree_lines(found)))


def tree_data(node: TreeNode) -> dict[str, Any]:
    """The JSON form: one object per digest, the same shape for an index and its children."""
    return {
        "reference": node.reference,
        "digest": node.digest,
        "platform": node.platform,
        "tags": list(node.tags),
        **{plural.lower(): [_item_data(i) for i in node.attached.of_kind(kind)] for kind, plural in SECTIONS},
        "referrers_api": node.attached.referrers_api,
        "children": [tree_data(child) for child in node.children],
    }


def _item_data(item: Attachment) -> dict[str, Any]:
    return {
        **fields_of(item, "form", "manifest", "tag", "media_type", "predicate_type"),
        "signer": item.signer.data() if item.signer else None,
        "referrers": [_item_data(nested) for nested in item.referrers],
    }


def tree_lines(node: TreeNode) -> list[str]:
    """The tree as text, drawn with unicode branches."""
    return [node.reference, *_draw(_branches(node))]


def _branches(node: TreeNode) -> list[Branch]:
    branches: list[Branch] = [(f"tags: {', '.join(node.tags) if node.tags else '(none)'}", [])]
    branches += _attached_branches(node.attached)
    for child in node.children:
        label = f"{child.platform}: {child.digest}" + (f"  (tags: {', '.join(child.tags)})" if child.tags else "")
        branches.append((label, _attached_branches(child.attached)))
    return branches


def _attached_branches(found: Attached) -> list[Branch]:
    sections: list[Branch] = []
    for kind, plural in SECTIONS:
        items = found.of_kind(kind)
        if items or kind == "signature":  # "no signatures" is worth saying; no SBOM is not news
            sections.append((f"{plural} ({len(items)})", [_item_branch(item) for item in items]))
    return sections


def _item_branch(item: Attachment) -> Branch:
    where = f"legacy {item.tag}" if item.form == "legacy" else f"referrer {item.manifest}"
    parts = [item.predicate_type or "", where, f"signer {item.signer.text} (unverified)" if item.signer else ""]
    if item.kind == "signature":
        parts[0] = ""  # every signature has the same predicate (or none): it says nothing here
    if item.kind == "other":
        parts[0] = item.media_type or "(no artifact type)"
    return ("  ".join(p for p in parts if p), [_item_branch(nested) for nested in item.referrers])


def _draw(branches: list[Branch], prefix: str = "") -> list[str]:
    lines = []
    for number, (label, below) in enumerate(branches):
        last = number == len(branches) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{label}")
        lines += _draw(below, prefix + ("    " if last else "│   "))
    return lines
