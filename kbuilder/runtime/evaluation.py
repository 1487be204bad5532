"""Judging a trained classifier or regressor: plain numpy, testable without a backend."""

from __future__ import annotations

from typing import Any

import numpy as np


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
    y_true: np.ndarray, outputs: np.ndarray, class_names: list[str], samples: int = 20
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
    return {
        "task": "classification",
        "class_names": names,
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class_scores(matrix, names),
        "accuracy": float((labels == predicted).mean()) if len(labels) else None,
        "samples": [
            {"index": int(i), "true": names[labels[i]], "predicted": names[predicted[i]],
             "confidence": float(confidence[i])}
            for i in range(min(samples, len(labels)))
        ],
    }


def regression_results(y_true: np.ndarray, outputs: np.ndarray, samples: int = 20) -> dict:
    y = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    pred = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    error = pred - y
    return {
        "task": "regression",
        "mae": float(np.abs(error).mean()) if len(y) else None,
        "rmse": float(np.sqrt((error ** 2).mean())) if len(y) else None,
        "samples": [
            {"index": int(i), "true": y[i].tolist(), "predicted": pred[i].tolist()}
            for i in range(min(samples, len(y)))
        ],
    }


def describe_results(dataset: Any, y_true: np.ndarray, outputs: Any) -> dict[str, Any]:
    """Classification or regression results of ``outputs`` against ``y_true``."""
    if isinstance(outputs, list | tuple):
        outputs = outputs[0]  # the first output is the one the labels describe
    if dataset.task == "classification":
        names = list(dataset.class_names or [str(i) for i in range(dataset.num_classes or 0)])
        return classification_results(y_true, outputs, names)
    return regression_results(y_true, outputs)
