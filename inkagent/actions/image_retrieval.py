"""`ImageRetrieval`: text -> images from a local gallery, with a CLIP index cached next to the gallery.

`GalleryIndex` embeds every image under a folder with a CLIP-style model (`CLIPModel`, `ChineseCLIPModel`,
SigLIP...: anything `AutoModel` loads with `get_image_features` / `get_text_features`) and answers text
queries with the top-k images and their cosine similarity.

The embeddings are cached in `<gallery>/.inkagent-index/<model>.safetensors` (the manifest of paths,
sizes, modification times and content hashes in the file's metadata), so a second run embeds nothing,
and an update embeds only new or changed files: a file whose size and modification time are unchanged
is trusted; one whose stamp changed but whose content hash did not is not re-embedded either. Files
that disappeared leave the index. Images that cannot be read are reported (logged and listed in the
update's `failed`) and left out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ActionError, LLMError
from ..llms.progress import quiet_weight_loading
from ..schema import ActionResult
from .base import Action

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
INDEX_DIR = ".inkagent-index"
INDEX_VERSION = 1


@dataclass(frozen=True)
class Hit:
    """One retrieved image: its absolute path and its cosine similarity to the query."""

    path: str
    score: float


@dataclass
class IndexUpdate:
    """What one `GalleryIndex.update()` did (paths relative to the gallery)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # path -> why it could not be embedded

    @property
    def embedded(self) -> int:
        return len(self.added) + len(self.changed)


@dataclass
class _Entry:
    size: int
    mtime_ns: int
    sha256: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _features(output: Any) -> Any:
    """The embedding tensor: transformers 5 returns an output object (`.pooler_output`), 4.x a tensor."""
    import torch

    return output if torch.is_tensor(output) else output.pooler_output


class ClipEmbedder:
    """A CLIP-style model that embeds images and texts into one space (L2-normalised vectors)."""

    def __init__(
        self, model: str = DEFAULT_CLIP, *, device: str | None = None, trust_remote_code: bool = False
    ):
        import torch
        from transformers import AutoModel, AutoProcessor

        from ..llms.hf import resolve_model_source
        from ..llms.hub import local_files_only

        source = resolve_model_source(model)
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if local_files_only(source):
            kwargs["local_files_only"] = True
        try:
            with quiet_weight_loading():  # no "Loading weights" bar on every start
                self.processor = AutoProcessor.from_pretrained(source, **kwargs)
                self.model = AutoModel.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise LLMError(f"cannot load the image-text model {model!r}: {exc}") from exc
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")):
            raise LLMError(f"{model!r} is not a CLIP-style model (no get_image_features / get_text_features)")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = self.model.to(self.device).eval()
        self.name = model

    def embed_images(self, images: Sequence[Any]) -> Any:
        """Embeddings of PIL images, one row each."""
        import torch

        batch = self.processor(images=list(images), return_tensors="pt").to(self.device)
        with torch.no_grad():
            features = _features(self.model.get_image_features(pixel_values=batch["pixel_values"]))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()

    def embed_texts(self, texts: Sequence[str]) -> Any:
        """Embeddings of texts, one row each (cut to the model's maximum length)."""
        import torch

        batch = self.processor(text=list(texts), padding=True, truncation=True, return_tensors="pt").to(
            self.device
        )
        with torch.no_grad():
            features = _features(self.model.get_text_features(**batch))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()


