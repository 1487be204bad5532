"""The pretrained networks kbuilder offers as backbones: the ``keras.applications`` families.

One record per family, the one home for what the palette, the start page, the input
adapters and the generated code need to know about it. Parameter counts are Keras's own
(``count_params()`` with ``include_top=True``, checked by a test against Keras); the top-1
accuracies are those of Keras's documentation (the table of keras.io/api/applications, and
the MobileNetV3 page for the two MobileNetV3 models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


BACKBONES: tuple[Backbone, ...] = (
    Backbone("MobileNetV3Small", 224, 32, 2_554_968, 68.1, "included"),
    Backbone("MobileNetV3Large", 224, 32, 5_507_432, 75.6, "included"),
    Backbone("EfficientNetV2B0", 224, 32, 7_200_312, 78.7, "included"),
    Backbone("EfficientNetV2B1", 240, 32, 8_212_124, 79.8, "included"),
    Backbone("EfficientNetV2B2", 260, 32, 10_178_374, 80.5, "included"),
    Backbone("EfficientNetV2B3", 300, 32, 14_467_622, 82.0, "included"),
    Backbone("ResNet50V2", 224, 32, 25_613_800, 76.0, "tf"),
    Backbone("ResNet50", 224, 32, 25_636_712, 74.9, "caffe"),
    Backbone("ConvNeXtTiny", 224, 32, 28_589_128, 81.3, "included"),
    Backbone("DenseNet121", 224, 32, 8_062_504, 75.0, "torch"),
    Backbone("Xception", 299, 71, 22_910_480, 79.0, "tf"),
    Backbone("InceptionV3", 299, 75, 23_851_784, 77.9, "tf"),
    Backbone("NASNetMobile", 224, 32, 5_326_716, 74.4, "tf"),
    Backbone("MobileNetV2", 224, 32, 3_538_984, 71.3, "tf"),
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
