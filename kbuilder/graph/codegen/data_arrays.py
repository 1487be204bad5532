"""The data section's functions for NumPy files, image folders and built-in datasets.

Image folders are streamed: ``load_data`` splits the file lists without reading an image
and ``ImageBatches`` (a ``keras.utils.PyDataset``) reads each batch while the model trains.
"""

from __future__ import annotations

from kbuilder.graph.codegen.data_common import TEXT_SETS
from kbuilder.graph.codegen.literals import set_literal
from kbuilder.graph.codegen.sources import SourceRegistry
from kbuilder.graph.settings import IMAGE_EXTENSIONS

SOURCES = SourceRegistry()
_define = SOURCES.define


# ----------------------------------------------------------------------------- NumPy
_define("read_arrays", '''
def read_arrays(path):
    """The arrays of an .npz file, or of the .npy files in a folder (or beside a .npy file)."""
    folder = Path(path).parent if str(path).lower().endswith(".npy") else Path(path)
    try:
        if folder.is_dir():
            return {f.stem: np.load(f) for f in sorted(folder.glob("*.npy"))}
        with np.load(path) as archive:  # allow_pickle stays off: a data file runs no code
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise SystemExit(f"Could not read {path}: {exc}") from exc
''')

_define("as_features", '''
def as_features(a):
    """Samples as Keras takes them: a column for 1-D data, float32 for real numbers."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.dtype.kind in "fb" and a.dtype != np.float32:
        a = a.astype("float32")
    return a
''')

_define("as_targets", '''
def as_targets(*label_arrays):
    """The targets of every split encoded alike, and the class names (None: values).

    One-hot rows stay; whole numbers 0..K-1 are class ids already; other labels are
    numbered in sorted order.
    """
    flat = [y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y for y in label_arrays]
    values = np.concatenate(flat)
    if not is_classification(values):
        return [y.astype("float32") for y in flat], None
    if flat[0].ndim == 2:
        count = flat[0].shape[1]
        return [y.astype("float32") for y in flat], [str(i) for i in range(count)]
    if values.dtype.kind in "biuf" and np.all(values == np.round(values)) and values.min() >= 0:
        return [y.astype("int32") for y in flat], [str(i) for i in range(int(values.max()) + 1)]
    classes, names = class_list(values)
    return [class_ids(classes, y) for y in flat], names
''', "is_classification", "class_list", "class_ids")

_define("load_npz", '''
def load_data(path):
    """Arrays x and y (or x_train and y_train, maybe with x_test/y_test, x_val/y_val)."""
    arrays = read_arrays(path)
    named = {key.lower(): key for key in arrays}
    for x_key, y_key in (("x", "y"), ("x_train", "y_train")):
        if x_key in named and y_key in named:
            break
    else:
        raise SystemExit(
            f"{path} must hold arrays x and y (or x_train and y_train); it holds "
            f"{sorted(arrays)}."
        )
    given = [s for s in ("test", "val") if f"x_{s}" in named and f"y_{s}" in named]
    xs = [as_features(arrays[named[k]]) for k in [x_key, *(f"x_{s}" for s in given)]]
    ys, classes = as_targets(*(np.asarray(arrays[named[k]])
                               for k in [y_key, *(f"y_{s}" for s in given)]))
    own = dict(zip(given, zip(xs[1:], ys[1:], strict=True), strict=True))
    x, y = xs[0], ys[0]
    labels = None
    if classes is not None:
        print(f"Classes: {classes}")
        labels = y.argmax(axis=1) if y.ndim == 2 else y
    train, validation, test = split_rows(
        len(y), labels, test_given="test" in own, validation_given="val" in own
    )
    return (
        (x[train], y[train]),
        own.get("val", (x[validation], y[validation])),
        own.get("test", (x[test], y[test])),
    )
''', "read_arrays", "as_features", "as_targets", "split_rows")

_define("load_npz_named", '''
def load_data(path):
    """One array per model input (INPUT_ARRAYS: Input name -> array) and the target array
    (TARGET_ARRAY, or the one named y, label, labels or target); arrays NAME_test and
    NAME_val are the file's own test and validation splits."""
    arrays = read_arrays(path)
    target = TARGET_ARRAY or next(
        (k for k in arrays if k.lower() in ("y", "label", "labels", "target")), None
    )
    wanted = [*INPUT_ARRAYS.values(), target]
    lacking = [name for name in wanted if name not in arrays]
    if lacking:
        raise SystemExit(f"{path} has no array {lacking[0]!r}; it holds {sorted(arrays)}.")
    given = [s for s in ("test", "val") if all(f"{a}_{s}" in arrays for a in wanted)]
    suffixes = ["", *(f"_{s}" for s in given)]
    xs = [{name: as_features(arrays[a + suffix]) for name, a in INPUT_ARRAYS.items()}
          for suffix in suffixes]
    ys, classes = as_targets(*(np.asarray(arrays[target + suffix]) for suffix in suffixes))
    own = dict(zip(given, zip(xs[1:], ys[1:], strict=True), strict=True))
    x, y = xs[0], ys[0]
    labels = None
    if classes is not None:
        print(f"Classes: {classes}")
        labels = y.argmax(axis=1) if y.ndim == 2 else y
    train, validation, test = split_rows(
        len(y), labels, test_given="test" in own, validation_given="val" in own
    )

    def rows(index):
        return {name: a[index] for name, a in x.items()}

    return (
        (rows(train), y[train]),
        own.get("val", (rows(validation), y[validation])),
        own.get("test", (rows(test), y[test])),
    )
''', "read_arrays", "as_features", "as_targets", "split_rows")