class GalleryIndex:
    """A CLIP index over the images of a folder (see the module docstring).

    Args:
        gallery: the folder of images (searched recursively; hidden folders are skipped).
        model: a CLIP-style model (hub id or local directory), or a loaded `ClipEmbedder`.
        cache_dir: where the index file goes (default `<gallery>/.inkagent-index`).
        batch_size: images embedded per model call.
        progress: show a progress bar while embedding.
    """

    def __init__(
        self,
        gallery: str | os.PathLike[str],
        model: str | ClipEmbedder = DEFAULT_CLIP,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str | None = None,
        batch_size: int = 16,
        progress: bool = True,
    ) -> None:
        self.gallery = Path(gallery).expanduser().resolve()
        if not self.gallery.is_dir():
            raise ActionError(f"the image gallery {self.gallery} is not a folder")
        self._embedder = model if isinstance(model, ClipEmbedder) else None
        self.model_name = model.name if isinstance(model, ClipEmbedder) else model
        self.device = device
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else self.gallery / INDEX_DIR
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.embedded_total = 0  # images embedded by this object, over all updates
        self._paths: list[str] = []  # relative to the gallery, row order of _matrix
        self._entries: dict[str, _Entry] = {}
        self._matrix: Any = None
        self._loaded = False
        self._lock = threading.RLock()

    # -- the model and the cache file ----------------------------------------------------------
    @property
    def embedder(self) -> ClipEmbedder:
        if self._embedder is None:
            self._embedder = ClipEmbedder(self.model_name, device=self.device)
        return self._embedder

    @property
    def cache_file(self) -> Path:
        name = str(self.model_name)
        key = str(Path(name).resolve()) if os.path.isdir(name) else name
        slug = re.sub(r"[^\w.-]+", "-", key).strip("-")[-60:]
        return self.cache_dir / f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:8]}.safetensors"

    def _read_cache(self) -> tuple[dict[str, _Entry], dict[str, Any]]:
        from safetensors import safe_open

        path = self.cache_file
        if not path.exists():
            return {}, {}
        try:
            with safe_open(str(path), framework="pt") as handle:
                manifest = json.loads(handle.metadata()["inkagent_index"])
                matrix = handle.get_tensor("embeddings")
        except Exception as exc:  # a corrupt or foreign file: rebuild rather than fail
            logger.warning("ignoring the unreadable index %s (%s); re-embedding the gallery", path, exc)
            return {}, {}
        if manifest.get("version") != INDEX_VERSION or len(manifest.get("files", [])) != matrix.shape[0]:
            logger.warning("ignoring the index %s: written by another version", path)
            return {}, {}
        entries, rows = {}, {}
        for row, item in enumerate(manifest["files"]):
            entries[item["path"]] = _Entry(item["size"], item["mtime_ns"], item["sha256"])
            rows[item["path"]] = matrix[row]
        return entries, rows

    def _write_cache(self) -> None:
        import torch
        from safetensors.torch import save_file

        manifest = {
            "version": INDEX_VERSION,
            "model": str(self.model_name),
            "files": [{"path": p, **vars(self._entries[p])} for p in self._paths],
        }
        matrix = self._matrix if self._matrix is not None else torch.zeros((0, 0))
        target = self.cache_file
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            save_file(
                {"embeddings": matrix.contiguous()},
                str(partial),
                metadata={"inkagent_index": json.dumps(manifest)},
            )
            os.replace(partial, target)  # atomic: a crash never leaves half an index
        except OSError as exc:
            logger.warning("cannot write the index cache %s (%s); it stays in memory only", target, exc)

    # -- scanning and updating -----------------------------------------------------------------
    def scan(self) -> list[str]:
        """Image files under the gallery, relative to it, sorted."""
        from ..llms.vlm import IMAGE_SUFFIXES

        found = []
        for root, dirs, files in os.walk(self.gallery):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    found.append(Path(root, name).relative_to(self.gallery).as_posix())
        return sorted(found)

    def update(self) -> IndexUpdate:
        """Bring the index up to date with the folder; embed only new and changed images."""
        import torch

        with self._lock:
            cached, rows = self._read_cache() if not self._loaded else (self._entries, self._rows())
            report = IndexUpdate()
            entries: dict[str, _Entry] = {}
            vectors: dict[str, Any] = {}
            todo: list[tuple[str, _Entry]] = []
            dirty = False
            present = self.scan()
            for rel in present:
                path = self.gallery / rel
                try:
                    stat = path.stat()
                    old = cached.get(rel)
                    if old is not None and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                        entries[rel], vectors[rel] = old, rows[rel]
                        report.unchanged += 1
                        continue
                    entry = _Entry(stat.st_size, stat.st_mtime_ns, _sha256(path))
                except OSError as exc:  # a symlink to itself (ELOOP), a dangling link, no permission
                    reason = f"cannot read {path}: {exc.strerror or exc}"
                    logger.warning("skipping %s: %s", rel, reason)
                    report.failed[rel] = reason
                    continue
                if old is not None and old.sha256 == entry.sha256:  # touched, not changed
                    entries[rel], vectors[rel] = entry, rows[rel]
                    report.unchanged += 1
                    dirty = True
                    continue
                (report.changed if old is not None else report.added).append(rel)
                todo.append((rel, entry))
            report.removed = sorted(set(cached) - set(present))
            for rel, entry, vector in self._embed(todo, report):
                entries[rel], vectors[rel] = entry, vector
            self._paths = sorted(vectors)
            self._entries = entries
            self._matrix = torch.stack([vectors[p] for p in self._paths]) if self._paths else None
            self.embedded_total += report.embedded
            if report.embedded or report.removed or dirty or not self.cache_file.exists():
                self._write_cache()
            self._loaded = True
            logger.info(
                "gallery %s: %d images (%d added, %d changed, %d removed, %d failed)",
                self.gallery,
                len(self._paths),
                len(report.added),
                len(report.changed),
                len(report.removed),
                len(report.failed),
            )
            return report

    def _rows(self) -> dict[str, Any]:
        return {p: self._matrix[i] for i, p in enumerate(self._paths)}

    def _embed(
        self, todo: list[tuple[str, _Entry]], report: IndexUpdate
    ) -> Iterable[tuple[str, _Entry, Any]]:
        from tqdm.auto import tqdm

        from ..llms.vlm import ImageError, load_image

        if not todo:
            return
        bar = tqdm(
            total=len(todo), desc=f"indexing {self.gallery.name}", unit="img", disable=not self.progress
        )
        try:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                readable, pictures = [], []
                for rel, entry in chunk:
                    try:
                        pictures.append(load_image(self.gallery / rel))
                        readable.append((rel, entry))
                    except ImageError as exc:
                        logger.warning("skipping %s: %s", rel, exc)
                        report.failed[rel] = str(exc)
                        for bucket in (report.added, report.changed):
                            if rel in bucket:
                                bucket.remove(rel)
                if pictures:
                    matrix = self.embedder.embed_images(pictures)
                    for (rel, entry), vector in zip(readable, matrix, strict=True):
                        yield rel, entry, vector
                bar.update(len(chunk))
        finally:
            bar.close()

    # -- queries --------------------------------------------------------------------------------
    @property
    def paths(self) -> list[str]:
        """Absolute paths of the indexed images."""
        with self._lock:
            if not self._loaded:
                self.update()
            return [str(self.gallery / p) for p in self._paths]

    def __len__(self) -> int:
        return len(self.paths)

    def _excluded_rows(self, exclude: Iterable[str | os.PathLike[str]]) -> set[int]:
        wanted = set()
        for item in exclude:
            path = Path(item).expanduser()
            candidates = [path] if path.is_absolute() else [self.gallery / path, Path.cwd() / path]
            wanted.update(str(c.resolve()) for c in candidates)
        return {i for i, rel in enumerate(self._paths) if str(self.gallery / rel) in wanted}

    def search(self, query: str, top_k: int = 4, exclude: Iterable[str | os.PathLike[str]] = ()) -> list[Hit]:
        """The `top_k` images closest to `query`, best first, leaving out `exclude` (paths)."""
        with self._lock:
            if not self._loaded:
                self.update()
            if self._matrix is None:
                return []
            scores = self._matrix @ self.embedder.embed_texts([query])[0]
            for row in self._excluded_rows(exclude):
                scores[row] = float("-inf")
            allowed = int((scores > float("-inf")).sum())
            k = max(0, min(top_k, allowed))
            if k == 0:
                return []
            values, rows = scores.topk(k)
            return [
                Hit(str(self.gallery / self._paths[r]), float(v))
                for v, r in zip(values.tolist(), rows.tolist(), strict=True)
            ]


