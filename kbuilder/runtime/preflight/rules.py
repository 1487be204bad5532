"""The names and thresholds the pre-flight checks and the fit share, and the words of a
shape."""

from __future__ import annotations

from typing import Any

CLASSIFICATION_LOSSES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "categorical_hinge", "hinge", "squared_hinge", "kl_divergence",
})
CROSSENTROPY_LOSSES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
})
REGRESSION_LOSSES = frozenset({
    "mean_squared_error", "mean_absolute_error", "huber", "log_cosh", "poisson",
    "cosine_similarity",
})
CLASSIFICATION_METRICS = frozenset({
    "accuracy", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision",
    "recall",
})
# Values above this on an image-like input mean raw pixels (0..255) reach the network.
UNSCALED_LIMIT = 10.0
# Regression targets beyond this make an unscaled MSE slow to converge.
LARGE_TARGET = 100.0
# Layers that scale their input to a trainable range; one right after an input is enough.
SCALING_LAYERS = frozenset({"Rescaling", "Normalization"})
# Layers without weights that leave pixel values as they are: a scaling layer after them
# still scales the raw image.
PIXEL_PRESERVING = frozenset({
    "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomCrop", "RandomContrast", "RandomBrightness", "Reshape",
    "Permute", "ZeroPadding2D", "Cropping2D", "Concatenate", "Identity",
})
# The augmentation block a fit adds on request (``augment=True``): mild, label-preserving
# changes for photographs; the nodes are ordinary, editable layers (inactive at inference).
AUGMENTATION = (
    ("RandomFlip", {"mode": "horizontal"}),
    ("RandomRotation", {"factor": 0.1}),
    ("RandomZoom", {"height_factor": 0.1}),
)


def shape_text(shape: Any) -> str:
    dims = [str(d) if d is not None else "any" for d in shape]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"
