"""What an explanation or a layer's output is, stated with it (issue 17's honest numbers).

Plain records, no numpy in their fields: they travel in protocol messages (``to_dict``)
and are written next to the arrays as ``explanation.json`` / ``activations.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The methods `kbuilder explain --method` takes, and the words that say what each is.
METHODS = ("gradcam", "integrated-gradients", "saliency", "permutation")
DESCRIPTIONS = {
    "gradcam": ("Grad-CAM: the chosen convolution's feature maps weighted by the "
                "gradient of the class score at each position, summed over the channels, "
                "negative parts set to zero, and resized to the input (Selvaraju et al. "
                "2017, in the element-wise form of HiResCAM, Draelos & Carin 2020: the same "
                "map when the layer is followed by global pooling, and faithful when its "
                "positions reach the classifier separately, where the mean-gradient "
                "weights cancel)."),
    "integrated-gradients": (
        "Integrated gradients: the input minus the baseline, times the mean gradient of "
        "the class score along the straight path from the baseline to the input "
        "(Sundararajan et al. 2017); the attributions add up to score(input) - "
        "score(baseline), up to the error stated."),
    "saliency": "Saliency: the absolute gradient of the class score with respect to the input.",
    "permutation": (
        "Permutation importance: how much the metric drops when one feature's values are "
        "shuffled across the samples, the mean over the repeats (Breiman 2001); the model "
        "is not differentiated, so it is the same on every backend."),
}


@dataclass(frozen=True)
class Explanation:
    """One explanation of a model's predictions on some samples.

    ``targets``: per sample the class (output unit) explained — the predicted one unless
    asked otherwise — and ``target_names`` its name. ``layer``: Grad-CAM's convolution.
    ``baseline``/``steps``: integrated gradients'. ``completeness_error``: integrated
    gradients' largest |sum(attributions) - (score(x) - score(baseline))| over the samples.
    ``features``/``importance``/``importance_std``: per feature (permutation, or
    integrated gradients of a table), in the order of the model's columns.
    """

    method: str
    backend: str
    samples: int
    data: str  # what was explained, e.g. "the first 4 samples of the test split of digits"
    description: str = ""
    targets: list[int] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # the model's output for each target
    score: str | None = None  # what is differentiated, e.g. "the class's logit (...)"
    layer: str | None = None
    baseline: str | None = None
    steps: int | None = None
    completeness_error: float | None = None
    metric: str | None = None  # permutation: what drops ("accuracy", "mean squared error")
    metric_value: float | None = None  # the metric on the unshuffled samples
    repeats: int | None = None
    seed: int | None = None
    features: list[str] = field(default_factory=list)
    importance: list[float] = field(default_factory=list)
    importance_std: list[float] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # "maps" -> .npy, "overlay_0" -> .png

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ActivationStats:
    """A node's output on some samples: its shape, how to draw it, and its statistics.

    ``kind``: "image" (height, width, channels: a grid of feature maps), "sequence"
    (steps, features: a heatmap), "vector" (features: bars) or "scalar".
    ``zero_fraction`` is the share of exact zeros (dead ReLUs); ``dead_units`` the units
    (channels) that are zero on every sample. ``attention_shape``: an attention layer's
    attention weights per sample (heads, query positions, key positions), in
    ``files["attention"]``; empty for other layers.
    """

    layer: str
    layer_class: str
    backend: str
    samples: int
    shape: list[int]  # one sample's output shape
    kind: str
    mean: float
    std: float
    minimum: float
    maximum: float
    zero_fraction: float
    dead_units: int
    units: int
    data: str = ""
    weights: str = ""  # whose weights: "the trained model run.keras", "the project's"
    files: dict[str, str] = field(default_factory=dict)
    attention_shape: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActivationStats:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
