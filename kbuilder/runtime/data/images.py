"""Image folders: one sub-folder per class, streamed from disk.

Listing a folder reads no image: ``load_images`` lists and stats the files and returns an
``ImageFiles`` record, which behaves as a read-only ``uint8`` array ``(n, height, width,
channels)`` whose images are decoded (and resized) only when indexed. The splits are file
lists (``Dataset.x_train`` etc. are ``ImageFiles``), training reads them batch by batch
(``runtime.data.feed``), so memory does not grow with the number of images.

Decisions a user may ask about:
    * Pixels stay ``uint8`` 0..255 until the model: fitting a template to an image folder
      puts a ``Rescaling(1/255)`` node after the Input, so exports take raw images too.
    * Unreadable images are found while reading, not by decoding every image up front
      (that would read a 50,000-image folder twice, and a header check alone costs ~40 us
      a file here yet misses truncated files): empty files are known from the listing's
      ``stat``; the pre-flight check reads the first training images (``STREAM_SAMPLE``);
      any other bad file stops training at its batch with a ``DataError`` naming it, or,
      with ``DataSettings.skip_bad_images``, is left out of that and every later batch,
      printed to the worker's log at the end of the epoch and listed in the run's result
      message (``ImageFiles.skipped``).
    * With ``DataSettings.cache_images`` resized images are kept in kbuilder's cache folder
      (one file per folder listing, keyed by every file's path, size and modification time
      and by the image size and colour mode), so later epochs and runs skip decoding. The
      cache is read with ``pread``, not mapped, so it does not count as the worker's memory.
"""


from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.settings import IMAGE_EXTENSIONS, DataSettings
from kbuilder.graph.text import plural
from kbuilder.runtime.data.dataset import DataError, Progress, Streamed
from kbuilder.runtime.data.split import Raw
from kbuilder.runtime.devices import cache_dir

# Pillow's format plugin per extension: opening with the right one skips probing them all.
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".gif": "GIF",
            ".webp": "WEBP"}


# ======================================================================== image folders
def load_images(location: str, settings: DataSettings, progress: Progress | None) -> Raw:
    root = Path(location)
    classes = _image_classes(root)
    files = [str(file) for _, paths in classes for file in paths]
    y = np.concatenate([np.full(len(paths), label, np.int32)
                        for label, (_, paths) in enumerate(classes)])
    stats = np.zeros((len(files), 2), np.int64)  # size, mtime_ns
    for i, file in enumerate(files):
        try:
            info = os.stat(file)
        except OSError as exc:
            raise DataError(f"{file} cannot be read: {exc}.", path=file) from exc
        stats[i] = info.st_size, info.st_mtime_ns
        if progress is not None and (i % 1000 == 0 or i == len(files) - 1):
            progress("Listing images", i + 1, len(files))
    height, width = settings.image_size
    channels = 3 if settings.color_mode == "rgb" else 1
    images = ImageFiles(np.asarray(files), stats, (height, width), channels,
                        skip_bad=settings.skip_bad_images)
    for file in images.files[stats[:, 0] == 0]:  # known bad without reading anything
        images.bad_file(str(file), "the file is empty")
    if settings.cache_images:
        images.cache_path = str(cache_file_for(root, images))
    notes = [f"Images resized to {height}x{width} ({settings.color_mode}) as they are read; "
             "pixel values kept as 0..255 (uint8)."]
    if settings.cache_images:
        notes.append(f"Resized images are cached in {images.cache_path}.")
    return Raw(
        images, y, "classification", root.name or str(root),
        class_names=[name for name, _ in classes], num_classes=len(classes), notes=notes,
    )