_define("load_npz_targets", '''
def load_data(path):
    """One array per model input (INPUT_ARRAYS: Input name -> array) and one target array
    per model output (TARGET_ARRAYS: Output name -> array), each target encoded on its
    own (its task, its classes); the split is stratified by the first target's classes.
    Arrays NAME_test and NAME_val are the file's own test and validation splits."""
    arrays = read_arrays(path)
    wanted = [*INPUT_ARRAYS.values(), *TARGET_ARRAYS.values()]
    lacking = [name for name in wanted if name not in arrays]
    if lacking:
        raise SystemExit(f"{path} has no array {lacking[0]!r}; it holds {sorted(arrays)}.")
    given = [s for s in ("test", "val") if all(f"{a}_{s}" in arrays for a in wanted)]
    suffixes = ["", *(f"_{s}" for s in given)]
    xs = [{name: as_features(arrays[a + suffix]) for name, a in INPUT_ARRAYS.items()}
          for suffix in suffixes]
    ys = [{} for _ in suffixes]
    labels = None
    for i, (output, target) in enumerate(TARGET_ARRAYS.items()):
        encoded, classes = as_targets(*(np.asarray(arrays[target + suffix])
                                        for suffix in suffixes))
        for y, part in zip(ys, encoded, strict=True):
            y[output] = part
        if classes is not None:
            print(f"Classes of {output!r}: {classes}")
            if i == 0:
                labels = encoded[0].argmax(axis=1) if encoded[0].ndim == 2 else encoded[0]
    own = dict(zip(given, zip(xs[1:], ys[1:], strict=True), strict=True))
    x, y = xs[0], ys[0]
    train, validation, test = split_rows(
        len(labels if labels is not None else next(iter(y.values()))), labels,
        test_given="test" in own, validation_given="val" in own,
    )

    def rows(by_name, index):
        return {name: a[index] for name, a in by_name.items()}

    return (
        (rows(x, train), rows(y, train)),
        own.get("val", (rows(x, validation), rows(y, validation))),
        own.get("test", (rows(x, test), rows(y, test))),
    )
''', "read_arrays", "as_features", "as_targets", "split_rows", "fit_targets")

_define("fit_targets", '''
def fit_targets(y):
    """The target of each model output (TARGET_ARRAYS, by Output name), in the model's
    order, as model.fit takes them."""
    return [y[name] for name in TARGET_ARRAYS]
''')

# ------------------------------------------------------------------------------ images
_define("image_classes", f'''
def image_classes(root):
    """(class name, image files) of each sub-folder of `root`, in sorted order."""
    root = Path(root)
    if not root.is_dir():
        raise SystemExit(f"The image folder {{root}} does not exist.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = []
    for folder in folders:
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in {set_literal(IMAGE_EXTENSIONS)}
            and not p.name.startswith(".")
        )
        if not files:
            raise SystemExit(f"The class folder {{folder}} has no images.")
        classes.append((folder.name, files))
    if len(classes) < 2:
        raise SystemExit(f"{{root}} needs a sub-folder of images for each of two classes or more.")
    return classes
''')

_define("read_images", '''
def read_images(files):
    """The image files resized to IMAGE_SIZE (bilinear), as uint8 pixel values 0..255."""
    height, width = IMAGE_SIZE
    mode, channels = ("RGB", 3) if COLOR_MODE == "rgb" else ("L", 1)
    x = np.empty((len(files), height, width, channels), dtype="uint8")
    for i, file in enumerate(files):
        with Image.open(file) as image:
            image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
            x[i] = np.asarray(image, dtype="uint8").reshape(height, width, channels)
    return x
''')

_define("ImageBatches", '''
class ImageBatches(keras.utils.PyDataset):
    """Batches of (images, labels) read from their files while the model trains, so memory
    stays the same however many images there are. `shuffle`: a new order each epoch."""

    def __init__(self, files, labels, shuffle=False):
        super().__init__()
        self.files, self.labels, self.shuffle = files, labels, shuffle
        self.order = np.arange(len(files))
        self.rng = np.random.default_rng(SEED)
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(len(self.files) / BATCH_SIZE)

    def __getitem__(self, index):
        rows = self.order[index * BATCH_SIZE:(index + 1) * BATCH_SIZE]
        return fit_to_input(read_images(self.files[rows])), self.labels[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.files))
''', "read_images", "fit_to_input")

