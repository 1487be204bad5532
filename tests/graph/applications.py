"""keras.applications architectures at small input sizes, without weights, for round trips."""

import keras

APPLICATIONS = {
    "MobileNetV2": lambda: keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10
    ),
    "ResNet50": lambda: keras.applications.ResNet50(
        input_shape=(32, 32, 3), weights=None, include_top=False, pooling="avg"
    ),
    "DenseNet121": lambda: keras.applications.DenseNet121(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
    "EfficientNetB0": lambda: keras.applications.EfficientNetB0(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
    "NASNetMobile": lambda: keras.applications.NASNetMobile(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
    "InceptionV3": lambda: keras.applications.InceptionV3(
        input_shape=(75, 75, 3), weights=None, classes=10
    ),
    "VGG16": lambda: keras.applications.VGG16(
        input_shape=(32, 32, 3), weights=None, include_top=False
    ),
    "Xception": lambda: keras.applications.Xception(
        input_shape=(71, 71, 3), weights=None, include_top=False, pooling="max"
    ),
    "EfficientNetV2B0": lambda: keras.applications.EfficientNetV2B0(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
    "MobileNet": lambda: keras.applications.MobileNet(
        input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=10
    ),
    # hard_sigmoid is written `x + 3.0` and `x * (1.0 / 6.0)`: operation nodes.
    "MobileNetV3Small": lambda: keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
    # LayerScale (ConvNeXt's own layer class) and residuals written `inputs + x`.
    "ConvNeXtTiny": lambda: keras.applications.ConvNeXtTiny(
        input_shape=(32, 32, 3), weights=None, classes=10
    ),
    # CustomScaleLayer (InceptionResNetV2's own layer class); 75x75 is its smallest input.
    "InceptionResNetV2": lambda: keras.applications.InceptionResNetV2(
        input_shape=(75, 75, 3), weights=None, classes=10
    ),
}
