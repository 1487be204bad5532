"""The data panel's source form: where the data comes from and how it is split.

Built-in datasets, a CSV file (with its columns: target, features, categorical), NumPy
files or an image folder (size, colour mode), and the split fractions and seed. The form
only describes ``DataSettings``; the data page loads them and decides what is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.settings import (
    KERAS_DATASETS,
    ROLE_CHOICES,
    SKLEARN_DATASETS,
    DataSettings,
    SettingsError,
)
from kbuilder.ui.data.array_mapping import QtArrayMapping
from kbuilder.ui.shell import theme

if TYPE_CHECKING:
    from kbuilder.runtime.data.preview import CsvPreview

KINDS = (("builtin", "Built-in dataset"), ("csv", "Table (CSV, TSV, Parquet, Excel)"),
         ("npz", "NumPy file (.npz/.npy)"), ("images", "Image folder"))
DATASET_INFO = {
    "digits": "1,797 handwritten digits, 8×8 pixels, 10 classes. Offline (scikit-learn).",
    "iris": "150 iris flowers, 4 measurements, 3 species. Offline (scikit-learn).",
    "wine": "178 wines, 13 chemical measurements, 3 cultivars. Offline (scikit-learn).",
    "breast_cancer": "569 tumours, 30 measurements, malignant or benign. Offline "
                     "(scikit-learn).",
    "diabetes": "442 patients, 10 measurements, disease progression after a year "
                "(regression). Offline (scikit-learn).",
    "mnist": "70,000 handwritten digits, 28×28 pixels, 10 classes. Downloaded on first use "
             "(11 MB), then cached.",
    "fashion_mnist": "70,000 pictures of clothes, 28×28 pixels, 10 classes. Downloaded on "
                     "first use (30 MB).",
    "cifar10": "60,000 colour photos, 32×32 pixels, 10 classes. Downloaded on first use "
               "(170 MB).",
    "cifar100": "60,000 colour photos, 32×32 pixels, 100 classes. Downloaded on first use "
                "(170 MB).",
    "imdb": "50,000 film reviews as word ids, positive or negative. Downloaded on first use "
            "(17 MB).",
    "reuters": "11,228 news wires as word ids, 46 topics. Downloaded on first use (2 MB).",
    "boston_housing": "506 houses, 13 measurements, price (regression). Downloaded on first "
                      "use (57 kB).",
}
# From this size on, the CSV page suggests streaming the table (it may not fit in memory).
LARGE_TABLE_BYTES = 2**30
CSV_FILTER = ("Tables (*.csv *.tsv *.tab *.txt *.parquet *.pq *.xlsx *.xlsm);;"
              "All files (*)")
# The reading options a user can pick: (label, value); None: detected.
HEADER_CHOICES = (("Detect", None), ("No header row", "none"), ("Line 1", 1), ("Line 2", 2),
                  ("Line 3", 3))
DELIMITER_CHOICES = (("Detect", None), ("Comma ,", ","), ("Semicolon ;", ";"),
                     ("Tab", "\t"), ("Bar |", "|"))
DECIMAL_CHOICES = (("Detect", None), ("Point 1.5", "."), ("Comma 1,5", ","))
ENCODING_CHOICES = (("Detect", None), ("UTF-8", "utf-8"), ("Windows (cp1252)", "cp1252"),
                    ("Latin-1", "latin-1"))
# The roles a user can give a column (ROLE_CHOICES of the settings), after "auto".
ROLE_LABELS = {"numeric": "number", "categorical": "category", "boolean": "yes/no",
               "datetime": "date", "image_path": "image file", "ignore": "leave out"}
NUMPY_FILTER = "NumPy arrays (*.npz *.npy);;All files (*)"
# Columns of the CSV column table.
COL_NAME, COL_TYPE, COL_USE, COL_CATEGORICAL, COL_ROLE = range(5)
# On the "Use" item: why the loader leaves the column out by default (None: it uses it).
LEFT_OUT_ROLE = Qt.ItemDataRole.UserRole + 1


class QtDataSourceForm(QWidget):
    """The controls that describe ``DataSettings``.

    Signals:
        edited(): the user changed a control (load after a pause: more may follow).
        chosen(): the user chose a file or folder (load at once).
        reload_requested(): the user wants the data read again.
    """

    edited = Signal()
    chosen = Signal()
    reload_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.csv: CsvPreview | None = None  # the file whose columns the table shows
        self._updating = False  # controls set by code, not by the user
        self.kind_combo = QComboBox(self)
        for kind, label in KINDS:
            self.kind_combo.addItem(label, kind)
        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        # One page per kind, only the current one shown. Not a QStackedWidget: that one
        # is as tall as its tallest page (the CSV page's column table).
        self.kind_pages = QWidget(self)
        self._kind_widgets = [self._build_builtin(), self._build_csv(), self._build_npz(),
                              self._build_images()]
        pages = QVBoxLayout(self.kind_pages)
        pages.setContentsMargins(0, 0, 0, 0)
        for widget in self._kind_widgets:
            pages.addWidget(widget)
        source = QGroupBox("Source", self)
        box = QVBoxLayout(source)
        box.addWidget(self.kind_combo)
        box.addWidget(self.kind_pages)

        self.validation_spin = self._fraction_spin("Share of the data held out to watch "
                                                   "generalisation during training")
        self.test_spin = self._fraction_spin("Share of the data kept aside for the final "
                                             "evaluation")
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("The same seed always gives the same split")
        self.seed_spin.valueChanged.connect(self._on_control_changed)
        split = QGroupBox("Split", self)
        form = QFormLayout(split)
        form.addRow("Validation", self.validation_spin)
        form.addRow("Test", self.test_spin)
        form.addRow("Seed", self.seed_spin)
        self.split_note = QLabel(self)
        self.split_note.setObjectName("muted")
        self.split_note.setWordWrap(True)
        form.addRow(self.split_note)

        self.reload_button = QPushButton("Reload", self)
        self.reload_button.setToolTip("Read the data again (e.g. after the file changed)")
        self.reload_button.clicked.connect(self.reload_requested)
        panel = QWidget(self)
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 4, 0)
        column.addWidget(source)
        column.addWidget(split)
        column.addWidget(self.reload_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.setFixedWidth(400)
        theme.manager().changed.connect(self._on_theme)

    def _fraction_spin(self, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(self)
        spin.setRange(0.0, 0.9)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.setToolTip(tip)
        spin.valueChanged.connect(self._on_control_changed)
        return spin

    def _build_builtin(self) -> QWidget:
        page = QWidget(self)
        self.dataset_combo = QComboBox(page)
        for name in SKLEARN_DATASETS:
            self.dataset_combo.addItem(name, name)
        self.dataset_combo.insertSeparator(self.dataset_combo.count())
        for name in KERAS_DATASETS:
            self.dataset_combo.addItem(f"{name} (download)", name)
        for i in range(self.dataset_combo.count()):
            name = self.dataset_combo.itemData(i)
            if name:
                self.dataset_combo.setItemData(i, DATASET_INFO.get(name, ""),
                                               Qt.ItemDataRole.ToolTipRole)
        self.dataset_combo.currentIndexChanged.connect(self._on_control_changed)
        self.dataset_info = QLabel(page)
        self.dataset_info.setObjectName("muted")
        self.dataset_info.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.dataset_combo)
        layout.addWidget(self.dataset_info)
        return page

    def _path_row(self, parent: QWidget, placeholder: str,
                  choose) -> tuple[QLineEdit, QPushButton, QHBoxLayout]:
        edit = QLineEdit(parent)
        edit.setReadOnly(True)
        edit.setPlaceholderText(placeholder)
        button = QPushButton("Choose…", parent)
        button.clicked.connect(choose)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return edit, button, row

    def _build_csv(self) -> QWidget:
        page = QWidget(self)
        self.csv_path, self.csv_choose, row = self._path_row(page, "No file chosen",
                                                             self.choose_csv)
        self.target_combo = QComboBox(page)
        self.target_combo.setToolTip("The column the model learns to predict")
        self.target_combo.currentIndexChanged.connect(self._on_target_changed)
        self.columns = QStandardItemModel(0, 5, page)
        self.columns.setHorizontalHeaderLabels(["Column", "Type", "Use", "Categorical",
                                                "Role"])
        self.columns.itemChanged.connect(self._on_column_item_changed)
        self.columns_view = QTableView(page)
        self.columns_view.setModel(self.columns)
        self.columns_view.verticalHeader().hide()
        self.columns_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.columns_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.columns_view.setWordWrap(False)
        self.columns_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.columns_view.horizontalHeader()
        header.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(COL_NAME, 90)
        header.setSectionResizeMode(COL_TYPE, QHeaderView.ResizeMode.Stretch)
        for col in (COL_USE, COL_CATEGORICAL, COL_ROLE):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.columns_view.setMinimumHeight(200)
        self._merges: tuple[tuple[str, str, str], ...] = ()  # the user's merged spellings
        self.merge_button = QPushButton(page)
        self.merge_button.clicked.connect(self._on_merge_clicked)
        self.merge_button.hide()
        self.merge_note = QLabel(page)
        self.merge_note.setObjectName("muted")
        self.merge_note.setWordWrap(True)
        self.merge_note.hide()
        self.header_combo = self._choice_combo(page, HEADER_CHOICES,
                                               "Which line names the columns")
        self.delimiter_combo = self._choice_combo(page, DELIMITER_CHOICES,
                                                  "What separates the values of a row")
        self.decimal_combo = self._choice_combo(page, DECIMAL_CHOICES,
                                                "How numbers write their decimals")
        self.encoding_combo = self._choice_combo(page, ENCODING_CHOICES,
                                                 "The text encoding of the file")
        self.sheet_edit = QLineEdit(page)
        self.sheet_edit.setPlaceholderText("first sheet")
        self.sheet_edit.setToolTip("Excel: the sheet to read")
        self.sheet_edit.editingFinished.connect(self._on_control_changed)
        self.stream_check = QCheckBox("Stream from disk (for tables larger than memory)", page)
        self.stream_check.setToolTip(
            "Read the table in blocks instead of whole, so memory does not grow with its "
            "size. It costs a second pass over the file (the first computes the statistics, "
            "categories and classes), the column roles are judged on the first block, and "
            "each row's split follows from a hash of its line and the seed instead of a "
            "stratified shuffle.")
        self.stream_check.toggled.connect(self._on_control_changed)
        self.stream_note = QLabel(page)  # a large file: streaming suggested
        self.stream_note.setObjectName("muted")
        self.stream_note.setWordWrap(True)
        self.stream_note.hide()
        reading = QFormLayout()
        reading.setContentsMargins(0, 0, 0, 0)
        reading.addRow("Header", self.header_combo)
        reading.addRow("Delimiter", self.delimiter_combo)
        reading.addRow("Decimal", self.decimal_combo)
        reading.addRow("Encoding", self.encoding_combo)
        reading.addRow("Sheet", self.sheet_edit)
        reading.addRow(self.stream_check)
        reading.addRow(self.stream_note)
        self.reading_box = QGroupBox("Reading", page)
        self.reading_box.setLayout(reading)
        hint = QLabel("Untick “Use” to leave a column out; tick “Categorical” for numbers "
                      "that are codes (e.g. 1 = A, 2 = B). Text columns are always "
                      "categorical; missing numbers are filled with the median.", page)
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("File", row)
        form.addRow("Target", self.target_combo)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.reading_box)
        layout.addWidget(self.columns_view, 1)
        layout.addWidget(self.merge_note)
        layout.addWidget(self.merge_button, 0, Qt.AlignmentFlag.AlignLeft)
        # A column of image paths: which Input takes the images, which the other columns.
        self.column_mapping = QtArrayMapping(page)
        self.column_mapping.setTitle("Columns of the model's Inputs")
        self.column_mapping.setToolTip(
            "Which Input takes the images of each column of image paths, and which takes "
            "the other columns (\"features\"); automatic pairs them by shape")
        self.column_mapping.edited.connect(self._on_control_changed)
        self.column_mapping.setVisible(False)
        layout.addWidget(self.column_mapping)
        layout.addWidget(hint)
        return page

    def _choice_combo(self, parent: QWidget, choices: tuple, tip: str) -> QComboBox:
        combo = QComboBox(parent)
        for label, value in choices:
            combo.addItem(label, value)
        combo.setToolTip(tip)
        combo.currentIndexChanged.connect(self._on_control_changed)
        return combo

    @staticmethod
    def _select(combo: QComboBox, value: Any) -> None:
        index = combo.findData(value)
        if index < 0 and value is not None:  # e.g. header on line 7: shown as it is
            combo.addItem(str(value), value)
            index = combo.count() - 1
        combo.setCurrentIndex(max(0, index))

    def _build_npz(self) -> QWidget:
        page = QWidget(self)
        self.npz_path, self.npz_choose, row = self._path_row(page, "No file chosen",
                                                             self.choose_npz)
        hint = QLabel("An .npz with arrays x and y (or x_train, y_train and optionally "
                      "x_test, y_test), or a folder of x.npy and y.npy. For a model of "
                      "several inputs: one array per Input, named after it (or chosen "
                      "below), and the target y; NAME_test arrays make the test split.", page)
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        self.array_mapping = QtArrayMapping(page)
        self.array_mapping.edited.connect(self._on_control_changed)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(hint)
        layout.addWidget(self.array_mapping)
        return page

    def set_model_nodes(self, inputs: list[str], outputs: list[str]) -> None:
        """The model's Input and Output names, for choosing their arrays."""
        self.array_mapping.set_nodes(inputs, outputs)
        self.column_mapping.set_nodes(inputs, [])

    def _show_arrays(self, location: str) -> None:
        from kbuilder.runtime.data.arrays import array_groups, array_names

        names = array_names(location) if location else []
        self.array_mapping.set_arrays(list(array_groups(names)["train"]))

    def _build_images(self) -> QWidget:
        page = QWidget(self)
        self.images_path, self.images_choose, row = self._path_row(
            page, "No folder chosen", self.choose_folder)
        self.height_spin, self.width_spin = QSpinBox(page), QSpinBox(page)
        for spin in (self.height_spin, self.width_spin):
            spin.setRange(4, 1024)
            spin.setSuffix(" px")
            spin.valueChanged.connect(self._on_control_changed)
        size = QHBoxLayout()
        size.addWidget(self.height_spin)
        size.addWidget(QLabel("×", page))
        size.addWidget(self.width_spin)
        self.color_combo = QComboBox(page)
        self.color_combo.addItem("Colour (RGB)", "rgb")
        self.color_combo.addItem("Greyscale", "grayscale")
        self.color_combo.currentIndexChanged.connect(self._on_control_changed)
        self.skip_bad_check = QCheckBox("Skip unreadable images (listed in the result)", page)
        self.skip_bad_check.setToolTip("Leave out images that cannot be read instead of "
                                       "stopping the run at the first one.")
        self.cache_check = QCheckBox("Cache resized images on disk", page)
        self.cache_check.setToolTip("Keep the resized images in kbuilder's cache folder, so "
                                    "later epochs and runs need not decode them again.")
        # A choice for "Fit the model to this data", not a data setting: kept by the form.
        self.augment_check = QCheckBox("Fitting adds augmentation (flip, rotation, zoom)",
                                       page)
        self.augment_check.setToolTip("Fit the model to this data adds RandomFlip, "
                                      "RandomRotation and RandomZoom layers after the input; "
                                      "they change images only while training.")
        for check in (self.skip_bad_check, self.cache_check):
            check.toggled.connect(self._on_control_changed)
        hint = QLabel("One sub-folder per class, e.g. photos/cats and photos/dogs. Images "
                      "are read from disk while training, resized to this size; pixel values "
                      "stay 0..255 (the fitted model rescales them).", page)
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Folder", row)
        form.addRow("Size (h × w)", size)
        form.addRow("Colours", self.color_combo)
        form.addRow(self.skip_bad_check)
        form.addRow(self.cache_check)
        form.addRow(self.augment_check)
        form.addRow(hint)
        return page

    # ============================================================= settings
    def set_settings(self, settings: DataSettings) -> None:
        """Show ``settings`` in the controls without reacting to it."""
        self._updating = True
        try:
            kind = settings.kind
            self.kind_combo.setCurrentIndex(self.kind_combo.findData(kind))
            self._show_kind_page(self.kind_combo.currentIndex())
            if kind == "builtin":
                self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(
                    settings.location))
            self.csv_path.setText(settings.table().path if kind == "csv" else "")
            table = settings.table() if kind == "csv" else None
            self._select(self.header_combo, table.header if table else None)
            self._select(self.delimiter_combo, table.delimiter if table else None)
            self._select(self.decimal_combo, table.decimal if table else None)
            self._select(self.encoding_combo, table.encoding if table else None)
            self.sheet_edit.setText((table.sheet or "") if table else "")
            self.stream_check.setChecked(bool(table and table.stream))
            self._show_stream_note(table.path if table else "")
            self._merges = tuple(settings.merges)
            self.npz_path.setText(settings.location if kind == "npz" else "")
            self._show_arrays(settings.location if kind == "npz" else "")
            self.array_mapping.set_mapping(settings.input_arrays, settings.output_arrays)
            self.column_mapping.set_mapping(settings.input_arrays if kind == "csv" else (), ())
            self.images_path.setText(settings.location if kind == "images" else "")
            self.height_spin.setValue(settings.image_size[0])
            self.width_spin.setValue(settings.image_size[1])
            self.color_combo.setCurrentIndex(self.color_combo.findData(settings.color_mode))
            self.skip_bad_check.setChecked(settings.skip_bad_images)
            self.cache_check.setChecked(settings.cache_images)
            self.validation_spin.setValue(settings.validation_split)
            self.test_spin.setValue(settings.test_split)
            self.seed_spin.setValue(settings.seed)
            if kind != "csv" or (self.csv is not None and self.csv.path != settings.table().path):
                self.show_columns(None, settings)
        finally:
            self._updating = False
        self._update_info()

    def settings(self) -> DataSettings | None:
        """The settings the controls describe; ``None`` while a file is still to choose.

        Raises:
            SettingsError: the controls describe settings that are not allowed.
        """
        kind = self.kind_combo.currentData()
        common: dict[str, Any] = {
            "validation_split": round(self.validation_spin.value(), 4),
            "test_split": round(self.test_spin.value(), 4),
            "seed": self.seed_spin.value(),
        }
        if kind == "builtin":
            settings = DataSettings(source=self.dataset_combo.currentData() or "digits",
                                    **common)
        elif kind == "csv":
            path = self.csv_path.text()
            if not path:
                return None
            target, features, categorical = self._column_choices(path)
            settings = DataSettings(
                source=f"csv:{path}", target=target, features=features,
                categorical=categorical, header=self.header_combo.currentData(),
                delimiter=self.delimiter_combo.currentData(),
                decimal=self.decimal_combo.currentData(),
                encoding=self.encoding_combo.currentData(),
                sheet=self.sheet_edit.text().strip() or None,
                roles=self._role_choices(path), merges=self._merges,
                stream_table=self.stream_check.isChecked(),
                **self._image_column_settings(), **common)
        elif kind == "npz":
            if not self.npz_path.text():
                return None
            inputs, outputs = self.array_mapping.mapping()
            settings = DataSettings(source=f"npz:{self.npz_path.text()}",
                                    input_arrays=inputs, output_arrays=outputs, **common)
        else:
            if not self.images_path.text():
                return None
            settings = DataSettings(
                source=f"images:{self.images_path.text()}",
                image_size=(self.height_spin.value(), self.width_spin.value()),
                color_mode=self.color_combo.currentData(),
                skip_bad_images=self.skip_bad_check.isChecked(),
                cache_images=self.cache_check.isChecked(), **common,
            )
        settings.validate()
        return settings

    def settings_or_none(self) -> DataSettings | None:
        try:
            return self.settings()
        except SettingsError:
            return None

    def _update_info(self) -> None:
        name = self.dataset_combo.currentData()
        self.dataset_info.setText(DATASET_INFO.get(name or "", ""))
        val, test = self.validation_spin.value(), self.test_spin.value()
        train = max(0.0, 1 - val - test)
        streamed = self.kind_combo.currentData() == "csv" and self.stream_check.isChecked()
        how = ("Each row's split follows from its line and the seed (streamed: not "
               "stratified)." if streamed else "Splits keep each class's share (stratified).")
        self.split_note.setText(f"Training gets {train:.0%} of the data, validation "
                                f"{val:.0%}, test {test:.0%}. {how}")

    def _on_kind_changed(self, index: int) -> None:
        self._show_kind_page(index)
        self._on_control_changed()

    def _show_kind_page(self, index: int) -> None:
        # Hidden pages must not reserve room: the CSV page's column table is tall.
        for i, page in enumerate(self._kind_widgets):
            page.setVisible(i == index)

    def _on_control_changed(self, *_args: Any) -> None:
        self._update_info()
        if not self._updating:
            self.edited.emit()

    # ============================================================= choosers
    def _dialogs(self) -> Any:
        from kbuilder.ui.shell.dialogs import QtDialogs

        return getattr(self.window(), "dialogs", None) or QtDialogs(self)

    def _start_folder(self, current: str) -> str:
        return str(Path(current).parent) if current else ""

    def choose_csv(self) -> None:
        path = self._dialogs().ask_open_path("Choose a CSV file", CSV_FILTER,
                                             self._start_folder(self.csv_path.text()))
        if path:
            self._updating = True
            self.csv_path.setText(path)
            self._merges = ()
            self._show_stream_note(path)
            self.show_columns(None, None)  # a new file: its own columns, target unset
            self._updating = False
            self.chosen.emit()

    def _show_stream_note(self, path: str) -> None:
        """Suggest streaming for a file this large, unless it is already streamed (a size
        check only: no memory probe, which would need a platform-specific call)."""
        try:
            size = Path(path).stat().st_size if path else 0
        except OSError:
            size = 0
        large = size >= LARGE_TABLE_BYTES
        if large:
            self.stream_note.setText(
                f"This file is {size / 2**30:.1f} GB: if it does not fit in memory, tick "
                "“Stream from disk”.")
        self.stream_note.setVisible(large)

    def choose_npz(self) -> None:
        path = self._dialogs().ask_open_path("Choose a NumPy file", NUMPY_FILTER,
                                             self._start_folder(self.npz_path.text()))
        if path:
            self.npz_path.setText(path)
            self._show_arrays(path)
            self.chosen.emit()

    def choose_folder(self) -> None:
        path = self._dialogs().ask_folder("Choose a folder with one sub-folder per class",
                                          self.images_path.text())
        if path:
            self.images_path.setText(path)
            self.chosen.emit()

    # ========================================================== CSV columns
    def show_columns(self, csv: CsvPreview | None, settings: DataSettings | None) -> None:
        """List ``csv``'s columns with the choices of ``settings`` (or the defaults)."""
        updating, self._updating = self._updating, True
        try:
            self.csv = csv
            self.columns.removeRows(0, self.columns.rowCount())
            self.target_combo.clear()
            if csv is None:
                self.column_mapping.setVisible(False)
                return
            target = settings.target if settings and settings.target in csv.header \
                else csv.header[-1]
            features = settings.features if settings else None
            categorical = set(settings.categorical) if settings else set()
            roles = settings.role_overrides() if settings else {}
            for column in csv.columns:
                self.target_combo.addItem(f"{column.name}  ({column.description})",
                                          column.name)
                name = QStandardItem(column.name)
                name.setToolTip(column.name + (f" — e.g. {', '.join(column.examples)}"
                                               if column.examples else ""))
                described = column.description + (f" · {column.missing} missing"
                                                  if column.missing else "")
                kind = QStandardItem(described)
                kind.setToolTip(described)
                if column.kind == "mixed":
                    kind.setForeground(theme.colors().error)
                    kind.setToolTip(f"{column.description}: mostly numbers, but some cells "
                                    "are text. Correct them, or mark the column "
                                    "categorical.")
                use = QStandardItem()
                use.setCheckable(True)
                left_out = csv.left_out(column)
                used = column.name in features if features is not None else left_out is None
                use.setCheckState(Qt.CheckState.Checked if used else Qt.CheckState.Unchecked)
                use.setData(left_out, LEFT_OUT_ROLE)
                cat = QStandardItem()
                cat.setCheckable(True)
                text = column.kind == "text"
                cat.setCheckState(Qt.CheckState.Checked if text or column.name in categorical
                                  else Qt.CheckState.Unchecked)
                if text:
                    cat.setEnabled(False)
                    cat.setToolTip("Text values are always categories (one-hot encoded).")
                for item in (name, kind):
                    item.setEditable(False)
                role_item = QStandardItem()
                role_item.setEditable(False)
                self.columns.appendRow([name, kind, use, cat, role_item])
                self._add_role_combo(self.columns.rowCount() - 1, column,
                                     roles.get(column.name))
            self.target_combo.setCurrentIndex(self.target_combo.findData(target))
            self._mark_target(target)
            self._show_image_columns(csv, roles)
            self._show_merges(csv)
        finally:
            self._updating = updating

    def _show_image_columns(self, csv: CsvPreview, roles: dict[str, str]) -> None:
        """The Input mapping, shown when some column holds image paths."""
        images = [c.name for c in csv.columns if roles.get(c.name, c.role.role if c.role
                                                           else None) == "image_path"]
        self.column_mapping.set_arrays(["features", *images] if images else [])
        self.column_mapping.setVisible(bool(images))

    def _image_column_settings(self) -> dict[str, Any]:
        """The Input mapping and how images are read, for a table with image paths (the
        image size and colour of the image-folder page, as loaded from the project)."""
        if not self.column_mapping.isVisibleTo(self.column_mapping.parentWidget()):
            return {}
        return {"input_arrays": self.column_mapping.mapping()[0],
                "image_size": (self.height_spin.value(), self.width_spin.value()),
                "color_mode": self.color_combo.currentData(),
                "skip_bad_images": self.skip_bad_check.isChecked(),
                "cache_images": self.cache_check.isChecked()}

    def _add_role_combo(self, row: int, column: Any, chosen: str | None) -> None:
        """The column's role: what kbuilder inferred (and why), or the user's choice."""
        role = column.role
        inferred = role.inferred if role is not None else "numeric"
        combo = QComboBox(self.columns_view)
        combo.addItem(f"auto: {ROLE_LABELS.get(inferred, inferred)}", None)
        for value in ROLE_CHOICES:
            combo.addItem(ROLE_LABELS[value], value)
        combo.setCurrentIndex(max(0, combo.findData(chosen)))
        reason = role.reason if role is not None else ""
        combo.setToolTip(f"kbuilder sees {inferred}: {reason}." if reason else "")
        self.columns.item(row, COL_ROLE).setToolTip(combo.toolTip())
        self.columns.item(row, COL_ROLE).setData(column.name, Qt.ItemDataRole.UserRole)
        combo.currentIndexChanged.connect(self._on_control_changed)
        self.columns_view.setIndexWidget(self.columns.index(row, COL_ROLE), combo)

    def role_combo(self, name: str) -> QComboBox | None:
        """The role chooser of column ``name`` (None: no such column shown)."""
        for row in range(self.columns.rowCount()):
            if self.columns.item(row, COL_NAME).text() == name:
                return self.columns_view.indexWidget(self.columns.index(row, COL_ROLE))
        return None

    def _role_choices(self, path: str) -> tuple[tuple[str, str], ...]:
        if self.csv is None or self.csv.path != path:
            return ()
        chosen = []
        for row in range(self.columns.rowCount()):
            combo = self.columns_view.indexWidget(self.columns.index(row, COL_ROLE))
            if combo is not None and combo.currentData() is not None:
                chosen.append((self.columns.item(row, COL_NAME).text(), combo.currentData()))
        return tuple(chosen)

    # ======================================================= messy categories
    def _suggested_merges(self, csv: CsvPreview | None) -> tuple[tuple[str, str, str], ...]:
        if csv is None:
            return ()
        return tuple((c.name, value, becomes) for c in csv.columns if c.role is not None
                     for value, becomes in c.role.merges)

    def _show_merges(self, csv: CsvPreview | None) -> None:
        """Offer to merge spellings of one category (``M``/``male``/``Male``) in one
        click; once merged, offer to undo it."""
        if self._merges:
            self.merge_button.setText("Undo the merge of spellings")
            self.merge_note.setText("Merged: " + _merge_text(self._merges))
        else:
            suggested = self._suggested_merges(csv)
            self.merge_button.setText("Merge spellings of the same category")
            self.merge_note.setText(
                "These look like one category written several ways: "
                + _merge_text(suggested) if suggested else "")
        shown = bool(self._merges) or bool(self._suggested_merges(csv))
        self.merge_button.setVisible(shown)
        self.merge_note.setVisible(shown)

    def _on_merge_clicked(self) -> None:
        self._merges = () if self._merges else self._suggested_merges(self.csv)
        self._show_merges(self.csv)
        self.chosen.emit()  # load at once: the user asked for it

    def _mark_target(self, target: str | None) -> None:
        for row in range(self.columns.rowCount()):
            name = self.columns.item(row, COL_NAME).text()
            use = self.columns.item(row, COL_USE)
            is_target = name == target
            use.setEnabled(not is_target)
            use.setText("target" if is_target else "")
            use.setToolTip("The model predicts this column" if is_target else
                           use.data(LEFT_OUT_ROLE) or
                           "Give this column to the model as a feature")

    def _on_target_changed(self, _index: int) -> None:
        if self._updating:
            return
        self._updating = True
        self._mark_target(self.target_combo.currentData())
        self._updating = False
        self._on_control_changed()

    def _on_column_item_changed(self, _item: QStandardItem) -> None:
        if not self._updating:
            self._on_control_changed()

    def _column_choices(self, path: str) -> tuple[str | None, tuple[str, ...] | None,
                                                  tuple[str, ...]]:
        """(target, features, categorical) from the column table, for the file ``path``."""
        if self.csv is None or self.csv.path != path:
            return None, None, ()  # columns not known yet: the loader's defaults
        target = self.target_combo.currentData()
        used, categorical, as_default = [], [], True
        for row in range(self.columns.rowCount()):
            name = self.columns.item(row, COL_NAME).text()
            if name == target:
                continue
            use = self.columns.item(row, COL_USE)
            ticked = use.checkState() == Qt.CheckState.Checked
            if ticked:
                used.append(name)
            # The loader's defaults: every column but those it leaves out by itself.
            as_default &= ticked == (use.data(LEFT_OUT_ROLE) is None)
            cat = self.columns.item(row, COL_CATEGORICAL)
            # Text columns are categorical anyway; only the user's choices are stored.
            if cat.isEnabled() and cat.checkState() == Qt.CheckState.Checked:
                categorical.append(name)
        return target, None if as_default else tuple(used), tuple(categorical)

    # ================================================================== theme
    def _on_theme(self) -> None:
        if self.csv is not None:  # the colour of "mixed" column types
            self.show_columns(self.csv, self.settings_or_none())


def _merge_text(merges: tuple[tuple[str, str, str], ...]) -> str:
    """``sex: M, Male → male; F → female``."""
    by_target: dict[tuple[str, str], list[str]] = {}
    for column, value, becomes in merges:
        by_target.setdefault((column, becomes), []).append(value)
    parts = [f"{column}: {', '.join(repr(v) for v in values)} → {becomes!r}"
             for (column, becomes), values in by_target.items()]
    return "; ".join(parts) + "."


__all__ = ["QtDataSourceForm"]
