"""kbuilder: build, train and export Keras 3 models visually."""

__version__ = "0.1.0"
