"""Built-in datasets: scikit-learn's (offline) and keras.datasets (downloaded once)."""


from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from kbuilder.runtime.data.dataset import DataError, Progress
from kbuilder.runtime.data.split import Raw

# imdb / reuters: keep the most frequent words and pad or cut every text to this many
# tokens (the text classifier template's Embedding and Input use the same numbers).
VOCABULARY_SIZE = 10_000
SEQUENCE_LENGTH = 200


# ==================================================================== scikit-learn sets
def load_sklearn(name: str) -> Raw:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    if name == "digits":
        # 8x8 images with values 0..16; kept as images so a CNN sees the layout.
        x = (bunch.images / 16.0).astype(np.float32)[..., None]
        return Raw(
            x, bunch.target.astype(np.int32), "classification", name,
            class_names=[str(c) for c in bunch.target_names], num_classes=10,
            preprocessing=[{"step": "scale", "description": "pixel values divided by 16 "
                            "(0..16 -> 0..1)", "scale": 1 / 16}],
        )
    x = bunch.data.astype(np.float32)
    if name == "diabetes":
        return Raw(x, bunch.target.astype(np.float32), "regression", name,
                    feature_names=list(bunch.feature_names), standardize=True)
    return Raw(
        x, bunch.target.astype(np.int32), "classification", name,
        class_names=[str(c) for c in bunch.target_names],
        num_classes=len(bunch.target_names),
        feature_names=list(bunch.feature_names),
        standardize=True,
    )



# ====================================================================== keras.datasets
_KERAS_TITLES = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100", "imdb": "IMDB", "reuters": "Reuters",
    "boston_housing": "Boston Housing",
}
_KERAS_CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"],
    "cifar100": [str(i) for i in range(100)],
    "imdb": ["negative", "positive"],
}
_BOSTON_FEATURES = ["CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                    "PTRATIO", "B", "LSTAT"]


def load_keras(name: str, progress: Progress | None) -> Raw:
    import keras

    module = getattr(keras.datasets, name)
    kwargs: dict[str, Any] = {}
    if name in ("imdb", "reuters"):
        kwargs["num_words"] = VOCABULARY_SIZE
    with _reporting_downloads(progress, f"Downloading {_KERAS_TITLES[name]}"):
        try:
            (x_train, y_train), (x_test, y_test) = module.load_data(**kwargs)
        except Exception as exc:
            raise _download_error(name, exc) from exc
    if name in ("imdb", "reuters"):
        return _keras_text(name, x_train, y_train, x_test, y_test)
    if name == "boston_housing":
        return Raw(
            x_train.astype(np.float32), y_train.astype(np.float32), "regression",
            name, feature_names=list(_BOSTON_FEATURES), standardize=True,
            test=(x_test.astype(np.float32), y_test.astype(np.float32)),
        )
    x_train, x_test = _keras_images(x_train), _keras_images(x_test)
    names = _KERAS_CLASS_NAMES[name]
    return Raw(
        x_train, np.ravel(y_train).astype(np.int32), "classification", name,
        class_names=list(names), num_classes=len(names),
        test=(x_test, np.ravel(y_test).astype(np.int32)),
        preprocessing=[{"step": "scale", "description": "pixel values divided by 255 "
                        "(0..255 -> 0..1)", "scale": 1 / 255}],
    )


def _keras_images(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x  # grayscale sets get their channel axis


def _keras_text(name: str, x_train, y_train, x_test, y_test) -> Raw:
    import keras

    def pad(sequences):
        return keras.utils.pad_sequences(sequences, maxlen=SEQUENCE_LENGTH).astype(np.int32)

    if name == "reuters":
        try:
            names = list(keras.datasets.reuters.get_label_names())
        except Exception:  # only needs the label file, which may be missing offline
            names = [str(i) for i in range(46)]
    else:
        names = list(_KERAS_CLASS_NAMES[name])
    return Raw(
        pad(x_train), np.asarray(y_train).astype(np.int32), "classification", name,
        class_names=names, num_classes=len(names),
        test=(pad(x_test), np.asarray(y_test).astype(np.int32)),
        preprocessing=[{"step": "tokens", "description": f"the {VOCABULARY_SIZE} most "
                        f"frequent words; texts padded or cut to {SEQUENCE_LENGTH} tokens",
                        "num_words": VOCABULARY_SIZE, "maxlen": SEQUENCE_LENGTH}],
    )


def _download_error(name: str, exc: Exception) -> DataError:
    title = _KERAS_TITLES[name]
    cache = os.path.join(_keras_home(), "datasets")
    text = str(exc)
    offline = "URL fetch failure" in text or isinstance(exc, OSError | TimeoutError)
    if offline:
        return DataError(
            f"Could not download {title} (no internet connection?). kbuilder caches it in "
            f"{_home_relative(cache)} after the first download; or use a built-in offline "
            f"dataset such as digits. (Details: {text})"
        )
    return DataError(
        f"Could not read {title} from its cache in {_home_relative(cache)}: the cached "
        f"file may be damaged. Delete it there and try again. (Details: {text})"
    )


def _keras_home() -> str:
    try:
        from keras.src.backend import config

        return config.keras_home()
    except Exception:  # a Keras without this private helper
        return os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))


def _home_relative(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path.startswith(home + os.sep) else path


@contextlib.contextmanager
def _reporting_downloads(progress: Progress | None, stage: str) -> Iterator[None]:
    """Pass Keras' download progress to ``progress`` while the block runs.

    ``keras.utils.get_file`` takes no progress callback; it calls ``urlretrieve`` of its
    own module with a progress-bar hook, so that one function is wrapped for the duration.
    """
    if progress is None:
        yield
        return
    try:
        from keras.src.utils import file_utils
        original = file_utils.urlretrieve
    except (ImportError, AttributeError):  # Keras moved it: download without progress
        yield
        return

    def urlretrieve(url, filename, reporthook=None, data=None):
        def hook(block: int, block_size: int, total: int) -> None:
            if reporthook is not None:
                reporthook(block, block_size, total)
            done = block * block_size
            progress(stage, min(done, total) if total > 0 else done,
                     total if total > 0 else None)

        return original(url, filename, hook, data)

    file_utils.urlretrieve = urlretrieve
    try:
        yield
    finally:
        file_utils.urlretrieve = original