_define("load_images", '''
def load_data(path):
    """The image files of one sub-folder per class and their labels, split; the images are
    read batch by batch (ImageBatches)."""
    classes = image_classes(path)
    x = np.array([str(file) for _, paths in classes for file in paths])
    y = np.concatenate([np.full(len(paths), label, dtype="int32")
                        for label, (_, paths) in enumerate(classes)])
    print(f"Classes: {[name for name, _ in classes]}")
    train, validation, test = split_rows(len(y), labels=y)
    return (x[train], y[train]), (x[validation], y[validation]), (x[test], y[test])
''', "image_classes", "split_rows", "ImageBatches")


# ------------------------------------------------------------------ built-in datasets
def sklearn_loader(name: str) -> str:
    lines = [
        "def load_data():",
        f'    """The scikit-learn dataset "{name}", split into training, validation and test '
        'rows."""',
        f"    dataset = load_{name}()",
    ]
    if name == "digits":
        lines += [
            "    # 8x8 images with values 0..16, kept as images so that a CNN sees the layout.",
            '    x = (dataset.images / 16.0).astype("float32")[..., None]',
        ]
    else:
        lines.append('    x = dataset.data.astype("float32")')
    if name == "diabetes":
        lines += [
            '    y = dataset.target.astype("float32")',
            "    train, validation, test = split_rows(len(y))",
        ]
    else:
        lines += [
            '    y = dataset.target.astype("int32")',
            '    print(f"Classes: {[str(c) for c in dataset.target_names]}")',
            "    train, validation, test = split_rows(len(y), labels=y)",
        ]
    if name == "digits":
        lines.append("    x_train, x_val, x_test = x[train], x[validation], x[test]")
    else:
        lines += [
            "    # Features centred and scaled with the training rows' statistics.",
            "    x_train, x_val, x_test = standardize(x[train], x[validation], x[test])",
        ]
    lines.append("    return (x_train, y[train]), (x_val, y[validation]), (x_test, y[test])")
    return "\n".join(lines)


def keras_loader(name: str) -> str:
    lines = [
        "def load_data():",
        f'    """The Keras dataset "{name}" with its own test set: downloaded on first use, '
        'then read from ~/.keras/datasets."""',
        "    try:",
        f"        (x, y), (x_test, y_test) = keras.datasets.{name}.load_data("
        + ("num_words=NUM_WORDS" if name in TEXT_SETS else "") + ")",
        "    except Exception as exc:  # most often: no internet connection on first use",
        "        raise SystemExit(",
        f'            f"Could not download the {name} dataset ({{exc}}). Keras downloads it '
        'once into "',
        '            "~/.keras/datasets; connect to the internet, or copy the file there."',
        "        ) from exc",
    ]
    if name in TEXT_SETS:
        lines += [
            "    # Texts padded or cut to SEQUENCE_LENGTH tokens.",
            '    x = keras.utils.pad_sequences(x, maxlen=SEQUENCE_LENGTH).astype("int32")',
            "    x_test = keras.utils.pad_sequences(x_test, maxlen=SEQUENCE_LENGTH)"
            '.astype("int32")',
            '    y, y_test = np.asarray(y).astype("int32"), np.asarray(y_test).astype("int32")',
            "    train, validation, _ = split_rows(len(y), labels=y, test_given=True)",
            "    x_train, x_val = x[train], x[validation]",
        ]
    elif name == "boston_housing":
        lines += [
            '    x, x_test = x.astype("float32"), x_test.astype("float32")',
            '    y, y_test = y.astype("float32"), y_test.astype("float32")',
            "    train, validation, _ = split_rows(len(y), test_given=True)",
            "    # Features centred and scaled with the training rows' statistics.",
            "    x_train, x_val, x_test = standardize(x[train], x[validation], x_test)",
        ]
    else:
        lines += [
            "    # Pixel values 0..255 become 0..1; grayscale images get their channel axis.",
            '    x, x_test = x.astype("float32") / 255.0, x_test.astype("float32") / 255.0',
            "    if x.ndim == 3:",
            "        x, x_test = x[..., None], x_test[..., None]",
            '    y, y_test = np.ravel(y).astype("int32"), np.ravel(y_test).astype("int32")',
            "    train, validation, _ = split_rows(len(y), labels=y, test_given=True)",
            "    x_train, x_val = x[train], x[validation]",
        ]
    lines.append("    return (x_train, y[train]), (x_val, y[validation]), (x_test, y_test)")
    return "\n".join(lines)
