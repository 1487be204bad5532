"""The data section's numbers and the functions every source kind shares.

Splitting rows (stratified, seeded), standardising, filling missing numbers, class labels,
fitting arrays to the model's inputs and one-hot labels: written once, as the runtime does
(``tests/graph/codegen/test_codegen_data.py`` compares them bit for bit).
"""

from __future__ import annotations

from kbuilder.graph.codegen.sources import SourceRegistry
from kbuilder.graph.table_layout import MISSING_MARKERS as _TABLE_MISSING

# The numbers of kbuilder.runtime.data (the tests check they agree).
CLASS_LABEL_LIMIT = 20
VOCABULARY_SIZE = 10_000
SEQUENCE_LENGTH = 200
MAX_AUTO_CATEGORIES = 50
MISSING_MARKERS = tuple(sorted(_TABLE_MISSING))
MISSING_CATEGORY = "(missing)"

TEXT_SETS = ("imdb", "reuters")

SOURCES = SourceRegistry()
_define = SOURCES.define


_define("split_off", '''
def split_off(rows, fraction, rng, labels=None):
    """Take `fraction` of `rows` at random; stratified when `labels` (one per row) are given.

    Returns (kept, taken), both in the original order. Stratified: each class gives its
    share of the taken rows, the largest remainders rounding up so the total is exact.
    """
    n = len(rows)
    if fraction <= 0 or n < 2:
        return rows, rows[:0]
    total = min(n - 1, max(1, round(fraction * n)))
    if labels is None:
        taken = np.sort(rng.permutation(n)[:total])
    else:
        classes, counts = np.unique(labels, return_counts=True)
        exact = counts * total / n
        shares = np.floor(exact).astype(int)
        order = np.argsort(-(exact - shares), kind="stable")
        shares[order[: total - shares.sum()]] += 1
        picked = [
            rng.permutation(np.flatnonzero(labels == cls))[:share]
            for cls, share in zip(classes, shares, strict=True)
        ]
        taken = np.sort(np.concatenate(picked))
    mask = np.zeros(n, dtype=bool)
    mask[taken] = True
    return rows[~mask], rows[mask]
''')

_define("split_rows", '''
def split_rows(count, labels=None, test_given=False, validation_given=False):
    """The rows for training, validation and test, as kbuilder splits them.

    First the test rows (TEST_SPLIT of all rows), then the validation rows from the rest
    (VALIDATION_SPLIT of all rows), drawn with SPLIT_SEED. Class `labels` make both splits
    stratified. Data that comes with its own test set gives VALIDATION_SPLIT of its
    training rows to validation; with its own validation set, none.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    rows = np.arange(count)
    if test_given:
        rest, test = rows, rows[:0]
        validation_fraction = VALIDATION_SPLIT
    else:
        rest, test = split_off(rows, TEST_SPLIT, rng, labels)
        validation_fraction = VALIDATION_SPLIT / (1 - TEST_SPLIT)
    if validation_given:
        return rest, rows[:0], test
    rest_labels = None if labels is None else labels[rest]
    train, validation = split_off(rest, validation_fraction, rng, rest_labels)
    return train, validation, test
''', "split_off")

_define("standardize", '''
def standardize(x_train, *others):
    """Centre and scale each feature with the training rows' mean and standard deviation."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant feature stays constant instead of NaN
    return [((x - mean) / std).astype("float32") for x in (x_train, *others)]
''')

_define("fill_missing", '''
def fill_missing(columns, names, x_train, *others):
    """Fill the missing numbers (NaN) of `columns` with the training rows' median."""
    medians = {}
    for column in columns:
        values = x_train[:, column]
        present = values[~np.isnan(values)]
        medians[column] = float(np.median(present)) if present.size else 0.0
        print(f"Missing values of {names[column]!r} filled with {medians[column]:g}.")
    filled = []
    for x in (x_train, *others):
        x = x.copy()
        for column, median in medians.items():
            x[np.isnan(x[:, column]), column] = median
        filled.append(x)
    return filled
''')

