"""What introspection cannot know, kept by hand: left-out classes, placeholders, ranges,
closed choices, tuple lengths and the ports of layers that take more than one tensor."""

from __future__ import annotations

from typing import Any

from kbuilder.graph.catalog.specs import PortSpec

# Palette order; `all_layers()` is sorted by this, then by name.
CATEGORIES: tuple[str, ...] = (
    "Core",
    "Convolution",
    "Pooling",
    "Recurrent",
    "Attention",
    "Normalization",
    "Regularization",
    "Reshaping",
    "Merging",
    "Activations",
    "Preprocessing",
    "Image augmentation",
    "Wrappers",
)

EXCLUDED: dict[str, str] = {
    "Lambda": "Runs arbitrary Python code, which a project file must not carry.",
    "TorchModuleWrapper": "Wraps a PyTorch module object, which cannot be described by parameters.",
    "JaxLayer": "Wraps JAX functions and parameters, which cannot be described by parameters.",
    "FlaxLayer": "Wraps a Flax module object, which cannot be described by parameters.",
    "TFSMLayer": "Wraps an external TensorFlow SavedModel directory rather than a layer.",
    "SimpleRNNCell": "A bare cell that is only used inside an RNN layer, never on its own.",
    "LSTMCell": "A bare cell that is only used inside an RNN layer, never on its own.",
    "GRUCell": "A bare cell that is only used inside an RNN layer, never on its own.",
    "StackedRNNCells": "A stack of bare cells that is only used inside an RNN layer.",
    "RNN": "Needs a cell object; use LSTM, GRU or SimpleRNN instead.",
    "Layer": "The abstract base class of all layers.",
    "Wrapper": "The abstract base class of the wrapper layers.",
    "InputLayer": "Represented by kbuilder's own Input node.",
    "InputSpec": "Describes what a layer accepts; it is not a layer.",
    "Pipeline": "A container of layer objects; connect the layers in the graph instead.",
    "Equalization": (
        "In Keras 3.15 its symbolic call returns the input tensor itself, which makes any "
        "Functional model containing it cyclic."
    ),
    "MaxNumBoundingBoxes": (
        "Only acts on bounding-box dictionaries, which kbuilder's tensor edges do not "
        "carry; on an image tensor it does nothing."
    ),
}

