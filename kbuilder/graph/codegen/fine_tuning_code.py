"""The generated scripts' second phase of a fine-tuning run: ``unfreeze`` as code.

It does what the worker's ``runtime/fine_tuning.unfreeze`` does (a test checks they agree
on the same model): the layers from ``FINE_TUNE_FROM`` on learn again, inside nested
models too, and BatchNormalization layers frozen in phase 1 stay frozen, which in Keras 3
is what keeps them in inference mode.
"""

UNFREEZE_SOURCE = '''\
def all_layers(model):
    """Every layer of the model, nested models' layers too."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found += all_layers(layer)
    return found


def path_to(model, name):
    """The layers from the model's own layer down to the one called `name`, or None."""
    for layer in getattr(model, "layers", []):
        if layer.name == name:
            return [layer]
        inner = path_to(layer, name)
        if inner is not None:
            return [layer, *inner]
    return None


def unfreeze(model, layer_name):
    """Phase 2: make `layer_name` and every layer after it trainable (None: every layer);
    BatchNormalization frozen in phase 1 stays frozen (in inference mode)."""
    frozen_statistics = [layer for layer in all_layers(model) if not layer.trainable
                         and type(layer).__name__ in STATISTICS_LAYERS]
    if layer_name is None:
        model.trainable = True
    else:
        path = path_to(model, layer_name)
        if path is None:
            raise SystemExit(f"There is no layer {layer_name!r} to fine-tune from.")
        container = model
        for step in path:
            container.trainable = True
            for layer in container.layers[:container.layers.index(step)]:
                layer.trainable = False
            container = step
    for layer in frozen_statistics:
        layer.trainable = False'''