_define("is_classification", '''
def is_classification(values):
    """Whether a target holds class labels rather than values to predict.

    Text and 0/1 rows are class labels; numbers are when all are whole and there are at
    most CLASS_LABEL_LIMIT distinct ones (and fewer than half as many as rows), or two.
    """
    if values.dtype.kind in "USOb":
        return True
    if values.ndim == 2 and values.shape[1] > 1:
        return values.dtype.kind in "biuf" and bool(np.all((values == 0) | (values == 1)))
    flat = values.reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[~np.isnan(flat)]
        if not np.all(flat == np.round(flat)):
            return False
    distinct = len(np.unique(flat))
    return distinct <= 2 or (distinct <= CLASS_LABEL_LIMIT and distinct < len(flat) / 2)
''')

_define("class_list", '''
def class_list(values):
    """The distinct class labels in sorted order (numbers as numbers), and their names."""
    if values.dtype.kind in "biuf":
        classes = np.unique(values)
        names = [str(int(v)) if float(v).is_integer() else f"{float(v):g}" for v in classes]
        return classes, names
    names = sorted({str(v) for v in values})
    return np.asarray(names), names
''')

_define("class_ids", '''
def class_ids(classes, labels):
    """Each label's place in the sorted `classes`: class ids 0, 1, 2, ..."""
    labels = labels if labels.dtype.kind in "biuf" else labels.astype(str)
    return np.searchsorted(classes, labels).astype("int32")
''')

_define("fit_to_input", '''
def fit_to_input(x):
    """Give each sample the model's input shape (INPUT_SHAPE), e.g. 64 values as 8x8x1.

    One None in INPUT_SHAPE takes whatever size is left.
    """
    shape = list(INPUT_SHAPE)
    have = x.shape[1:]
    if len(have) == len(shape) and all(
        s is None or s == h for s, h in zip(shape, have, strict=True)
    ):
        return x
    size = math.prod(have)
    known = math.prod(s for s in shape if s is not None)
    unknown = sum(s is None for s in shape)
    if (unknown == 0 and known == size) or (unknown == 1 and known and size % known == 0):
        return x.reshape((len(x), *[-1 if s is None else s for s in shape]))
    raise SystemExit(
        f"Each sample of the data has shape {have}, which does not fit the model's input "
        f"shape {INPUT_SHAPE}. Change the shape of the model's Input to fit the data."
    )
''')

_define("fit_to_inputs", '''
def fit_to_inputs(x):
    """The array of each model input (INPUT_SHAPES, by Input name), in the model's order,
    each given its input's shape, e.g. 64 values as 8x8x1 (one None takes the rest)."""
    fitted = []
    for name, wanted in INPUT_SHAPES.items():
        a, shape = x[name], list(wanted)
        have = a.shape[1:]
        if len(have) == len(shape) and all(
            s is None or s == h for s, h in zip(shape, have, strict=True)
        ):
            fitted.append(a)
            continue
        size = math.prod(have)
        known = math.prod(s for s in shape if s is not None)
        unknown = sum(s is None for s in shape)
        if not ((unknown == 0 and known == size) or (unknown == 1 and known and size % known == 0)):
            raise SystemExit(
                f"Each sample of the array for {name!r} has shape {have}, which does not fit "
                f"that input's shape {wanted}. Change the shape of the Input to fit the data."
            )
        fitted.append(a.reshape((len(a), *[-1 if s is None else s for s in shape])))
    return fitted
''')

_define("one_hot", '''
def one_hot(*label_arrays):
    """Class ids as one-hot rows, which @LOSS@ expects (rows stay as they are)."""
    if label_arrays[0].ndim > 1:
        return label_arrays
    num_classes = max(int(y.max()) + 1 for y in label_arrays if len(y))
    return [np.eye(num_classes, dtype="float32")[y] for y in label_arrays]
''')