# A valid value for every parameter that has no usable default (JSON-safe).
PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "Activation": {"activation": "relu"},
    "AdaptiveAveragePooling1D": {"output_size": 4},
    "AdaptiveAveragePooling2D": {"output_size": 4},
    "AdaptiveAveragePooling3D": {"output_size": 4},
    "AdaptiveMaxPooling1D": {"output_size": 4},
    "AdaptiveMaxPooling2D": {"output_size": 4},
    "AdaptiveMaxPooling3D": {"output_size": 4},
    "AlphaDropout": {"rate": 0.1},
    "AveragePooling1D": {"pool_size": 2},
    "AveragePooling2D": {"pool_size": 2},
    "AveragePooling3D": {"pool_size": 2},
    "Bidirectional": {"layer": {"class_name": "LSTM", "config": {"units": 32}}},
    "CategoryEncoding": {"num_tokens": 10},
    "CenterCrop": {"height": 32, "width": 32},
    "Conv1D": {"filters": 32, "kernel_size": 3},
    "Conv1DTranspose": {"filters": 32, "kernel_size": 3},
    "Conv2D": {"filters": 32, "kernel_size": 3},
    "Conv2DTranspose": {"filters": 32, "kernel_size": 3},
    "Conv3D": {"filters": 32, "kernel_size": 3},
    "Conv3DTranspose": {"filters": 32, "kernel_size": 3},
    "ConvLSTM1D": {"filters": 32, "kernel_size": 3},
    "ConvLSTM2D": {"filters": 32, "kernel_size": 3},
    "ConvLSTM3D": {"filters": 32, "kernel_size": 3},
    "Dense": {"units": 32},
    "DepthwiseConv1D": {"kernel_size": 3},
    "DepthwiseConv2D": {"kernel_size": 3},
    # Discretization needs bin boundaries or a bin count; with a count it learns the
    # boundaries from data through adapt().
    "Discretization": {"num_bins": 4},
    "Dot": {"axes": -1},
    "Dropout": {"rate": 0.5},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": 32},
    "Embedding": {"input_dim": 1000, "output_dim": 64},
    "GaussianDropout": {"rate": 0.1},
    "GaussianNoise": {"stddev": 0.1},
    "GroupedQueryAttention": {"head_dim": 16, "num_query_heads": 4, "num_key_value_heads": 2},
    "HashedCrossing": {"num_bins": 32},
    "Hashing": {"num_bins": 32},
    "GRU": {"units": 32},
    "LSTM": {"units": 32},
    "MultiHeadAttention": {"num_heads": 2, "key_dim": 16},
    "Permute": {"dims": [2, 1]},
    "RandomBrightness": {"factor": 0.2},
    "RandomColorDegeneration": {"factor": 0.2},
    "RandomContrast": {"factor": 0.2},
    "RandomCrop": {"height": 32, "width": 32},
    "RandomHue": {"factor": 0.2},
    "RandomPosterization": {"factor": 4},
    "RandomRotation": {"factor": 0.1},
    "RandomSaturation": {"factor": 0.2},
    "RandomSharpness": {"factor": 0.2},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomZoom": {"height_factor": 0.1},
    "RepeatVector": {"n": 3},
    "Rescaling": {"scale": 1.0 / 255},
    "Reshape": {"target_shape": [-1]},
    "Resizing": {"height": 32, "width": 32},
    "ReversibleEmbedding": {"input_dim": 1000, "output_dim": 64},
    "SeparableConv1D": {"filters": 32, "kernel_size": 3},
    "SeparableConv2D": {"filters": 32, "kernel_size": 3},
    "SimpleRNN": {"units": 32},
    "SpatialDropout1D": {"rate": 0.5},
    "SpatialDropout2D": {"rate": 0.5},
    "SpatialDropout3D": {"rate": 0.5},
    "SpectralNormalization": {"layer": {"class_name": "Dense", "config": {"units": 32}}},
    "TimeDistributed": {"layer": {"class_name": "Dense", "config": {"units": 32}}},
}


MODULE_CATEGORIES = {
    "core": "Core",
    "convolutional": "Convolution",
    "pooling": "Pooling",
    "rnn": "Recurrent",
    "attention": "Attention",
    "normalization": "Normalization",
    "regularization": "Regularization",
    "reshaping": "Reshaping",
    "merging": "Merging",
    "activations": "Activations",
    "preprocessing": "Preprocessing",
    "image_preprocessing": "Image augmentation",
}

CATEGORY_OVERRIDES = {
    "Activation": "Core",
    "Bidirectional": "Wrappers",
    "TimeDistributed": "Wrappers",
    "SpectralNormalization": "Wrappers",
    # Deterministic image transforms, not augmentations.
    "Resizing": "Preprocessing",
    "CenterCrop": "Preprocessing",
    "AutoContrast": "Preprocessing",
    "ContrastLimitedAdaptiveHistogramEqualization": "Preprocessing",
}

# Signature parameters that are not settings: `weights` takes arrays, which kbuilder
# carries separately, and Keras does not put it in the config.
HIDDEN_PARAMS = frozenset({"weights"})

