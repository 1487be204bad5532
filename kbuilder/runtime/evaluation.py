"""Judging a trained classifier or regressor: plain numpy, testable without a backend."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

# Sample images kept with a run's results (for the evaluation view), within this many raw
# bytes in all: every digits sample, 31 MNIST samples, 8 of CIFAR-10. Kept small because
# results live in the project file.
SAMPLE_IMAGE_BYTES = 24 * 1024
# Points of the predicted-vs-true scatter kept for a regression.
SCATTER_POINTS = 500


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    return matrix


def per_class_scores(matrix: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support for each class (0 where undefined)."""
    scores = []
    for k, name in enumerate(class_names):
        tp = float(matrix[k, k])
        predicted = float(matrix[:, k].sum())
        actual = float(matrix[k, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append({"class": name, "precision": precision, "recall": recall, "f1": f1,
                       "support": int(actual)})
    return scores


def class_predictions(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class and its probability from softmax (n, k) or sigmoid (n, 1) outputs."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs.argmax(axis=1), outputs.max(axis=1)
    p = outputs.reshape(len(outputs))
    predicted = (p >= 0.5).astype(np.int64)
    return predicted, np.where(predicted == 1, p, 1 - p)


def classification_results(
    y_true: np.ndarray, outputs: np.ndarray, class_names: list[str], samples: int = 20,
    x: Any = None,
) -> dict[str, Any]:
    """Confusion matrix, per-class scores and a sample of predictions, JSON-safe."""
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)  # one-hot labels
    labels = labels.reshape(len(labels)).astype(np.int64)
    predicted, confidence = class_predictions(outputs)
    k = max(len(class_names), int(labels.max(initial=0)) + 1, int(predicted.max(initial=0)) + 1)
    names = list(class_names) + [str(i) for i in range(len(class_names), k)]
    matrix = confusion_matrix(labels, predicted, k)
    sample_rows = [
        {"index": int(i), "true": names[labels[i]], "predicted": names[predicted[i]],
         "confidence": float(confidence[i])}
        for i in range(min(samples, len(labels)))
    ]
    for row, image in zip(sample_rows, sample_images(x, len(sample_rows)), strict=False):
        row["image"] = image
    return {
        "task": "classification",
        "class_names": names,
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class_scores(matrix, names),
        "accuracy": float((labels == predicted).mean()) if len(labels) else None,
        "samples": sample_rows,
    }


def sample_images(x: Any, count: int) -> list[dict[str, Any]]:
    """The first ``count`` images of ``x`` (at most ``SAMPLE_IMAGE_BYTES`` of them), for
    showing next to their predictions; ``[]`` when ``x`` is not a batch of images.

    Each image is ``{"shape": [height, width, channels], "pixels": base64}`` with the
    pixels as uint8, row-major, stretched per image to 0..255 (the model's inputs may be
    scaled or standardised; the picture only has to be recognisable).
    """
    # An array, or a stream of images (read here: only the images kept).
    if len(getattr(x, "shape", ())) != 4 or x.shape[-1] not in (1, 3):
        return []
    per_image = int(np.prod(x.shape[1:]))
    count = min(count, len(x), SAMPLE_IMAGE_BYTES // max(per_image, 1))
    if count <= 0:
        return []
    images = []
    for array in np.asarray(x[:count], dtype=np.float64):
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        scaled = (array - low) / (high - low) if high > low else np.zeros_like(array)
        pixels = np.nan_to_num(scaled * 255).round().clip(0, 255).astype(np.uint8)
        images.append({"shape": list(array.shape),
                       "pixels": base64.b64encode(pixels.tobytes()).decode("ascii")})
    return images


def decode_image(image: dict[str, Any]) -> np.ndarray:
    """The uint8 array ``(height, width, channels)`` of an entry of ``sample_images``."""
    shape = tuple(int(d) for d in image["shape"])
    data = np.frombuffer(base64.b64decode(image["pixels"]), dtype=np.uint8)
    return data.reshape(shape)


def regression_results(y_true: np.ndarray, outputs: np.ndarray, samples: int = 20) -> dict:
    y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    pred = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    error = pred - y
    n = min(SCATTER_POINTS, len(y))
    return {
        "task": "regression",
        "mae": float(np.abs(error).mean()) if len(y) else None,
        "rmse": float(np.sqrt((error ** 2).mean())) if len(y) else None,
        # The first target against its prediction, 5 significant digits: enough to plot.
        "scatter": {"true": [float(f"{v:.5g}") for v in y[:n, 0]],
                    "predicted": [float(f"{v:.5g}") for v in pred[:n, 0]]},
        "samples": [
            {"index": int(i), "true": y[i].tolist(), "predicted": pred[i].tolist()}
            for i in range(min(samples, len(y)))
        ],
    }


def describe_results(dataset: Any, y_true: np.ndarray, outputs: Any,
                     x: Any = None) -> dict[str, Any]:
    """Classification or regression results of ``outputs`` against ``y_true``.

    ``x``, the inputs (as the dataset holds them), adds the first sample images to a
    classification's samples when they are images.
    """
    if isinstance(outputs, list | tuple):
        outputs = outputs[0]  # the first output is the one the labels describe
    if dataset.task == "classification":
        names = list(dataset.class_names or [str(i) for i in range(dataset.num_classes or 0)])
        return classification_results(y_true, outputs, names, x=x)
    return regression_results(y_true, outputs)
