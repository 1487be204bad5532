"""The pretrained networks kbuilder offers as backbones: the ``keras.applications`` families.

One record per family, the one home for what the palette, the start page, the input
adapters and the generated code need to know about it. Parameter counts are Keras's own
(``count_params()`` with ``include_top=True``, checked by a test against Keras); the top-1
accuracies are those of Keras's documentation (the table of keras.io/api/applications, and
the MobileNetV3 page for the two MobileNetV3 models).

On the canvas a backbone is one layer node of class ``applications.<Name>``
(``node_class``): ``include_top=False``, a ``pooling`` choice and ``weights`` ("imagenet",
``None`` or a weights file). Its output shape and parameter counts come from this table
(``output_shape``, ``notop_params``), not from building the network: building even
symbolically takes 1-10 s per family, too slow for an edit. The network itself is built
by ``kbuilder.graph.backbone_build`` (keras imported there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# How a family expects its pixels, as ``keras.applications.<family>.preprocess_input`` does:
# "included": the network rescales raw 0-255 pixels itself (include_preprocessing=True);
# "tf": scaled to [-1, 1]; "torch": scaled to [0, 1], then ImageNet's mean and standard
# deviation per channel; "caffe": RGB turned to BGR, then ImageNet's channel means
# subtracted (no scaling).
Preprocessing = Literal["included", "tf", "torch", "caffe"]

# ImageNet's channel statistics as ``keras.applications.imagenet_utils`` uses them.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)  # "torch": of pixels scaled to [0, 1]
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # "caffe": of 0-255 pixels, in BGR order


@dataclass(frozen=True)
class Backbone:
    """One ``keras.applications`` family."""

    name: str  # the keras.applications attribute, e.g. "MobileNetV3Small"
    input_size: int  # the height and width its ImageNet weights were trained at
    min_size: int  # the smallest height/width the network accepts
    parameters: int  # with its ImageNet classifier on top (include_top=True)
    top1: float  # ImageNet top-1 accuracy, percent
    preprocessing: Preprocessing
    keras_name: str = ""  # the name keras.applications gives the model it builds
    channels: int = 0  # of its last feature map (include_top=False)
    notop_params: int = 0  # all weights with include_top=False (count_params())
    notop_trainable: int = 0  # of those, trainable (not BatchNormalization statistics)
    reduction: str = "halve5"  # how it shrinks height and width, see ``_REDUCTIONS``

    @property
    def node_class(self) -> str:
        """The class name of its node on the canvas."""
        return NODE_PREFIX + self.name

    @property
    def size_mb(self) -> float:
        """The size of its float32 weights in MB (MiB), as Keras's table gives it."""
        return self.parameters * 4 / 2**20

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    def summary(self) -> str:
        """One line for the palette and the start page."""
        return (f"{self.parameters / 1e6:.1f}M parameters, {self.size_mb:.0f} MB, "
                f"ImageNet top-1 {self.top1:.1f}%, input {self.input_size}×{self.input_size}")


NODE_PREFIX = "applications."

BACKBONES: tuple[Backbone, ...] = (
    Backbone("MobileNetV3Small", 224, 32, 2_554_968, 68.1, "included",
             "MobileNetV3Small", 576, 939_120, 927_008),
    Backbone("MobileNetV3Large", 224, 32, 5_507_432, 75.6, "included",
             "MobileNetV3Large", 960, 2_996_352, 2_971_952),
    Backbone("EfficientNetV2B0", 224, 32, 7_200_312, 78.7, "included",
             "efficientnetv2-b0", 1280, 5_919_312, 5_858_704),
    Backbone("EfficientNetV2B1", 240, 32, 8_212_124, 79.8, "included",
             "efficientnetv2-b1", 1280, 6_931_124, 6_860_052),
    Backbone("EfficientNetV2B2", 260, 32, 10_178_374, 80.5, "included",
             "efficientnetv2-b2", 1408, 8_769_374, 8_687_086),
    Backbone("EfficientNetV2B3", 300, 32, 14_467_622, 82.0, "included",
             "efficientnetv2-b3", 1536, 12_930_622, 12_821_406),
    Backbone("ResNet50V2", 224, 32, 25_613_800, 76.0, "tf",
             "resnet50v2", 2048, 23_564_800, 23_519_360),
    Backbone("ResNet50", 224, 32, 25_636_712, 74.9, "caffe",
             "resnet50", 2048, 23_587_712, 23_534_592),
    Backbone("ConvNeXtTiny", 224, 32, 28_589_128, 81.3, "included",
             "convnext_tiny", 768, 27_820_128, 27_820_128, "convnext"),
    Backbone("DenseNet121", 224, 32, 8_062_504, 75.0, "torch",
             "densenet121", 1024, 7_037_504, 6_953_856, "densenet"),
    Backbone("Xception", 299, 71, 22_910_480, 79.0, "tf",
             "xception", 2048, 20_861_480, 20_806_952, "xception"),
    Backbone("InceptionV3", 299, 75, 23_851_784, 77.9, "tf",
             "inception_v3", 2048, 21_802_784, 21_768_352, "inception"),
    Backbone("NASNetMobile", 224, 32, 5_326_716, 74.4, "tf",
             "nasnet_mobile", 1056, 4_269_716, 4_232_978, "nasnet"),
    Backbone("MobileNetV2", 224, 32, 3_538_984, 71.3, "tf",
             "mobilenetv2_1.00_224", 1280, 2_257_984, 2_223_872),
)