# Config keys that the signature hides behind **kwargs; from_config passes them back.
CONFIG_ONLY_PARAMS: dict[str, tuple[str, ...]] = {
    "AdditiveAttention": ("seed",),
    "AutoContrast": ("data_format",),
    "ConvLSTM1D": ("unroll", "zero_output_for_mask"),
    "ConvLSTM2D": ("unroll", "zero_output_for_mask"),
    "ConvLSTM3D": ("unroll", "zero_output_for_mask"),
    "EinsumDense": ("activity_regularizer",),
    "Embedding": ("activity_regularizer",),
    "GRU": ("zero_output_for_mask",),
    "IntegerLookup": ("vocabulary_size",),
    "LSTM": ("zero_output_for_mask",),
    "LayerNormalization": ("rms_scaling",),
    "RandomBrightness": ("data_format",),
    "RandomContrast": ("data_format",),
    "ReversibleEmbedding": ("activity_regularizer", "quantization_config"),
    "SimpleRNN": ("zero_output_for_mask",),
    "Solarization": ("data_format",),
    "StringLookup": ("oov_method", "vocabulary_size"),
    "TextVectorization": ("vocabulary_size",),
}

# Defaults of config-only parameters that no signature in the class hierarchy shows
# (Keras pops them from **kwargs).
POPPED_DEFAULTS = {"vocabulary_size": None, "rms_scaling": False}

BASE_DOCS = {
    "trainable": "Boolean, whether the layer's variables should be trainable.",
    "dtype": (
        "The dtype policy of the layer's computations and weights: a dtype name such as "
        '`"float32"` or a mixed precision policy such as `"mixed_float16"`. `None` uses '
        "the global policy."
    ),
    "seed": "Integer, the random seed (for reproducible results).",
    "data_format": (
        'string, either `"channels_last"` or `"channels_first"`. `None` uses the '
        "`image_data_format` of the Keras config (usually `channels_last`)."
    ),
    "activity_regularizer": "Optional regularizer function for the output of the layer.",
    "zero_output_for_mask": (
        "Boolean, whether the output should use zeros for the masked timesteps."
    ),
    "unroll": "Boolean, whether the recurrence should be unrolled instead of looped.",
    "vocabulary_size": (
        "The size of the vocabulary, recorded by Keras when saving; leave it as it is."
    ),
    "rms_scaling": "Deprecated; use RMSNormalization instead.",
    "mask_value": (
        "The value that marks a timestep as masked: a timestep whose features all equal "
        "it is skipped by downstream layers that support masking."
    ),
    "antialias": "Whether to use an anti-aliasing filter when downsampling an image.",
    "value_range": (
        "The range `[low, high]` of the values of the input images, e.g. `[0, 255]` or "
        "`[0, 1]`."
    ),
    "gptq_unpacked_column_size": "Set by GPTQ quantization; leave it as it is.",
    "quantization_config": "Optional quantization settings (a serialized dict).",
}

_POS_INT = {"kind": "int", "minimum": 1}
_NONNEG_INT = {"kind": "int", "minimum": 0}
_FLOAT = {"kind": "float"}
_NONNEG_FLOAT = {"kind": "float", "minimum": 0}
_PROBABILITY = {"kind": "float", "minimum": 0, "maximum": 1}
_RATE = {"kind": "float", "minimum": 0, "maximum": 1, "exclusive_maximum": True}
_JSON = {"kind": "json"}
_DATA_FORMAT = {"kind": "choice", "choices": ("channels_last", "channels_first")}


def tuple_rule(length: int | None, item: str = "int", scalar: bool = True, **extra: Any) -> dict:
    return {
        "kind": "tuple",
        "tuple_len": length,
        "item_kind": item,
        "accepts_scalar": scalar,
        **extra,
    }


# A range as one number or a (low, high) pair, as the image augmentation layers take it.
_FACTOR = tuple_rule(2, "float")
_UNIT_FACTOR = tuple_rule(2, "float", minimum=0, maximum=1)

