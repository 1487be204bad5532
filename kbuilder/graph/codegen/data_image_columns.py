"""The data section's functions for a table with columns of image paths (tabular + image).

A table whose model has an image Input (e.g. the multi_input template) may name each row's
image in a column (role ``image_path``; ``runtime.data.image_paths``). The script reads
such a table as kbuilder does: the column is found by the same rule (nearly every value
ends in an image extension and the first few name existing files) or chosen in ``ROLES``;
its paths are relative to the table's folder (one leaving it is refused) and each file
must exist; the images are read batch by batch while the model trains (``InputBatches``,
a ``keras.utils.PyDataset``), decoded and resized by ``read_images`` as for an image
folder (Pillow, bilinear, uint8 0..255), so memory does not grow with the number of
images. ``IMAGE_INPUTS`` says which Input takes which column's images; with the table
encoded outside the model ("flat"), ``TABLE_INPUT`` takes its encoded features.

These are additions to the table functions of ``data_tables`` and ``rows``: the data
section puts them into ``table_columns``, ``load_data`` and ``predict_csv``
(``with_image_columns``) only when the model has an image Input, so other scripts stay
as they are.
"""

from __future__ import annotations

from kbuilder.graph.codegen.sources import SourceRegistry

SOURCES = SourceRegistry()
_define = SOURCES.define

_define("is_image_column", r'''
def is_image_column(name, column, path, chosen):
    """Whether a feature column names image files, as kbuilder decides: chosen so in ROLES,
    or (not chosen otherwise) text whose values nearly all end in an image extension and
    whose first five name files in the table's folder."""
    override = "categorical" if name in CATEGORICAL else ROLES.get(name)
    if override is not None or not pa.types.is_string(column.type):
        return override == "image_path"
    counts = pc.value_counts(text_values(column).drop_null())
    values = [v for v in counts.field("values").to_pylist() if v is not None][:200]
    if not values or sum(v.lower().endswith(IMAGE_EXTENSIONS) for v in values) < 0.95 * len(values):
        return False
    root = Path(path).parent
    return all((root / v).is_file() for v in values[:5])
''', "text_values")

_define("image_files", r'''
def image_files(path, name, text):
    """The image files a column names, relative to the table's folder (or absolute), as
    an array of paths; stops with the row of an empty cell, a missing file or a path that
    leaves the table's folder."""
    root = Path(path).parent.resolve()
    files = []
    for i, value in enumerate(text.to_pylist()):
        where = f"Row {i + 1}, column {name!r}"
        if not value:
            raise SystemExit(f"{where} names no image file; give every row its image.")
        given = Path(str(value).strip())
        file = given if given.is_absolute() else Path(os.path.normpath(root / given))
        if not given.is_absolute() and file != root and root not in file.parents:
            raise SystemExit(f"{where}: {value!r} points outside the folder of {path}.")
        if not file.is_file():
            raise SystemExit(f"{where}: the image {value!r} does not exist ({file}).")
        files.append(str(file))
    return np.asarray(files, dtype=str)
''')

_define("image_inputs", r'''
def image_inputs(path, used):
    """The columns of image paths among `used` (taken out of it): each column's image files
    by the Input they feed (IMAGE_INPUTS: Input -> its column, None: the only column not
    chosen for another Input). Fills IMAGE_COLUMNS (column -> Input) for raw rows."""
    images = [entry for entry in used if entry[1] == "image_path"]
    chosen = {column: node for node, column in IMAGE_INPUTS.items() if column}
    free = [node for node, column in IMAGE_INPUTS.items() if not column]
    files = {}
    IMAGE_COLUMNS.clear()
    for entry in images:
        used.remove(entry)
        name = entry[0]
        node = chosen.get(name) or (free[0] if len(free) == 1 else None)
        if node is None or node in files:
            raise SystemExit(f"Column {name!r} names image files, but no image Input is chosen "
                             "for it; set its Input in IMAGE_INPUTS.")
        files[node] = image_files(path, name, entry[3])
        IMAGE_COLUMNS[name] = node
    return files
''', "image_files")