class ImageFiles(Streamed):
    """Image files read on demand, as a read-only ``uint8`` array ``(n, h, w, channels)``.

    Indexing with an integer, a slice or an array of indices decodes those images (the
    preview, the pre-flight checks and the sample predictions read a few this way);
    ``subset`` selects files without decoding (the splits); ``batch`` is what training
    reads. Subsets share the record of bad files, so a file skipped in one epoch is
    skipped from then on and reported once.

    Args:
        files: the image paths, in label order.
        stats: per file ``(size in bytes, modification time in ns)``.
        image_size: ``(height, width)`` every image is resized to.
        channels: 3 (RGB) or 1 (grayscale).
        skip_bad: leave unreadable files out (``batch``) instead of raising ``DataError``.
    """

    def __init__(self, files: np.ndarray, stats: np.ndarray, image_size: tuple[int, int],
                 channels: int, *, skip_bad: bool = False, records: np.ndarray | None = None,
                 sample_shape: tuple[int, ...] | None = None,
                 bad: dict[str, str] | None = None, cache_path: str | None = None):
        self.files = files
        self.stats = stats
        self.image_size = tuple(image_size)
        self.channels = channels
        self.skip_bad = skip_bad
        # Each file's place in the whole listing: its record in the cache file.
        self.records = np.arange(len(files)) if records is None else records
        self.sample_shape = sample_shape or (*self.image_size, channels)
        self.bad = {} if bad is None else bad  # file -> reason, shared with subsets
        self.cache_path = cache_path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._decode = _image_decoder()

    # ------------------------------------------------------------------ array-like
    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.files), *self.sample_shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self._read(int(key), strict=not self.skip_bad)
        index = np.arange(len(self))[key]
        return self.read(index)

    def subset(self, index: np.ndarray) -> ImageFiles:
        return self._copy(self.files[index], self.stats[index], self.records[index],
                          self.sample_shape)

    def with_sample_shape(self, shape: tuple[int, ...]) -> ImageFiles:
        return self._copy(self.files, self.stats, self.records, tuple(shape))

    def _copy(self, files, stats, records, shape) -> ImageFiles:
        return ImageFiles(files, stats, self.image_size, self.channels,
                          skip_bad=self.skip_bad, records=records, sample_shape=shape,
                          bad=self.bad, cache_path=self.cache_path)

    def fingerprint_bytes(self) -> bytes:
        h = hashlib.sha256()
        h.update(repr((self.image_size, self.channels, self.sample_shape)).encode())
        h.update("\0".join(self.files.tolist()).encode())
        h.update(np.ascontiguousarray(self.stats).tobytes())
        return h.digest()

    # ------------------------------------------------------------------- reading
    def read(self, index: np.ndarray) -> np.ndarray:
        """The images at ``index``; a bad one is black when bad images are skipped."""
        out = np.zeros((len(index), *self.sample_shape), np.uint8)
        for j, i in enumerate(index):
            image = self._read(int(i), strict=not self.skip_bad)
            if image is not None:
                out[j] = image
        return out

    def read_kept(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The images at ``index`` (a bad one black) and which were read: a batch of
        several inputs leaves the same rows out of every input."""
        out = np.zeros((len(index), *self.sample_shape), np.uint8)
        keep = np.ones(len(index), dtype=bool)
        for j, i in enumerate(index):
            image = self._read(int(i), strict=not self.skip_bad)
            if image is None:
                keep[j] = False
            else:
                out[j] = image
        return out, keep

    def batch(self, index: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, Any]:
        """The images at ``index`` and their labels, bad images left out when skipped."""
        images, keep = [], []
        for j, i in enumerate(index):
            image = self._read(int(i), strict=not self.skip_bad)
            if image is not None:
                images.append(image)
                keep.append(j)
        x = (np.stack(images) if images
             else np.zeros((0, *self.sample_shape), np.uint8))
        if y is None:
            return x, None
        return x, y[index[keep]] if len(keep) < len(index) else y[index]

    @property
    def skipped(self) -> list[str]:
        """The files left out as unreadable so far (with skip_bad), sorted."""
        return sorted(self.bad)

    def skipped_note(self) -> str | None:
        if not self.bad:
            return None
        shown = "; ".join(f"{f} ({self.bad[f]})" for f in self.skipped[:10])
        more = f" and {len(self.bad) - 10} more" if len(self.bad) > 10 else ""
        return (f"Skipped {plural(len(self.bad), 'unreadable image')}: {shown}{more}. "
                "Remove or replace them.")

    def bad_file(self, file: str, reason: str) -> None:
        with self._lock:
            self.bad[file] = reason

    def _read(self, i: int, strict: bool) -> np.ndarray | None:
        file = str(self.files[i])
        if file in self.bad:
            if strict:
                raise _bad_image_error(file, self.bad[file])
            return None
        cached = self._from_cache(int(self.records[i]))
        if cached is not None:
            return cached.reshape(self.sample_shape)
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            self.bad_file(file, f"cannot be read: {exc.strerror or exc}")
            return self._read(i, strict)
        try:
            image = self._decode(data, self.image_size, self.channels, Path(file).suffix)
        except Exception as exc:  # each decoder raises its own kinds of errors
            self.bad_file(file, _decode_reason(exc))
            return self._read(i, strict)
        self._to_cache(int(self.records[i]), image)
        return image.reshape(self.sample_shape)

    # --------------------------------------------------------------------- cache
    def _record_bytes(self) -> int:
        return 1 + self.image_size[0] * self.image_size[1] * self.channels

    def _cache_fd(self) -> int | None:
        if self.cache_path is None:
            return None
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    try:
                        Path(self.cache_path).parent.mkdir(parents=True, exist_ok=True)
                        fd = os.open(self.cache_path, os.O_RDWR | os.O_CREAT, 0o600)
                        # Each record: 1 byte "filled" flag, then the pixels.
                        size = (int(self.records.max(initial=0)) + 1) * self._record_bytes()
                        if os.fstat(fd).st_size < size:
                            os.ftruncate(fd, size)
                    except OSError:  # no cache rather than no training
                        self.cache_path = None
                        return None
                    self._fd = fd
        return self._fd

    def _from_cache(self, record: int) -> np.ndarray | None:
        fd = self._cache_fd()
        if fd is None:
            return None
        size = self._record_bytes()
        data = os.pread(fd, size, record * size)
        if len(data) != size or data[0] != 1:
            return None
        return np.frombuffer(data, np.uint8, offset=1)

    def _to_cache(self, record: int, image: np.ndarray) -> None:
        fd = self._cache_fd()
        if fd is None:
            return
        size = self._record_bytes()
        # Pixels first, then the flag: a record read half-written is seen as empty.
        os.pwrite(fd, np.ascontiguousarray(image, np.uint8).tobytes(), record * size + 1)
        os.pwrite(fd, b"\x01", record * size)

    def __del__(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass

    def __getstate__(self) -> dict[str, Any]:  # worker processes open their own file
        state = dict(self.__dict__)
        state.update(_fd=None, _lock=None, _decode=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._decode = _image_decoder()


def image_files_for(folder: Path, image_size: tuple[int, int], channels: int,
                    skip_bad: bool = False) -> ImageFiles:
    """Every image under ``folder`` (sub-folders too, no classes), or the one image file
    ``folder``, to predict on."""
    files = (image_files_in(folder) if folder.is_dir()
             else [folder] if folder.suffix.lower() in IMAGE_EXTENSIONS else [])
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}).",
                        path=str(folder))
    stats = np.array([(f.stat().st_size, f.stat().st_mtime_ns) for f in files], np.int64)
    return ImageFiles(np.asarray([str(f) for f in files]), stats, image_size, channels,
                      skip_bad=skip_bad)


def _bad_image_error(file: str, reason: str) -> DataError:
    return DataError(
        f"{file} is not a readable image ({reason}). Remove or replace the file, or let "
        "kbuilder skip unreadable images (the Data tab's 'Skip unreadable images', "
        "--skip-bad-images).", path=file,
    )


def cache_file_for(root: Path, images: ImageFiles) -> Path:
    """The cache file of resized ``images`` listed under ``root`` (a folder, or a table
    and its column): a new file when a listed image, the size or the colour mode change."""
    key = hashlib.sha256(str(root.resolve()).encode() + images.fingerprint_bytes())
    return cache_dir() / "images" / f"{key.hexdigest()[:32]}.u8"


def image_files_in(folder: Path) -> list[Path]:
    """The image files anywhere under ``folder``, sorted (hidden ones left out)."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        and not p.name.startswith(".")
    )