# Parameters typed by name alone, whatever the layer.
NAME_RULES: dict[str, dict[str, Any]] = {
    **dict.fromkeys(
        (
            "units", "filters", "num_heads", "key_dim", "value_dim", "head_dim",
            "num_query_heads", "num_key_value_heads", "input_dim", "output_dim", "groups",
            "depth_multiplier", "n", "num_bins", "num_tokens", "power_iterations", "height",
            "width", "num_mel_bins", "sampling_rate", "fft_length", "sequence_length",
            "sequence_stride", "frame_length", "frame_step", "bins", "max_tokens",
            "output_sequence_length", "sliding_window", "lora_rank", "num_chains",
            "chain_depth", "num_ops", "gptq_unpacked_column_size",
        ),
        _POS_INT,
    ),
    "num_oov_indices": _NONNEG_INT,
    "vocabulary_size": _NONNEG_INT,
    "seed": {"kind": "int"},
    "rate": _RATE,
    "dropout": _PROBABILITY,
    "recurrent_dropout": _PROBABILITY,
    "momentum": _PROBABILITY,
    "renorm_momentum": _PROBABILITY,
    **dict.fromkeys(
        ("stddev", "l1", "l2", "epsilon", "negative_slope", "max_value", "threshold",
         "clip_limit", "min_freq"),
        _NONNEG_FLOAT,
    ),
    **dict.fromkeys(
        ("lora_alpha", "logit_soft_cap", "max_freq", "top_db", "fill_value", "alpha",
         "mag_exp", "min_power", "ref_power", "offset"),
        _FLOAT,
    ),
    "activation": {"kind": "activation"},
    "recurrent_activation": {"kind": "activation"},
    "axis": {"kind": "axis"},
    "axes": {"kind": "axis"},
    "shared_axes": {"kind": "axis"},
    "attention_axes": {"kind": "axis"},
    "dtype": {"kind": "dtype"},
    "reverse_dtype": {"kind": "dtype"},
    "layer": {"kind": "layer"},
    "backward_layer": {"kind": "layer"},
    "data_format": _DATA_FORMAT,
    "target_shape": {"kind": "shape"},
    "noise_shape": {"kind": "shape"},
    "output_shape": {"kind": "shape", "accepts_scalar": True},
    "dims": tuple_rule(None, scalar=False, minimum=1),
    "ngrams": tuple_rule(None, minimum=1),
    "value_range": tuple_rule(2, "float", scalar=False),
    "tile_grid_size": tuple_rule(2, scalar=False, minimum=1),
    **dict.fromkeys(
        ("factor", "height_factor", "width_factor", "x_factor", "y_factor",
         "brightness_factor", "contrast_factor", "saturation_factor", "hue_factor"),
        _FACTOR,
    ),
    "addition_factor": _UNIT_FACTOR,
    "threshold_factor": _UNIT_FACTOR,
    "sigma": tuple_rule(2, "float", minimum=0),
    "encoding": {"kind": "str", "choices": ("utf-8",)},
    "equation": {"kind": "str"},
    "bias_axes": {"kind": "str"},
    "use_cudnn": {"kind": "choice", "choices": ("auto", True, False)},
    "oov_method": {"kind": "choice", "choices": ("floormod", "farmhash")},
    "flash_attention": {"kind": "bool"},
    **dict.fromkeys(
        ("vocabulary", "idf_weights", "mean", "variance", "bin_boundaries", "salt",
         "renorm_clipping", "quantization_config"),
        _JSON,
    ),
}

# Spatial tuples whose length is the layer's rank ("2D" in the class name -> 2).
RANK_TUPLES = {
    "kernel_size": {"minimum": 1},
    "strides": {"minimum": 1},
    "pool_size": {"minimum": 1},
    "dilation_rate": {"minimum": 1},
    "output_padding": {"minimum": 0},
    "output_size": {"minimum": 1},
    "size": {"minimum": 1},
}

