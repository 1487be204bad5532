"""The table of pretrained networks agrees with Keras itself."""

from __future__ import annotations

import pytest

from kbuilder.graph.backbones import BACKBONES, backbone


def test_lookup_ignores_case_and_names_the_choices():
    assert backbone("mobilenetv3small").name == "MobileNetV3Small"
    with pytest.raises(KeyError, match="MobileNetV3Small"):
        backbone("AlexNet")


@pytest.mark.parametrize("name, table_mb", [("ResNet50V2", 98), ("ConvNeXtTiny", 109.42),
                                            ("DenseNet121", 33), ("Xception", 88),
                                            ("EfficientNetV2B3", 59)])
def test_sizes_are_within_a_tenth_of_keras_table(name, table_mb):
    # Keras's table gives the weights files' sizes; ours are the float32 weights alone.
    assert backbone(name).size_mb == pytest.approx(table_mb, rel=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("family", [b for b in BACKBONES if b.name != "ConvNeXtTiny"],
                         ids=lambda b: b.name)
def test_parameter_counts_and_sizes_are_keras_own(family):
    import keras

    model = getattr(keras.applications, family.name)(weights=None, include_top=True)
    assert model.count_params() == family.parameters
    shape = model.input_shape[1:3]
    assert shape in ((None, None), (family.input_size, family.input_size))
