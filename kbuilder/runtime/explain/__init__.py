"""Explanations and layer outputs of a trained model, the same on JAX, TensorFlow and
PyTorch (issue 17): one API with a small backend-specific gradient core
(``gradients.value_and_grads``); Grad-CAM, integrated gradients and saliency in
``attribution``, permutation importance (backend-free) in ``permutation``, a node's output
in ``activations``; each result a typed record stating what it is (``records``). The
worker runs requests through ``job``; pictures are drawn by ``pictures``.
"""

from kbuilder.runtime.explain.attribution import (
    DEFAULT_STEPS,
    ExplainError,
    gradcam,
    gradcam_layer,
    integrated_gradients,
    predicted_targets,
    saliency,
    scoring_for,
)
from kbuilder.runtime.explain.records import METHODS, ActivationStats, Explanation

__all__ = ["DEFAULT_STEPS", "METHODS", "ActivationStats", "ExplainError", "Explanation",
           "gradcam", "gradcam_layer", "integrated_gradients", "predicted_targets",
           "saliency", "scoring_for"]
