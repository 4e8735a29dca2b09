"""ImageRetrieval: a tiny random CLIP over a gallery of generated PNGs; the cache, updates, exclude, top-k."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from vision_models import gallery_dir, tiny_clip_dir  # noqa: F401  (fixtures)

from inkagent.actions import ActionExecutor, ImageRetrieval
from inkagent.actions.image_retrieval import ClipEmbedder, GalleryIndex
from inkagent.errors import ActionError
from inkagent.schema import ToolCall


def _new_png(path: Path, color: tuple[int, int, int]) -> Path:
    from PIL import Image

    Image.new("RGB", (40, 40), color).save(path)
    return path


@pytest.fixture(scope="module")
def embedder(tiny_clip_dir):  # noqa: F811
    return ClipEmbedder(str(tiny_clip_dir), device="cpu")


def index_of(gallery: Path, embedder: ClipEmbedder) -> GalleryIndex:
    return GalleryIndex(gallery, embedder, progress=False)


def test_second_run_embeds_nothing_and_answers_the_same(gallery_dir, embedder):  # noqa: F811
    first = index_of(gallery_dir, embedder)
    report = first.update()
    assert report.embedded == 8 and first.embedded_total == 8
    assert first.cache_file.parent == gallery_dir / ".inkagent-index" and first.cache_file.exists()
    second = index_of(gallery_dir, embedder)  # a new process would start like this
    again = second.update()
    assert again.embedded == 0 and again.unchanged == 8 and second.embedded_total == 0
    assert second.search("ink mountain", 8) == first.search("ink mountain", 8)


def test_only_new_and_changed_files_are_embedded(gallery_dir, embedder):  # noqa: F811
    index_of(gallery_dir, embedder).update()
    (gallery_dir / "sub").mkdir()
    _new_png(gallery_dir / "sub" / "new.png", (9, 9, 9))
    changed = _new_png(gallery_dir / "lantern.png", (200, 200, 0))
    os.utime(changed, ns=(1_000_000_000, 1_000_000_000))  # a new stamp, whatever the clock's resolution
    touched = gallery_dir / "bamboo.png"
    os.utime(touched, ns=(2_000_000_000, 2_000_000_000))  # new stamp, same bytes
    (gallery_dir / "night-moon.png").unlink()
    index = index_of(gallery_dir, embedder)
    report = index.update()
    assert report.added == ["sub/new.png"] and report.changed == ["lantern.png"]
    assert report.removed == ["night-moon.png"] and index.embedded_total == 2
    assert not any(p.endswith("night-moon.png") for p in index.paths) and len(index.paths) == 8
    assert index_of(gallery_dir, embedder).update().embedded == 0  # the touched file's new stamp was saved


def test_changed_file_gets_its_new_embedding(gallery_dir, embedder):  # noqa: F811
    index = index_of(gallery_dir, embedder)
    index.update()
    target = _new_png(gallery_dir / "red-sun.png", (0, 0, 255))
    os.utime(target, ns=(3_000_000_000, 3_000_000_000))
    index.update()
    expected = embedder.embed_images([_open(target)])[0]
    row = index.paths.index(str(target))
    assert index._matrix[row].allclose(expected, atol=1e-5)


def _open(path: Path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def test_scores_are_cosine_similarities_computed_by_clip(gallery_dir, tiny_clip_dir):  # noqa: F811
    import torch
    from transformers import AutoModel, AutoProcessor

    index = GalleryIndex(gallery_dir, str(tiny_clip_dir), progress=False)
    hits = index.search("一幅水墨山水画", top_k=3)
    model, processor = AutoModel.from_pretrained(tiny_clip_dir), AutoProcessor.from_pretrained(tiny_clip_dir)
    paths = sorted(gallery_dir.glob("*.png"))
    with torch.no_grad():
        images = model.get_image_features(**processor(images=[_open(p) for p in paths], return_tensors="pt"))
        text = model.get_text_features(**processor(text=["一幅水墨山水画"], return_tensors="pt"))
    images = torch.nn.functional.normalize(images.pooler_output, dim=-1)
    text = torch.nn.functional.normalize(text.pooler_output, dim=-1)[0]
    scores = (images @ text).tolist()
    ranked = sorted(zip(scores, map(str, paths), strict=True), reverse=True)[:3]
    assert [h.path for h in hits] == [path for _, path in ranked]
    assert [h.score for h in hits] == pytest.approx([score for score, _ in ranked], abs=1e-5)


def test_exclude_by_absolute_or_gallery_relative_path(gallery_dir, embedder):  # noqa: F811
    index = index_of(gallery_dir, embedder)
    everything = index.search("a red sun", top_k=8)
    best, second = everything[0].path, everything[1].path
    assert best not in [h.path for h in index.search("a red sun", top_k=8, exclude=[best])]
    relative = os.path.relpath(second, gallery_dir)
    left = [h.path for h in index.search("a red sun", top_k=8, exclude=[best, relative])]
    assert left == [h.path for h in everything[2:]]
    assert index.search("a red sun", top_k=8, exclude=[h.path for h in everything]) == []


def test_unreadable_file_is_reported_and_skipped(gallery_dir, embedder, caplog):  # noqa: F811
    (gallery_dir / "broken.png").write_bytes(b"not a png at all")
    with caplog.at_level(logging.WARNING):
        report = index_of(gallery_dir, embedder).update()
    assert list(report.failed) == ["broken.png"] and "cannot read" in report.failed["broken.png"]
    assert report.embedded == 8 and "broken.png" in caplog.text


def test_action_through_the_executor(gallery_dir, tiny_clip_dir):  # noqa: F811
    action = ImageRetrieval(gallery_dir, str(tiny_clip_dir), progress=False)
    executor = ActionExecutor([action])
    spec = executor.specs()[0]
    assert spec.name == "ImageRetrieval" and spec.parameters["required"] == ["query"]
    top = action.search("moon", top_k=1)[0].path
    result = executor.run(
        ToolCall(name="ImageRetrieval", arguments={"query": "moon", "top_k": "2", "exclude": [top]})
    )
    assert result.ok, result.error
    listing = json.loads(result.output)
    assert len(listing) == 2 and top not in [item["path"] for item in listing]
    assert listing[0]["score"] >= listing[1]["score"] and result.files == [item["path"] for item in listing]


def test_missing_gallery_and_empty_gallery(tmp_path, embedder):
    with pytest.raises(ActionError, match="not a folder"):
        ImageRetrieval(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    executor = ActionExecutor([ImageRetrieval(index=index_of(tmp_path / "empty", embedder))])
    result = executor.run(ToolCall(name="ImageRetrieval", arguments={"query": "anything"}))
    assert not result.ok and "no (other) images" in result.error


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels (a decompression bomb to whoever decodes it)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_self_symlink_and_a_decompression_bomb_are_skipped_with_a_warning(gallery_dir, embedder, caplog):  # noqa: F811
    (gallery_dir / "loop.png").symlink_to("loop.png")
    (gallery_dir / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    with caplog.at_level(logging.WARNING):
        index = index_of(gallery_dir, embedder)
        report = index.update()
    assert sorted(report.failed) == ["bomb.png", "loop.png"]
    assert "too many pixels" in report.failed["bomb.png"] and "symbolic links" in report.failed["loop.png"]
    assert report.embedded == 8 and "loop.png" in caplog.text and "bomb.png" in caplog.text
    assert len(index.search("a red sun", top_k=3)) == 3