def _decode_reason(exc: Exception) -> str:
    """The decoder's reason without TensorFlow's op names or Python object addresses."""
    text = str(exc).strip()
    text = text.splitlines()[-1] if text else ""
    text = text.split("}}")[-1]  # TensorFlow: "{{function_node ...}} reason [Op:Decode]"
    text = re.sub(r"\s*\[Op:\w+\]$", "", text)
    text = re.sub(r"\s*<[^>]* at 0x[0-9a-f]+>", "", text)  # Pillow: "<_io.BytesIO at 0x..>"
    return text.strip() or type(exc).__name__


def _image_classes(root: Path) -> list[tuple[str, list[Path]]]:
    """``(class name, image files)`` per sub-folder, sorted; explains what is wrong."""
    if not root.exists():
        raise DataError(f"The image folder {root} does not exist.", path=str(root))
    if not root.is_dir():
        raise DataError(f"{root} is a file; choose a folder with one sub-folder per class.",
                        path=str(root))
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = (f" It holds {plural(len(loose), 'image')} directly; " if loose else " ")
        raise DataError(
            f"{root} has no sub-folders.{hint}Put the images of each class in its own "
            f"sub-folder, e.g. {root.name}/cats/ and {root.name}/dogs/.", path=str(root),
        )
    classes = []
    for folder in folders:
        files = image_files_in(folder)
        if not files:
            raise DataError(
                f"The class folder '{folder.name}' in {root} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)}). Add images or remove the folder.",
                path=str(folder),
            )
        classes.append((folder.name, files))
    if len(classes) < 2:
        raise DataError(
            f"{root} has only one class folder ('{classes[0][0]}'); a classifier needs at "
            "least two. Add a sub-folder of images for each other class.", path=str(root),
        )
    return classes


Decoder = Callable[[bytes, tuple[int, int], int, str], np.ndarray]


def _image_decoder() -> Decoder:
    """A function ``(file bytes, (height, width), channels, suffix) -> uint8 array``.

    Pillow when installed (fast, many formats), else TensorFlow's decoders (PNG, JPEG,
    GIF, BMP, WebP), which kbuilder installs anyway.
    """
    try:
        from PIL import Image
    except ImportError:
        return _tf_decode

    def decode(data: bytes, size: tuple[int, int], channels: int, suffix: str) -> np.ndarray:
        fmt = _FORMATS.get(suffix.lower())
        # The extension's format first (skips probing every plugin), then any format: a
        # .jpg that is really a PNG still reads.
        with Image.open(io.BytesIO(data), formats=[fmt] if fmt else None) as image:
            mode = "RGB" if channels == 3 else "L"
            if image.mode != mode:
                image = image.convert(mode)
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
        return array.reshape(size[0], size[1], channels)

    def decode_any(data: bytes, size: tuple[int, int], channels: int,
                   suffix: str) -> np.ndarray:
        try:
            return decode(data, size, channels, suffix)
        except Exception:
            return decode(data, size, channels, "")

    return decode_any


def _tf_decode(data: bytes, size: tuple[int, int], channels: int,
               suffix: str = "") -> np.ndarray:
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    return np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8)
