"""The data panel's source form: where the data comes from and how it is split.

Built-in datasets, a table (its page, with the columns: ``table_source``), NumPy files or
an image folder (size, colour mode), and the split fractions and seed. The form only
describes ``DataSettings``; the data page loads them and decides what is stored.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.settings import KERAS_DATASETS, SKLEARN_DATASETS, DataSettings, SettingsError
from kbuilder.ui.data.array_mapping import QtArrayMapping
from kbuilder.ui.data.path_row import dialogs_of, path_row, start_folder
from kbuilder.ui.data.table_source import QtTableSource

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
NUMPY_FILTER = "NumPy arrays (*.npz *.npy);;All files (*)"
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
        self._updating = False  # controls set by code, not by the user
        self.kind_combo = QComboBox(self)
        for kind, label in KINDS:
            self.kind_combo.addItem(label, kind)
        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        # One page per kind, only the current one shown. Not a QStackedWidget: that one
        # is as tall as its tallest page (the CSV page's column table).
        self.kind_pages = QWidget(self)
        self.table = QtTableSource(self)
        self.table.edited.connect(self._on_control_changed)
        self.table.chosen.connect(self.chosen)
        self._kind_widgets = [self._build_builtin(), self.table, self._build_npz(),
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

    def _build_npz(self) -> QWidget:
        page = QWidget(self)
        self.npz_path, self.npz_choose, row = path_row(page, "No file chosen", self.choose_npz)
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
        self.table.column_mapping.set_nodes(inputs, [])

    def _show_arrays(self, location: str) -> None:
        from kbuilder.runtime.data.arrays import array_groups, array_names

        names = array_names(location) if location else []
        self.array_mapping.set_arrays(list(array_groups(names)["train"]))

    def _build_images(self) -> QWidget:
        page = QWidget(self)
        self.images_path, self.images_choose, row = path_row(
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
            self.table.set_settings(settings)
            self.npz_path.setText(settings.location if kind == "npz" else "")
            self._show_arrays(settings.location if kind == "npz" else "")
            self.array_mapping.set_mapping(settings.input_arrays, settings.output_arrays)
            self.images_path.setText(settings.location if kind == "images" else "")
            self.height_spin.setValue(settings.image_size[0])
            self.width_spin.setValue(settings.image_size[1])
            self.color_combo.setCurrentIndex(self.color_combo.findData(settings.color_mode))
            self.skip_bad_check.setChecked(settings.skip_bad_images)
            self.cache_check.setChecked(settings.cache_images)
            self.validation_spin.setValue(settings.validation_split)
            self.test_spin.setValue(settings.test_split)
            self.seed_spin.setValue(settings.seed)
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
            fields = self.table.settings_fields(self._image_reading())
            if fields is None:
                return None
            settings = DataSettings(**fields, **common)
        elif kind == "npz":
            if not self.npz_path.text():
                return None
            inputs, outputs = self.array_mapping.mapping()
            settings = DataSettings(source=f"npz:{self.npz_path.text()}",
                                    input_arrays=inputs, output_arrays=outputs, **common)
        else:
            if not self.images_path.text():
                return None
            settings = DataSettings(source=f"images:{self.images_path.text()}",
                                    **self._image_reading(), **common)
        settings.validate()
        return settings

    def _image_reading(self) -> dict[str, Any]:
        """How images are read: for an image folder, and for a table's column of image
        paths (the image page's controls, as loaded from the project)."""
        return {"image_size": (self.height_spin.value(), self.width_spin.value()),
                "color_mode": self.color_combo.currentData(),
                "skip_bad_images": self.skip_bad_check.isChecked(),
                "cache_images": self.cache_check.isChecked()}

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
        choice = self.table.stream_choice() if self.kind_combo.currentData() == "csv" else None
        streamed = choice is not None and choice.stream
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
    def choose_npz(self) -> None:
        path = dialogs_of(self).ask_open_path("Choose a NumPy file", NUMPY_FILTER,
                                             start_folder(self.npz_path.text()))
        if path:
            self.npz_path.setText(path)
            self._show_arrays(path)
            self.chosen.emit()

    def choose_folder(self) -> None:
        path = dialogs_of(self).ask_folder("Choose a folder with one sub-folder per class",
                                          self.images_path.text())
        if path:
            self.images_path.setText(path)
            self.chosen.emit()


__all__ = ["QtDataSourceForm"]
