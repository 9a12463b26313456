"""A folder of captioned images -> seeded, resumable training batches.

Owns: finding images and their captions (HF imagefolder `metadata.jsonl` or `<stem>.txt` sidecars), the
resize / crop / flip transforms, caption dropout, the SDXL size conditioning inputs (original size,
crop top-left, target size) and the order samples are drawn in. Knows nothing about models or devices.

Every random choice is a pure function of (seed, data epoch, image index): the data order comes from
`TrainingOrder`, a finite sampler over the whole run, and augmentation uses a `random.Random` seeded per
sample. Nothing touches the global RNGs, so a resumed run sees exactly the samples an uninterrupted run
would, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ...exceptions import MediaError, UsageError

__all__ = ["IMAGE_SUFFIXES", "CaptionedImage", "find_captioned_images", "CaptionedImageFolder", "TrainingOrder", "collate"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SampleKey = tuple[int, int]  # (data epoch, image index)


@dataclass(frozen=True)
class CaptionedImage:
    path: Path
    caption: str


def _read_metadata(data_dir: Path) -> list[CaptionedImage]:
    """Rows of metadata.jsonl as HF `imagefolder` writes them: {"file_name": ..., "text": ...} per line."""
    items = []
    meta = data_dir / "metadata.jsonl"
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise MediaError(f"{meta} line {number} is not JSON: {err.msg}", received=line) from err
        if not isinstance(row, dict) or not isinstance(row.get("file_name"), str) or not isinstance(row.get("text"), str):
            raise MediaError(
                f"{meta} line {number} needs a string 'file_name' and a string 'text'",
                received=row,
                fix='Write one {"file_name": "a.png", "text": "a caption"} object per line',
            )
        path = (data_dir / row["file_name"]).resolve()
        if data_dir.resolve() not in path.parents:
            raise UsageError(f"{meta} line {number} points outside the data folder", received=row["file_name"])
        if not path.is_file():
            raise MediaError(f"{meta} line {number} names a missing image", received=row["file_name"])
        items.append(CaptionedImage(path, row["text"].strip()))
    return items


def _read_sidecars(data_dir: Path) -> list[CaptionedImage]:
    images = sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    missing = [p.name for p in images if not p.with_suffix(".txt").is_file()]
    if missing:
        raise UsageError(
            f"{len(missing)} image(s) in {data_dir} have no caption",
            received=missing[:5],
            fix="Add <stem>.txt next to each image, or a metadata.jsonl with {'file_name', 'text'} rows",
        )
    return [CaptionedImage(p, p.with_suffix(".txt").read_text(encoding="utf-8").strip()) for p in images]


def _check_readable(path: Path) -> None:
    try:
        with Image.open(path) as image:
            image.size  # noqa: B018  (opening reads the header; a non-image fails here)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise MediaError(f"Cannot read training image {path.name}: {err}", received=str(path),
                         fix="Remove or re-save the file") from err


def find_captioned_images(data_dir: Path) -> list[CaptionedImage]:
    """All (image, caption) pairs of a training folder, checked: every image opens and has a caption.

    Raises:
        UsageError: the folder is missing or empty, or images lack captions.
        MediaError: metadata.jsonl is malformed, or an image cannot be read (the file is named).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UsageError("The training data folder does not exist", received=str(data_dir),
                         fix="Pass a folder of images with captions as data_dir")
    items = _read_metadata(data_dir) if (data_dir / "metadata.jsonl").is_file() else _read_sidecars(data_dir)
    if not items:
        raise UsageError(f"No images found in {data_dir}", received=str(data_dir),
                         fix=f"Put images ({', '.join(IMAGE_SUFFIXES)}) with captions in the folder")
    for item in items:
        _check_readable(item.path)
    return items


def _resize_crop_flip(image: Image.Image, resolution: int, *, center_crop: bool, flip: bool, rng: random.Random):
    """Resize the short side to `resolution`, flip, crop a square. Returns (image, crop_top_left).

    Re-implements torchvision's Resize(int, BILINEAR) / CenterCrop / RandomCrop / RandomHorizontalFlip
    as diffusers' train_text_to_image_lora_sdxl.py applies them (flip before crop), because torchvision
    cannot be installed next to transformers here.
    """
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new_long = int(resolution * long / short)  # torchvision truncates the long side
    size = (resolution, new_long) if width <= height else (new_long, resolution)
    image = image.resize(size, Image.Resampling.BILINEAR)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    width, height = image.size
    if center_crop:
        top, left = int(round((height - resolution) / 2.0)), int(round((width - resolution) / 2.0))
    else:
        top, left = rng.randint(0, height - resolution), rng.randint(0, width - resolution)
    return image.crop((left, top, left + resolution, top + resolution)), (top, left)


class CaptionedImageFolder(torch.utils.data.Dataset):
    """Training samples keyed by (data epoch, image index); see `TrainingOrder`.

    Each sample: `pixel_values` (3, R, R) in [-1, 1], `caption` (empty with probability `caption_dropout`),
    `time_ids` (6,) = original (h, w), crop top-left (top, left), target (R, R) for SDXL conditioning.
    """

    def __init__(self, items: list[CaptionedImage], *, resolution: int, center_crop: bool, random_flip: bool,
                 caption_dropout: float, seed: int) -> None:
        self.items = items
        self.resolution = resolution
        self.center_crop = center_crop
        self.random_flip = random_flip
        self.caption_dropout = caption_dropout
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: SampleKey) -> dict:
        epoch, index = key
        item = self.items[index]
        rng = random.Random(f"mmkit-lora/{self.seed}/{epoch}/{index}")  # str seeds hash stably (sha512)
        try:
            with Image.open(item.path) as raw:
                image = raw.convert("RGB")
        except (OSError, Image.DecompressionBombError) as err:
            raise MediaError(f"Cannot decode training image {item.path.name}: {err}", received=str(item.path)) from err
        original = (image.height, image.width)
        flip = self.random_flip and rng.random() < 0.5
        image, crop_top_left = _resize_crop_flip(image, self.resolution, center_crop=self.center_crop, flip=flip, rng=rng)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1).contiguous()
        caption = "" if rng.random() < self.caption_dropout else item.caption
        time_ids = torch.tensor([*original, *crop_top_left, self.resolution, self.resolution], dtype=torch.float32)
        return {"pixel_values": pixels, "caption": caption, "time_ids": time_ids}


class TrainingOrder(torch.utils.data.Sampler):
    """The whole run's sample order: `total` keys (epoch, index), a fresh seeded permutation per data epoch.

    One DataLoader pass is the whole run, so resuming at step N is `skip_first_batches(N * accumulation)`
    and gradient accumulation never straddles a DataLoader end.
    """

    def __init__(self, num_images: int, *, total: int, seed: int) -> None:
        self.num_images = num_images
        self.total = total
        self.seed = seed

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[SampleKey]:
        produced, epoch = 0, 0
        while produced < self.total:
            order = torch.randperm(self.num_images, generator=torch.Generator().manual_seed(self.seed + epoch))
            for index in order.tolist()[: self.total - produced]:
                yield (epoch, index)
            produced += min(self.num_images, self.total - produced)
            epoch += 1


def collate(samples: list[dict]) -> dict:
    return {
        "pixel_values": torch.stack([s["pixel_values"] for s in samples]),
        "captions": [s["caption"] for s in samples],
        "time_ids": torch.stack([s["time_ids"] for s in samples]),
    }