_define("raw_images", r'''
def raw_images(frame, path):
    """The image files the raw rows name (IMAGE_COLUMNS), relative to the folder of their
    table file `path`, by the Input they feed."""
    files = {}
    for name, node in IMAGE_COLUMNS.items():
        if name not in frame:
            raise SystemExit(f"The rows have no column {name!r} of image paths; the model needs it.")
        files[node] = image_files(path, name, text_values(frame[name]))
    return files
''', "image_files", "text_values")

_define("InputBatches", '''
class InputBatches(keras.utils.PyDataset):
    """Batches of (the inputs, labels) of a table with image files: the image files
    (arrays of paths) are read per batch while the model trains, so memory stays the same
    however many images there are; the other inputs are indexed. `labels` None: inputs
    only (to predict). `shuffle`: a new order each epoch."""

    def __init__(self, x, labels, shuffle=False):
        super().__init__()
        self.x, self.labels, self.shuffle = x, labels, shuffle
        self.count = len(next(iter(x.values())))
        self.order = np.arange(self.count)
        self.rng = np.random.default_rng(SEED)
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(self.count / BATCH_SIZE)

    def __getitem__(self, index):
        rows = self.order[index * BATCH_SIZE:(index + 1) * BATCH_SIZE]
        batch = {name: read_images(a[rows]) if a.dtype.kind == "U" else a[rows]
                 for name, a in self.x.items()}
        inputs = tuple(fit_to_inputs(batch))  # TensorFlow takes a tuple of inputs, not a list
        return (inputs,) if self.labels is None else (inputs, self.labels[rows])

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(self.count)
''', "read_images", "fit_to_inputs")

# Where the image columns go into the table functions (see ``with_image_columns``):
# (function, the line it has, the lines it gets instead).
_INSERTIONS = (
    ("def table_columns(path):",
     "        role, numbers, text = column_role(name, column, chosen)\n",
     "        if is_image_column(name, column, path, chosen):  # read per batch, not encoded\n"
     "            used.append((name, \"image_path\", None, text_values(column), column))\n"
     "            continue\n"
     "        role, numbers, text = column_role(name, column, chosen)\n"),
    ("def load_data(path):",
     "    y, classes, kept, used = table_columns(path)\n",
     "    y, classes, kept, used = table_columns(path)\n"
     "    images = image_inputs(path, used)  # the image files of each image Input\n"),
    ("def load_data(path):",  # the table's preprocessing in the model
     "    return tuple(({k: v[part] for k, v in x.items()}, y[part])\n",
     "    x.update(images)\n"
     "    return tuple(({k: v[part] for k, v in x.items()}, y[part])\n"),
    ("def load_data(path):",  # encoded here: the features feed TABLE_INPUT
     "    return (x_train, y[train]), (x_val, y[validation]), (x_test, y[test])",
     "    return tuple(({TABLE_INPUT: features, **{k: v[part] for k, v in images.items()}},\n"
     "                  y[part]) for features, part in zip((x_train, x_val, x_test),\n"
     "                                                    (train, validation, test), strict=True))"),
    ("def predict_csv(model, path):",
     "    outputs = model.predict(fit_to_inputs(encode_rows(read_rows(path))),\n"
     "                            batch_size=BATCH_SIZE, verbose=0)\n",
     "    rows = read_rows(path)\n"
     "    inputs = {**encode_rows(rows), **raw_images(rows, path)}\n"
     "    outputs = model.predict(InputBatches(inputs, None), verbose=0)\n"),
)
# The functions those lines call, and the names they define.
NEEDS = ("is_image_column", "image_inputs", "raw_images", "InputBatches")
DEFINED_NAMES = frozenset({*SOURCES, "IMAGE_INPUTS", "IMAGE_COLUMNS", "IMAGE_EXTENSIONS",
                           "TABLE_INPUT"})


def with_image_columns(definition: str) -> str:
    """``definition`` (a table function's source) reading columns of image paths too."""
    # A line the function lacks is another loader's (tests/graph/codegen/
    # test_codegen_data.py reads both loaders' tables with images).
    for function, line, lines in _INSERTIONS:
        if function in definition:
            definition = definition.replace(line, lines)
    return definition