CONV_PADDING = {"kind": "choice", "choices": ("valid", "same")}
_RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")
_AFFINE_INTERPOLATIONS = ("nearest", "bilinear")
_LOOKUP_OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_RNN_LAYERS = ("LSTM", "GRU", "SimpleRNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
# Layers with a `kernel` or `embeddings` weight, which SpectralNormalization needs.
_SPECTRAL_LAYERS = (
    "Dense", "EinsumDense", "Embedding", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
    "Conv2DTranspose", "Conv3DTranspose",
)

# Per-layer corrections, applied after the name rules.
PARAM_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("Conv1D", "padding"): {"kind": "choice", "choices": ("valid", "same", "causal")},
    ("UpSampling1D", "size"): _POS_INT,
    ("UpSampling2D", "interpolation"): {"kind": "choice", "choices": _RESIZE_INTERPOLATIONS},
    ("Resizing", "interpolation"): {"kind": "choice", "choices": _RESIZE_INTERPOLATIONS},
    # ops.image.resize pads only with a constant.
    ("Resizing", "fill_mode"): {"kind": "choice", "choices": ("constant",)},
    ("AugMix", "interpolation"): {"kind": "choice", "choices": _AFFINE_INTERPOLATIONS},
    ("RandAugment", "interpolation"): {"kind": "choice", "choices": _AFFINE_INTERPOLATIONS},
    ("AugMix", "factor"): _UNIT_FACTOR,
    ("RandAugment", "factor"): _UNIT_FACTOR,
    ("CutMix", "factor"): _UNIT_FACTOR,
    ("RandomErasing", "factor"): _UNIT_FACTOR,
    ("RandomErasing", "scale"): _UNIT_FACTOR,
    ("RandomElasticTransform", "scale"): _UNIT_FACTOR,
    ("RandomPerspective", "scale"): _PROBABILITY,
    ("RandomGrayscale", "factor"): _PROBABILITY,
    # Bits to keep: one number, or the (low, high) range Keras itself writes.
    ("RandomPosterization", "factor"): tuple_rule(2, minimum=1, maximum=8),
    ("RandomGaussianBlur", "kernel_size"): tuple_rule(2, minimum=1),
    ("RandomFlip", "mode"): {
        "kind": "choice",
        "choices": ("horizontal", "vertical", "horizontal_and_vertical"),
    },
    ("MixUp", "alpha"): _NONNEG_FLOAT,
    ("AugMix", "alpha"): _NONNEG_FLOAT,
    ("Cropping1D", "cropping"): tuple_rule(2, minimum=0),
    ("Cropping2D", "cropping"): tuple_rule(2, "pair", minimum=0),
    ("Cropping3D", "cropping"): tuple_rule(3, "pair", minimum=0),
    ("ZeroPadding1D", "padding"): tuple_rule(2, minimum=0),
    ("ZeroPadding2D", "padding"): tuple_rule(2, "pair", minimum=0),
    ("ZeroPadding3D", "padding"): tuple_rule(3, "pair", minimum=0),
    ("STFTSpectrogram", "padding"): CONV_PADDING,
    ("STFTSpectrogram", "mode"): {
        "kind": "choice",
        "choices": ("log", "magnitude", "psd", "real", "imag", "angle", "stft"),
    },
    # Any scipy.signal window name is accepted; these are suggestions.
    ("STFTSpectrogram", "scaling"): {
        "kind": "choice",
        "choices": ("density", "spectrum"),
        "nullable": True,
    },
    ("STFTSpectrogram", "window"): {
        "kind": "str",
        "choices": ("hann", "hamming"),
        "nullable": True,
    },
    ("MelSpectrogram", "window"): {
        "kind": "choice",
        "choices": ("hann", "hamming"),
        "nullable": True,
    },
    ("Attention", "score_mode"): {"kind": "choice", "choices": ("dot", "concat")},
    ("Bidirectional", "merge_mode"): {
        "kind": "choice",
        "choices": ("concat", "sum", "mul", "ave"),
        "nullable": True,
    },
    ("Bidirectional", "layer"): {"choices": _RNN_LAYERS},
    ("Bidirectional", "backward_layer"): {"choices": _RNN_LAYERS},
    ("SpectralNormalization", "layer"): {"choices": _SPECTRAL_LAYERS},
    ("TextVectorization", "standardize"): {
        "kind": "choice",
        "choices": ("lower_and_strip_punctuation", "lower", "strip_punctuation"),
        "nullable": True,
    },
    ("TextVectorization", "split"): {
        "kind": "choice",
        "choices": ("whitespace", "character"),
        "nullable": True,
    },
    ("TextVectorization", "output_mode"): {"kind": "choice", "choices": _LOOKUP_OUTPUT_MODES},
    ("StringLookup", "output_mode"): {"kind": "choice", "choices": _LOOKUP_OUTPUT_MODES},
    ("IntegerLookup", "output_mode"): {"kind": "choice", "choices": _LOOKUP_OUTPUT_MODES},
    ("Discretization", "output_mode"): {
        "kind": "choice",
        "choices": ("int", "one_hot", "multi_hot", "count"),
    },
    ("Hashing", "output_mode"): {
        "kind": "choice",
        "choices": ("int", "one_hot", "multi_hot", "count"),
    },
    ("HashedCrossing", "output_mode"): {"kind": "choice", "choices": ("int", "one_hot")},
    ("CategoryEncoding", "output_mode"): {
        "kind": "choice",
        "choices": ("one_hot", "multi_hot", "count"),
    },
    # Keras refuses num_tokens=None although the signature allows it.
    ("CategoryEncoding", "num_tokens"): {"nullable": False, "required": True},
    ("StringLookup", "mask_token"): {"kind": "str"},
    ("StringLookup", "oov_token"): {"kind": "str"},
    ("IntegerLookup", "mask_token"): {"kind": "int"},
    ("IntegerLookup", "oov_token"): {"kind": "int"},
    # Only int64 works at this time (Keras says so in IntegerLookup.__init__).
    ("IntegerLookup", "vocabulary_dtype"): {"kind": "choice", "choices": ("int64",)},
    ("Hashing", "mask_value"): _JSON,
    ("Masking", "mask_value"): _FLOAT,
    # EfficientNet & co. rescale per channel with lists.
    ("Rescaling", "scale"): tuple_rule(None, "float"),
    ("Rescaling", "offset"): tuple_rule(None, "float"),
    ("Normalization", "axis"): {"nullable": True},
    ("Dot", "axes"): {"kind": "axis"},
    ("RandomErasing", "fill_value"): {"kind": "float", "nullable": True},
    ("EinsumDense", "output_shape"): {"kind": "shape", "accepts_scalar": True},
}

