"""Registry operations on top of RegistrySession: manifests, tags, blobs, image config."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Unpack

from pipeline.common.http import httpx
from pipeline.errors import RegistryError
from pipeline.registry.contentcache import MAX_BYTES, ContentCache
from pipeline.registry.credentials import CredentialLookup
from pipeline.registry.reference import ImageRef, Repository
from pipeline.registry.session import Closing, ConnectionOptions, RegistrySession

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)

# buildx's attestation manifests (provenance, SBOM) sit in an index beside its images, platform
# `unknown/unknown`, annotated with the image they describe (docs.docker.com/build/metadata/attestations/
# attestation-storage/). They are not images of a platform: nothing runs or builds on them.
ATTESTATION_REFERENCE_TYPE = "vnd.docker.reference.type"
ATTESTATION_MANIFEST = "attestation-manifest"


def is_attestation_manifest(descriptor: Mapping[str, Any]) -> bool:
    """An index entry that is buildx's attestation manifest of another entry, not an image."""
    annotations = descriptor.get("annotations")
    return isinstance(annotations, dict) and annotations.get(ATTESTATION_REFERENCE_TYPE) == ATTESTATION_MANIFEST


def image_descriptors(index: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of an index's `manifests` that are images (with a digest), in its order: without
    buildx's attestation manifests. Copying an index whole (promote) still copies every entry."""
    return [
        d
        for d in index.get("manifests") or []
        if isinstance(d, dict) and "digest" in d and not is_attestation_manifest(d)
    ]


UPLOAD_CHUNK = 1 << 20
KEPT_BYTES = 64 << 20  # what one client keeps in memory of the small content it read (configs, manifests)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str
    body: bytes

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body)
        if not isinstance(data, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.json()


def _join_query(location: str, **params: str) -> str:
    separator = "&" if "?" in location else "?"
    return location + separator + str(httpx.QueryParams(params))


class RegistryClient(Closing):
    """The registry operations pipeline needs; one instance per run, shared by its threads."""

    def __init__(
        self,
        credentials: CredentialLookup,
        content_cache: ContentCache | None = None,
        **connection: Unpack[ConnectionOptions],
    ) -> None:
        """`content_cache`: configs and manifests already read, by digest (None: none kept); `connection`:
        how registries are reached (see ConnectionOptions)."""
        self.session = RegistrySession(credentials, **connection)
        self.content = content_cache
        # What this client read or wrote by digest (checked against it once), in memory: the reuse check
        # and the reuse itself read an image's manifest and config twice, and the store is on disk.
        self._kept: dict[str, bytes] = {}
        self._kept_bytes = 0
        self._kept_lock = threading.Lock()
        # Manifests this client wrote, by (repository, digest): tagging what was just pushed (an index: its
        # build, input and release tags) is then one PUT, not a GET of bytes already in hand and a PUT.
        self._written: dict[tuple[str, str], Manifest] = {}
        self._no_referrers_api: set[str] = set()  # registry hosts that answered the referrers API with 404

    def close(self) -> None:
        self.session.close()

    def base_url(self, registry: str) -> str:
        return self.session.base_url(registry)

    # --- manifests and tags ---------------------------------------------------

    def get_manifest(self, ref: ImageRef) -> Manifest:
        if ref.digest and (written := self._written.get((str(ref.repository), ref.digest))) is not None:
            return written
        reference = ref.digest or ref.tag or "latest"
        response = self.session.request("GET", ref.repository, f"manifests/{reference}", accept=MANIFEST_TYPES)
        if response.status_code == 404:
            raise RegistryError(f"{ref}: not found in the registry")
        return self._manifest(ref, reference, response)

    def _manifest(self, ref: ImageRef, reference: str, response: httpx.Response) -> Manifest:
        self.session.raise_for(response, ref.repository, f"reading manifest {reference}")
        body = response.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.digest and ref.digest != digest:
            raise RegistryError(f"{ref}: registry returned content with digest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(media_type=media_type, digest=digest, body=body)

    def resolve_digest(self, ref: ImageRef) -> str | None:
        """The digest a tag points at now (HEAD, falling back to GET), or None if the tag does not exist."""
        reference = ref.digest or ref.tag or "latest"
        response = self.session.request("HEAD", ref.repository, f"manifests/{reference}", accept=MANIFEST_TYPES)
        if response.status_code == 404:
            return None
        self.session.raise_for(response, ref.repository, f"resolving {reference}")
        digest = response.headers.get("Docker-Content-Digest")
        return digest or self.get_manifest(ref).digest

    def send_manifest(self, repository: Repository, reference: str, manifest: Manifest) -> httpx.Response:
        """The PUT of a manifest, its answer unchecked (put_manifest checks it; push_index reads why an
        index was refused)."""
        return self.session.request(
            "PUT",
            repository,
            f"manifests/{reference}",
            content=manifest.body,
            headers={"Content-Type": manifest.media_type},
            push=True,
        )

    def put_manifest(self, repository: Repository, reference: str, manifest: Manifest) -> str:
        response = self.send_manifest(repository, reference, manifest)
        self.session.raise_for(response, repository, f"writing manifest {reference}")
        stored = str(response.headers.get("Docker-Content-Digest", manifest.digest))
        if stored == manifest.digest:
            self.remember_written(repository, manifest)
        return stored

    def remember_written(self, repository: Repository, manifest: Manifest) -> None:
        """`manifest` is in `repository` now (this client wrote it); its digest must be its body's."""
        if manifest.digest == "sha256:" + hashlib.sha256(manifest.body).hexdigest():
            self._written[(str(repository), manifest.digest)] = manifest

    def tag(self, repository: Repository, digest: str, tag: str) -> None:
        """Point `tag` at `digest` in the registry by re-putting the manifest's exact bytes."""
        manifest = self.get_manifest(repository.with_digest(digest))
        stored = self.put_manifest(repository, tag, manifest)
        if stored != digest:
            raise RegistryError(f"{repository}:{tag}: registry stored digest {stored}, expected {digest}")

    def delete_tag(self, repository: Repository, tag: str) -> bool:
        """Remove a tag, leaving its manifest (OCI distribution 1.1: DELETE of a tag reference). False
        where the registry does not delete tags (Docker Distribution 2.x answers 400 or 405)."""
        response = self.session.request("DELETE", repository, f"manifests/{tag}", push=True)
        if response.status_code in (200, 202, 204, 404):
            return True
        if response.status_code in (400, 405):
            return False
        self.session.raise_for(response, repository, f"deleting tag {tag}")
        return False

    def list_tags(self, repository: Repository) -> list[str]:
        tags: list[str] = []
        path = "tags/list?n=1000"
        while path:
            response = self.session.request("GET", repository, path)
            if response.status_code == 404:
                return tags
            self.session.raise_for(response, repository, "listing tags")
            tags.extend(response.json().get("tags") or [])
            link = response.headers.get("Link", "")
            match = re.search(r"<[^>]*/v2/[^>]*?/(tags/list[^>]*)>", link)
            path = match.group(1) if match else ""
        return tags

    def manifest_by_digest(self, repository: Repository, digest: str) -> Manifest:
        """The manifest with this digest: from the content cache, else read from `repository` (and kept)."""
        body = self._cached(digest)
        if body is not None:
            media_type = str(json.loads(body).get("mediaType", ""))
            return Manifest(media_type=media_type, digest=digest, body=body)
        manifest = self.get_manifest(repository.with_digest(digest))
        self._store(digest, manifest.body)
        return manifest

    def _cached(self, digest: str) -> bytes | None:
        """Content with this digest read or written earlier: by this client, else (read and checked
        against its digest) from the content cache."""
        kept = self._kept.get(digest)
        if kept is not None:
            return kept
        body = self.content.get(digest) if self.content is not None else None
        if body is not None:
            self._keep(digest, body)
        return body

    def _store(self, digest: str, data: bytes) -> None:
        """Content checked against `digest`: kept for this client and in the content cache."""
        self._keep(digest, data)
        if self.content is not None:
            self.content.put(digest, data)

    def _keep(self, digest: str, data: bytes) -> None:
        with self._kept_lock:
            if digest not in self._kept and len(data) <= MAX_BYTES and self._kept_bytes + len(data) <= KEPT_BYTES:
                self._kept[digest] = data
                self._kept_bytes += len(data)

    def image_labels(self, ref: ImageRef) -> dict[str, str]:
        """The image config's labels (for an index, its first image's)."""
        return self.manifest_labels(ref.repository, self.get_manifest(ref))

    def manifest_labels(self, repository: Repository, manifest: Manifest) -> dict[str, str]:
        """The labels in the config of `manifest`, read from `repository` (for an index, its first image's)."""
        data = manifest.json()
        if manifest.is_index:
            children = image_descriptors(data)  # its first image's, not an attestation manifest's
            if not children:
                return {}
            return self.manifest_labels(repository, self.manifest_by_digest(repository, str(children[0]["digest"])))
        labels = (self.image_config(repository, manifest).get("config") or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    def image_config(self, repository: Repository, manifest: Manifest) -> dict[str, Any]:
        """The image config blob of an image manifest ({} when it has none), from the content cache when
        an earlier read kept it (the blob's digest is checked on every read)."""
        config_digest = str(manifest.json().get("config", {}).get("digest", ""))
        if not config_digest:
            return {}
        config = json.loads(self.get_blob(repository, config_digest))
        return config if isinstance(config, dict) else {}

    # --- blobs ------------------------------------------------------------------

    def push_blob(self, repository: Repository, data: bytes, *, new: bool = False) -> str:
        """Upload a small blob unless it is already there; return its digest. `new`: the caller knows it
        is not (a fresh signature): upload without asking first. Kept in the content cache, so reading
        back what this client wrote (the next attestation's check of the last one) costs no request."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if new or not self.blob_exists(repository, digest):
            self.upload_blob(repository, digest, io.BytesIO(data))
        self._store(digest, data)
        return digest

    def referrers(self, repository: Repository, digest: str) -> list[dict[str, Any]] | None:
        """Descriptors from the OCI 1.1 referrers API, or None where the registry has no such API. A
        registry with the API answers 200 even when nothing refers to the digest (distribution-spec), so
        one 404 settles it for the registry: it is not asked again by this client."""
        if repository.registry in self._no_referrers_api:
            return None
        response = self.session.request("GET", repository, f"referrers/{digest}", accept=(OCI_INDEX,))
        if response.status_code in (404, 405) or "json" not in response.headers.get("Content-Type", ""):
            self._no_referrers_api.add(repository.registry)
            return None
        self.session.raise_for(response, repository, f"listing referrers of {digest}")
        manifests = response.json().get("manifests") or []
        return [m for m in manifests if isinstance(m, dict)]

    def get_blob(self, repository: Repository, digest: str) -> bytes:
        """A small blob (a config, a signature); kept in the content cache."""
        cached = self._cached(digest)
        if cached is not None:
            return cached
        response = self.session.request("GET", repository, f"blobs/{digest}")
        self.session.raise_for(response, repository, f"reading blob {digest}")
        if "sha256:" + hashlib.sha256(response.content).hexdigest() != digest:
            raise RegistryError(f"{repository}: blob {digest} arrived with other content")
        self._store(digest, response.content)
        return response.content

    def blob_exists(self, repository: Repository, digest: str) -> bool:
        response = self.session.request("HEAD", repository, f"blobs/{digest}")
        if response.status_code == 404:
            return False
        self.session.raise_for(response, repository, f"checking blob {digest}")
        return True

    def download_blob(self, repository: Repository, digest: str, sink: IO[bytes]) -> None:
        got = self.session.download(repository, f"blobs/{digest}", sink)
        if got != digest:
            raise RegistryError(f"{repository}: blob {digest} arrived with digest {got}")

    def mount_blob(self, repository: Repository, digest: str, source: Repository) -> bool:
        """Cross-repository mount within one registry; False if the registry declined (then upload)."""
        response = self.session.request(
            "POST",
            repository,
            f"blobs/uploads/?{httpx.QueryParams({'mount': digest, 'from': source.path})}",
            push=True,
        )
        self.session.raise_for(response, repository, f"mounting blob {digest}")
        return response.status_code == 201

    def upload_blob(self, repository: Repository, digest: str, source: IO[bytes]) -> None:
        """Monolithic upload: POST for a session, then PUT the bytes with the digest. If the PUT's answer
        was lost and its retry finds the session gone (the registry had completed it), the blob is there
        or the upload starts over in a new session: an upload session is single-use."""
        for _session in range(2):
            done = self._upload_once(repository, digest, source)
            if done.status_code != 404 or "BLOB_UPLOAD_UNKNOWN" not in done.text:
                self.session.raise_for(done, repository, f"uploading blob {digest}")
                return
            if self.blob_exists(repository, digest):
                return
        self.session.raise_for(done, repository, f"uploading blob {digest}")

    def _upload_once(self, repository: Repository, digest: str, source: IO[bytes]) -> httpx.Response:
        started = self.session.request("POST", repository, "blobs/uploads/", push=True)
        self.session.raise_for(started, repository, "starting a blob upload")
        location = started.headers.get("Location")
        if not location:
            raise RegistryError(f"{repository}: registry started an upload without a Location")
        url = str(httpx.URL(self.base_url(repository.registry)).join(location))

        def chunks() -> Iterator[bytes]:
            source.seek(0)
            while block := source.read(UPLOAD_CHUNK):
                yield block

        source.seek(0, 2)
        size = source.tell()
        return self.session.request(
            "PUT",
            repository,
            "",
            url=_join_query(url, digest=digest),
            content=chunks,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            push=True,
        )