class ImageRetrieval(Action):
    """Find images in the local gallery that match a text description; returns their paths and similarity scores."""

    def __init__(
        self,
        gallery: str | os.PathLike[str] | None = None,
        model: str = DEFAULT_CLIP,
        *,
        top_k: int = 4,
        cache_dir: str | None = None,
        device: str | None = None,
        progress: bool = True,
        index: GalleryIndex | None = None,
    ) -> None:
        """
        Args:
            gallery: folder of images to search.
            model: CLIP-style model (hub id or local directory), loaded on first use.
            top_k: how many images a call returns unless it says otherwise.
            cache_dir: where the embeddings are cached (default: `<gallery>/.inkagent-index`).
            device: where the model runs (default: CUDA when available).
            progress: show a progress bar while indexing.
            index: an existing `GalleryIndex` to use instead of `gallery` / `model`.
        """
        if index is None:
            if gallery is None:
                raise ActionError("ImageRetrieval needs a gallery folder (gallery=...) or an index")
            index = GalleryIndex(gallery, model, cache_dir=cache_dir, device=device, progress=progress)
        self.index = index
        self.top_k = top_k

    def search(self, query: str, top_k: int | None = None, exclude: Iterable[str] = ()) -> list[Hit]:
        """Python API: the hits as `Hit` objects."""
        return self.index.search(query, top_k or self.top_k, exclude)

    def run(self, query: str, top_k: int | None = None, exclude: list[str] | None = None) -> ActionResult:
        """Search the gallery for images matching a description.

        Args:
            query: what the image should show
            top_k: how many images to return (default 4)
            exclude: image paths not to return (e.g. images already used)
        """
        hits = self.search(query, top_k, exclude or ())
        if not hits:
            raise ActionError(f"no image to return: the gallery {self.index.gallery} has no (other) images")
        listing = [{"path": hit.path, "score": round(hit.score, 4)} for hit in hits]
        return ActionResult(
            name=self.name, output=json.dumps(listing, ensure_ascii=False), files=[h.path for h in hits]
        )