# Ports of layers that do not take one plain tensor.
_OPTIONAL = {"required": False, "min_count": 0}
_ATTENTION_PORTS = (PortSpec("query"), PortSpec("value"), PortSpec("key", **_OPTIONAL))
_MHA_PORTS = (*_ATTENTION_PORTS, PortSpec("attention_mask", **_OPTIONAL))
# How many state tensors `initial_state` takes (None: it depends on the wrapped layer).
_STATE_COUNTS = {
    "LSTM": 2, "GRU": 1, "SimpleRNN": 1, "ConvLSTM1D": 2, "ConvLSTM2D": 2, "ConvLSTM3D": 2,
    "Bidirectional": None,
}
PORTS: dict[str, tuple[PortSpec, ...]] = {
    "MultiHeadAttention": _MHA_PORTS,
    "GroupedQueryAttention": _MHA_PORTS,
    "Attention": _ATTENTION_PORTS,
    "AdditiveAttention": _ATTENTION_PORTS,
    "HashedCrossing": (PortSpec("inputs", variadic=True, min_count=2, max_count=2),),
    "CategoryEncoding": (PortSpec("inputs"), PortSpec("count_weights", **_OPTIONAL)),
    **{
        name: (
            PortSpec("sequences"),
            PortSpec("initial_state", variadic=True, max_count=count, **_OPTIONAL),
        )
        for name, count in _STATE_COUNTS.items()
    },
}
# Layers that take their tensors as one list: layer([query, value, key]).
PACKED_PORTS = frozenset({"Attention", "AdditiveAttention"})
# Merge layers that take exactly two inputs.
BINARY_MERGES = frozenset({"Subtract", "Dot"})