_BY_NAME = {b.name.lower(): b for b in BACKBONES}


def backbone(name: str) -> Backbone:
    """The family called ``name`` (any case); KeyError with the choices when unknown."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        names = ", ".join(b.name for b in BACKBONES)
        raise KeyError(f"'{name}' is not a pretrained network kbuilder knows; "
                       f"choose one of {names}.") from None


def is_backbone_class(class_name: str | None) -> bool:
    """Whether a node's class is a pretrained network (``applications.<Name>``)."""
    return bool(class_name) and class_name.startswith(NODE_PREFIX) and (
        class_name[len(NODE_PREFIX):].lower() in _BY_NAME)


def of_class(class_name: str) -> Backbone:
    """The family of a backbone node's class."""
    return backbone(class_name[len(NODE_PREFIX):])


POOLINGS: tuple[str, ...] = ("avg", "max", "none")


def _halve_up(size: int, times: int) -> int:
    for _ in range(times):
        size = -(-size // 2)
    return size


def _valid(size: int, kernel: int = 3, stride: int = 2) -> int:
    return (size - kernel) // stride + 1


def _inception(size: int) -> int:
    size = _valid(size) - 2  # stem: 3x3/2 and 3x3, both valid
    size = _valid(size) - 2  # max pool 3x3/2, then 1x1 and 3x3 valid
    for _ in range(3):  # max pool, mixed3 and mixed8 reductions (3x3/2 valid)
        size = _valid(size)
    return size


# Height (or width) of the last feature map for an input of ``size``, as Keras's layers
# compute it (checked against Keras by tests/graph/test_backbone_node.py).
_REDUCTIONS = {
    "halve5": lambda s: _halve_up(s, 5),  # five stride-2 stages with "same"-like padding
    "densenet": lambda s: _halve_up(s, 2) // 8,  # stem, then three 2x2 average pools
    "convnext": lambda s: s // 4 // 8,  # 4x4/4 stem, three 2x2/2 downsamplings
    "xception": lambda s: _halve_up(_valid(s) - 2, 4),
    "inception": _inception,
    "nasnet": lambda s: _halve_up(_valid(s), 4),
}


def feature_size(family: Backbone, size: int | None) -> int | None:
    return None if size is None else _REDUCTIONS[family.reduction](size)


def input_problem(family: Backbone, shape: tuple[int | None, ...], weights: object) -> str | None:
    """Why an input of ``shape`` (without the batch size) cannot feed ``family``, or None."""
    expected = f"({family.input_size}, {family.input_size}, 3)"
    if len(shape) != 3:
        return (f"{family.name} takes images (height, width, channels), such as {expected}; "
                f"it receives {len(shape)}-dimensional samples {tuple(shape)}.")
    height, width, channels = shape
    if channels is None or (weights == "imagenet" and channels != 3):
        return (f"{family.name} with ImageNet weights takes colour images with 3 channels; "
                f"it receives {channels}. Repeat a grey channel to RGB before it.")
    small = [d for d in (height, width) if d is not None and d < family.min_size]
    if small:
        return (f"{family.name} needs images of at least {family.min_size}×{family.min_size} "
                f"pixels; it receives {height}×{width}. Add a Resizing layer before it "
                f"(it was trained at {family.input_size}×{family.input_size}).")
    return None


def output_shape(family: Backbone, shape: tuple[int | None, ...], pooling: str | None
                 ) -> tuple[int | None, ...]:
    """Its output shape (batch first) for input samples of ``shape``."""
    if pooling in ("avg", "max"):
        return (None, family.channels)
    return (None, feature_size(family, shape[0]), feature_size(family, shape[1]),
            family.channels)


def weights_problem(weights: object) -> str | None:
    """Why a ``weights`` value is not one kbuilder can give Keras, or None."""
    if weights is None or weights == "imagenet":
        return None
    if isinstance(weights, str) and weights.endswith(".h5"):
        return None
    return ("Received an invalid value for `weights`, expected \"imagenet\", none (random "
            "weights) or the path of a weights file ending in .h5 or .weights.h5. "
            f"Received: weights={weights!r}")


def by_keras_name(model_name: str) -> Backbone | None:
    """The family whose keras.applications model is called ``model_name`` by default."""
    for family in BACKBONES:
        if model_name == family.keras_name:
            return family
        if family.name == "MobileNetV2" and model_name.startswith("mobilenetv2_1.00_"):
            return family  # Keras names it after its input size
    return None


# The name of the layer each preprocessing style adds (also how a check sees it is there).
PREPROCESSING_NAMES = {"tf": "preprocess_tf", "torch": "preprocess_torch",
                       "caffe": "preprocess_caffe"}


def preprocessing_layer(style: str, pixel_max: float = 255.0,
                        pixel_min: float = 0.0) -> tuple[str, dict[str, Any]]:
    """``(class_name, params)`` of the one built-in layer that does ``style``'s
    preprocessing (``keras.applications.<family>.preprocess_input``) on pixels of
    ``pixel_min``..``pixel_max`` (taken as 0..255), so raw images go in and every export
    carries it:

        "tf"     Rescaling(1/127.5, offset=-1)                  -> [-1, 1]
        "torch"  Normalization(mean=255·ImageNet mean, variance=(255·std)²)
        "caffe"  a frozen Dense(3) with constant weights: its kernel swaps R and B (RGB ->
                 BGR), its bias subtracts ImageNet's BGR means (Keras has no channel-flip
                 layer; this is exact and has no weights to learn)

    "included" (the network rescales raw pixels itself) needs no layer.
    """
    span = pixel_max - pixel_min
    k = 255.0 / span  # to 0-255 pixels, folded into the layer
    if style == "tf":
        return "Rescaling", {"scale": k / 127.5, "offset": -1.0 - pixel_min * k / 127.5}
    if style == "torch":
        return "Normalization", {
            "mean": [round(pixel_min + m * span, 6) for m in IMAGENET_MEAN_RGB],
            "variance": [round((s * span) ** 2, 6) for s in IMAGENET_STD_RGB]}
    if style == "caffe":
        flip = [[0.0, 0.0, k], [0.0, k, 0.0], [k, 0.0, 0.0]]  # RGB -> BGR (and scale)
        return "Dense", {
            "units": 3, "trainable": False,
            "kernel_initializer": {"class_name": "Constant", "config": {"value": flip}},
            "bias_initializer": {"class_name": "Constant", "config": {
                "value": [-m - k * pixel_min for m in CAFFE_MEAN_BGR]}}}
    raise ValueError(f"No preprocessing layer for the style {style!r}.")


def keras_models_folder() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, else
    ``~/.keras/models`` (``/tmp/.keras/models`` when the home folder is read-only), as
    ``keras.src.backend.config`` decides it, without importing Keras."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        home = os.path.join(base, ".keras")
    return Path(os.path.expanduser(home)) / "models"


@dataclass(frozen=True)
class CachedWeights:
    """A weights file in Keras's cache and the family it is for (None when unknown)."""

    file: str
    size: int  # bytes
    family: str | None


def cached_weights(folder: Path | None = None) -> list[CachedWeights]:
    """The ``.h5`` weights files in Keras's cache, by name."""
    folder = folder or keras_models_folder()
    if not folder.is_dir():
        return []
    found = []
    # Longer names first: "resnet50v2_..." is ResNet50V2's, not ResNet50's.
    families = sorted(BACKBONES, key=lambda b: -len(b.name))
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.name.endswith(".h5")):
            continue
        plain = path.name.lower().replace("_", "").replace("-", "")
        family = next((b.name for b in families if b.name.lower() in plain), None)
        found.append(CachedWeights(path.name, path.stat().st_size, family))
    return found
