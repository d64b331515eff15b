"""An image's filesystem as its layers build it up, keeping only the files asked for: layers are read as
tar streams one at a time, in order, with OCI whiteouts applied (a file deleted above is gone)."""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, Literal

from pipeline.errors import PipelineError
from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import Repository

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class SbomError(PipelineError):
    """An image's layers could not be read for an SBOM (an index, a compression we cannot read, a broken tar)."""


@dataclass(frozen=True)
class Layer:
    """A layer blob as the manifest describes it: its media type, digest and (compressed) bytes."""

    media_type: str
    digest: str
    stream: IO[bytes]


def tar_mode(layer: Layer) -> Literal["r|gz", "r|"]:
    """The tarfile stream mode for a layer's media type (OCI and Docker names, distributable or not)."""
    media_type = layer.media_type
    if media_type.endswith(("+gzip", ".tar.gzip")):
        return "r|gz"
    if media_type.endswith(("v1.tar", ".tar", "rootfs.diff.tar")):
        return "r|"
    if media_type.endswith("+zstd"):
        raise SbomError(
            f"layer {layer.digest} is {media_type}: zstd layers cannot be read for an SBOM yet "
            "(Python 3.11 has no zstd); build with gzip layers (BuildKit's default)"
        )
    raise SbomError(f"layer {layer.digest} has media type {media_type!r}, not a tar layer an SBOM can read")


def relative(name: str) -> str:
    """A tar member's path as the image sees it, without a leading / or ./ ('' for the root)."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def ancestors(path: str) -> Iterator[str]:
    while "/" in path:
        path = path.rpartition("/")[0]
        yield path


@dataclass(frozen=True)
class LayerChanges:
    """What one layer does to the wanted files: the files it adds, the lower paths it replaces or deletes,
    and the lower directories whose contents it hides."""

    added: dict[str, bytes]
    gone: frozenset[str]
    hidden: frozenset[str]


def layer_changes(layer: Layer, wanted: Callable[[str], bool]) -> LayerChanges:
    """Read one layer's tar stream: the wanted files it holds and what it hides of the layers below."""
    mode = tar_mode(layer)
    # Whiteouts hide lower layers only, so this layer's own files are gathered apart and added last.
    added: dict[str, bytes] = {}
    gone: set[str] = set()  # paths of lower layers this layer replaces or deletes
    hidden: set[str] = set()  # directories whose lower contents this layer hides
    try:
        with tarfile.open(fileobj=layer.stream, mode=mode) as tar:
            for member in tar:
                path = relative(member.name)
                if not path:
                    continue
                parent, _, base = path.rpartition("/")
                if base == OPAQUE:
                    hidden.add(parent)
                    continue
                if base.startswith(WHITEOUT):
                    if not base.startswith(WHITEOUT + WHITEOUT):  # .wh..wh.* other than .opq: aufs's own
                        target = posixpath.join(parent, base.removeprefix(WHITEOUT))
                        gone.add(target)
                        hidden.add(target)
                    continue
                gone.add(path)
                if not member.isdir():
                    hidden.add(path)  # a file or link where a lower directory was hides its contents
                if member.isfile() and wanted(path):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        added[path] = extracted.read()
                elif member.islnk() and wanted(path) and relative(member.linkname) in added:
                    added[path] = added[relative(member.linkname)]
    except (tarfile.TarError, OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise SbomError(f"layer {layer.digest} ({layer.media_type}) is not a readable tar: {exc}") from None
    return LayerChanges(added, frozenset(gone), frozenset(hidden))


def apply_changes(files: dict[str, bytes], changes: LayerChanges) -> dict[str, bytes]:
    """The files below after one more layer on top."""
    kept = {
        path: data
        for path, data in files.items()
        if path not in changes.gone and not any(directory in changes.hidden for directory in ancestors(path))
    }
    kept.update(changes.added)
    return kept


def image_files(layers: Iterable[Layer], wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The regular files `wanted` accepts, as the image's filesystem has them after every layer (lowest
    first): a file, directory or link an upper layer puts at a path replaces what lower layers had there
    (a directory's lower contents merge unless an opaque whiteout hides them), and a `.wh.<name>` entry
    deletes `<name>` from the layers below. A hard link gets its bytes when its target is a wanted file
    of the same layer."""
    files: dict[str, bytes] = {}
    for layer in layers:
        files = apply_changes(files, layer_changes(layer, wanted))
    return files


class LayerCache:
    """Layers already read, by digest: the images of a run often share their base's layers, and what a
    layer holds is a function of its digest, so each is downloaded and read once. Threads that want a layer
    another is reading wait for that read instead of downloading it again. `key` names the set of wanted
    files (the readers), which the changes depend on too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, str, object], Future[LayerChanges]] = {}

    def changes(self, digest: str, media_type: str, key: object, read: Callable[[], LayerChanges]) -> LayerChanges:
        entry = (digest, media_type, key)
        with self._lock:
            pending = self._reads.get(entry)
            if pending is None:
                mine: Future[LayerChanges] = Future()
                self._reads[entry] = mine
        if pending is not None:
            return pending.result()
        try:
            mine.set_result(read())
        except BaseException as exc:
            with self._lock:
                del self._reads[entry]  # a failed read is not kept: the next image tries again
            mine.set_exception(exc)
            raise
        return mine.result()


def registry_files(
    registry: RegistryClient,
    repository: Repository,
    digest: str,
    wanted: Callable[[str], bool],
    cache: LayerCache | None = None,
    key: object = None,
) -> dict[str, bytes]:
    """`image_files` of the image manifest `digest` in `repository`: each layer downloaded (and its digest
    checked) into a temporary file, read, and dropped; with `cache`, only the layers it has not read yet."""
    manifest = registry.manifest_by_digest(repository, digest)
    if manifest.is_index:
        raise SbomError(
            f"{repository}@{digest} is an image index: make an SBOM of each platform's image manifest instead"
        )
    files: dict[str, bytes] = {}
    for descriptor in manifest.json().get("layers") or []:
        layer_digest, media_type = str(descriptor.get("digest", "")), str(descriptor.get("mediaType", ""))

        def read(layer_digest: str = layer_digest, media_type: str = media_type) -> LayerChanges:
            with tempfile.TemporaryFile(prefix="pipeline-sbom-") as spool:
                registry.download_blob(repository, layer_digest, spool)
                spool.seek(0)
                return layer_changes(Layer(media_type, layer_digest, spool), wanted)

        changes = read() if cache is None else cache.changes(layer_digest, media_type, key, read)
        files = apply_changes(files, changes)
    return files
