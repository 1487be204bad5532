"""Whether a finished run learned anything, and the likely cause when it did not.

A run that ends "completed" can still be useless: a learning rate far too high makes the
loss jump up in the first batches and stay there, one far too low leaves it where it
started, and either way the accuracy stays at what always guessing the most common class
gives. A run can also learn something and still do worse than a logistic regression on
the same features (``runtime.baseline``). ``diagnose`` turns such a run into one sentence
with the likely cause and a fix; the worker puts it in ``Finished.diagnosis`` (and at the
end of the message), so the CLI and the window say the same. No keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kbuilder.runtime.baseline import CHANCE_MARGIN, Baselines

# Learning rates that usually work, per optimizer (Keras's defaults); others use Adam's.
TYPICAL_LEARNING_RATES = {"sgd": 0.01, "adadelta": 1.0, "ftrl": 0.001}
DEFAULT_LEARNING_RATE = 0.001
TOO_HIGH = 30.0  # times the typical rate
TOO_LOW = 1e-3  # times the typical rate
DIVERGED = 1.5  # the loss ended this many times above its start and its best
NO_IMPROVEMENT = 0.99  # the loss ended above this share of its start
MIN_EPOCHS_FOR_NO_IMPROVEMENT = 3
# The loss still falling by this share in the last epoch: more epochs would have helped.
STILL_FALLING = 0.98


@dataclass(frozen=True)
class RunFacts:
    """What ``diagnose`` looks at.

    Args:
        epoch_losses: the training loss after each epoch (``None`` where not finite).
        first_loss: the loss of the first batch, before the model had learned anything.
        learning_rate: the initial learning rate; ``optimizer`` its optimizer's name.
        accuracy: the accuracy on ``accuracy_split`` (test, validation or training).
        majority_share: the share of that split's most common class.
        baselines: the model's test figure beside trivial and linear baselines
            (``runtime.baseline``), when there is a test split.
        epochs_planned: the epochs asked for; ``early_stopping`` whether early stopping
            could end the run before.
        unscaled: where the inputs are far from unit scale while the model has no
            scaling layer (e.g. "column 'body_mass_g' goes up to 5698"); ``""`` if not.
            ``scaling_layer`` is the layer that would scale them: ``"Normalization"``
            for features, ``"Rescaling"`` for images.
    """

    epoch_losses: list[float | None] = field(default_factory=list)
    first_loss: float | None = None
    learning_rate: float | None = None
    optimizer: str = "adam"
    accuracy: float | None = None
    accuracy_split: str = "test"
    majority_share: float | None = None
    baselines: Baselines | None = None
    epochs_planned: int | None = None
    early_stopping: bool = False
    unscaled: str = ""
    scaling_layer: str = "Normalization"


def diagnose(facts: RunFacts) -> str:
    """One sentence when the run learned nothing useful, with the likely cause; else ``""``.

    Example: "The loss rose from 2.3 to 14.5 and never came back, and the test accuracy
    0.10 is no better than always guessing the most common class (0.10): the learning
    rate 9.9 is probably too high for adam; try 0.001."
    """
    losses = [v for v in facts.epoch_losses if _finite(v)]
    if not losses:
        return ""
    start = facts.first_loss if _finite(facts.first_loss) else losses[0]
    end, peak, best = losses[-1], max(losses), min([start, *losses])
    findings: list[str] = []
    diverged = end > start * DIVERGED and end > best * DIVERGED
    if diverged:
        findings.append(f"the loss rose from {start:.3g} to {peak:.3g} and never came back")
    elif len(losses) >= MIN_EPOCHS_FOR_NO_IMPROVEMENT and end >= start * NO_IMPROVEMENT:
        findings.append(f"the loss did not improve in {len(losses)} epochs "
                        f"({start:.3g} at the start, {end:.3g} at the end)")
    base = facts.baselines
    chance = (facts.accuracy is not None and facts.majority_share is not None
              and facts.accuracy
              <= facts.majority_share + CHANCE_MARGIN * (1 - facts.majority_share))
    if base is not None and not base.beaten:
        findings.append(_below_baseline(base))
    elif chance and base is None:
        findings.append(
            f"the {facts.accuracy_split} accuracy {facts.accuracy:.2f} is no better than "
            f"always guessing the most common class ({facts.majority_share:.2f})")
    if not findings:
        return ""
    text = ", and ".join(findings)
    return f"{text[0].upper()}{text[1:]}: {_cause(facts, diverged, losses)}"


def _below_baseline(base: Baselines) -> str:
    """What the model fails to beat, e.g. "the test accuracy 0.36 is no better than
    always 'Adelie' (0.43), where a logistic regression gets 1.00"."""
    what = f"the {base.split} {base.metric} {_figure(base.model)}"
    linear = (f", where a {base.linear_label} gets {_figure(base.linear)}"
              if base.linear is not None else "")
    if base.verdict == "not_better_than_trivial":
        guess = ("always guessing" if base.task == "classification" else "always predicting")
        label = base.trivial_label.removeprefix("always ")
        return f"{what} is no better than {guess} {label} ({_figure(base.trivial)}){linear}"
    return (f"{what} is worse than a {base.linear_label} on the same features "
            f"({_figure(base.linear)})")


def _figure(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.1f}"


def _cause(facts: RunFacts, diverged: bool, losses: list[float]) -> str:
    epochs = len(losses)
    rate = facts.learning_rate
    optimizer = (facts.optimizer or "adam").lower()
    typical = TYPICAL_LEARNING_RATES.get(optimizer, DEFAULT_LEARNING_RATE)
    if rate is not None and rate >= typical * TOO_HIGH:
        return (f"the learning rate {rate:g} is probably too high for {optimizer}; "
                f"try {typical:g}.")
    if rate is not None and rate <= typical * TOO_LOW:
        return (f"the learning rate {rate:g} is probably too low for {optimizer}; "
                f"try {typical:g}.")
    if facts.unscaled and facts.scaling_layer == "Rescaling":
        return (f"the inputs are not scaled ({facts.unscaled}) and the model has no "
                "Rescaling layer; fit the model to the data again ('Fit the model to this "
                "data' in the Data tab, or kbuilder new --data), or add a Rescaling layer "
                "(scale 1/255 for pixels) right after the Input.")
    if facts.unscaled:
        return (f"the inputs are not scaled ({facts.unscaled}) and the model has no "
                "Normalization layer; fit the model to the data again ('Fit the model to "
                "this data' in the Data tab, or kbuilder new --data), or add a "
                "Normalization layer right after the Input: kbuilder adapts it to the "
                "training data.")
    if diverged:
        smaller = f" (e.g. {rate / 10:g})" if rate else ""
        return (f"try a smaller learning rate{smaller}, and scale the inputs (e.g. a "
                "Normalization layer first).")
    if epochs < MIN_EPOCHS_FOR_NO_IMPROVEMENT:
        return "train for more epochs, and check that the inputs are scaled."
    planned = facts.epochs_planned
    falling = len(losses) >= 2 and losses[-1] < losses[-2] * STILL_FALLING
    if falling and planned is not None and epochs >= planned:
        return (f"the loss was still falling after the {epochs} epochs asked for; train "
                "for more epochs (or with a larger learning rate).")
    if facts.early_stopping and planned is not None and epochs < planned:
        return (f"early stopping ended the run after {epochs} of {planned} epochs; give it "
                "more patience, or try another learning rate; a larger model (more units "
                "or layers) may help.")
    return ("check that the labels belong to the inputs and that the inputs are scaled "
            "(e.g. a Normalization layer first); a larger model or another learning rate "
            "may help.")


def _finite(value: float | None) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
