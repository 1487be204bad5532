"""The data panel's table page: a CSV, TSV, Parquet or Excel file and its columns.

How the file is read (header row, delimiter, decimal mark, encoding, sheet, streaming),
which column is the target, which columns are used and in which role, the merging of
spellings of one category, and for a column of image paths which Input takes it. The page
describes the table's part of ``DataSettings``; the source form (``data_source``) adds
the split and, for image paths, how images are read.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.settings import ROLE_CHOICES, DataSettings, SettingsError, parse_table_spec
from kbuilder.graph.stream_choice import StreamChoice, stream_choice
from kbuilder.ui.data.array_mapping import QtArrayMapping
from kbuilder.ui.data.path_row import dialogs_of, path_row, start_folder
from kbuilder.ui.shell import theme

if TYPE_CHECKING:
    from kbuilder.runtime.data.preview import CsvPreview

# From this size on, the CSV page suggests streaming the table (it may not fit in memory).
STREAM_CHOICES = (("Automatic (by the file's size)", "auto"), ("Stream from disk", True),
                  ("Read whole", False))
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
# Columns of the CSV column table.
COL_NAME, COL_TYPE, COL_USE, COL_CATEGORICAL, COL_ROLE = range(5)
# On the "Use" item: why the loader leaves the column out by default (None: it uses it).
LEFT_OUT_ROLE = Qt.ItemDataRole.UserRole + 1


class QtTableSource(QWidget):
    """The table page of the source form.

    Signals:
        edited(): the user changed a control (load after a pause: more may follow).
        chosen(): the user chose a file or asked for a merge (load at once).
    """

    edited = Signal()
    chosen = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        page = self
        self.csv: CsvPreview | None = None  # the file whose columns the table shows
        self._updating = False  # controls set by code, not by the user
        self.csv_path, self.csv_choose, row = path_row(page, "No file chosen",
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
        self.stream_combo = self._choice_combo(
            page, STREAM_CHOICES,
            "Stream from disk: read the table in blocks instead of whole, so memory does not "
            "grow with its size. It costs a second pass over the file (the first computes "
            "the statistics, categories and classes), the column roles are judged on the "
            "first block, and each row's split follows from a hash of its line and the seed "
            "instead of a stratified shuffle. Automatic streams a file that read whole "
            "would take more than a quarter of this computer's memory.")
        self.stream_note = QLabel(page)  # which way the table is read, and why
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
        reading.addRow("Stream", self.stream_combo)
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
        theme.manager().changed.connect(self._on_theme)

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


    def _on_control_changed(self, *_args: Any) -> None:
        if self.sender() is self.stream_combo:
            self._show_stream_note(self.csv_path.text())
        if not self._updating:
            self.edited.emit()

    # ============================================================= settings
    def set_settings(self, settings: DataSettings) -> None:
        """Show the table part of ``settings`` (none when they name no table)."""
        updating, self._updating = self._updating, True
        try:
            table = settings.table() if settings.kind == "csv" else None
            self.csv_path.setText(table.path if table else "")
            self._select(self.header_combo, table.header if table else None)
            self._select(self.delimiter_combo, table.delimiter if table else None)
            self._select(self.decimal_combo, table.decimal if table else None)
            self._select(self.encoding_combo, table.encoding if table else None)
            self.sheet_edit.setText((table.sheet or "") if table else "")
            self._select(self.stream_combo, settings.stream_table if table else "auto")
            self._show_stream_note(table.path if table else "")
            self._merges = tuple(settings.merges)
            self.column_mapping.set_mapping(settings.input_arrays if table else (), ())
            if table is None or (self.csv is not None and self.csv.path != table.path):
                self.show_columns(None, settings)
        finally:
            self._updating = updating

    def settings_fields(self, images: dict[str, Any]) -> dict[str, Any] | None:
        """The table's ``DataSettings`` fields; ``None`` while no file is chosen.

        Args:
            images: how images are read (size, colour, skipping, cache), used when a
                column holds image paths.
        """
        path = self.csv_path.text()
        if not path:
            return None
        target, features, categorical = self._column_choices(path)
        fields = dict(
            source=f"csv:{path}", target=target, features=features,
            categorical=categorical, header=self.header_combo.currentData(),
            delimiter=self.delimiter_combo.currentData(),
            decimal=self.decimal_combo.currentData(),
            encoding=self.encoding_combo.currentData(),
            sheet=self.sheet_edit.text().strip() or None,
            roles=self._role_choices(path), merges=self._merges,
            stream_table=self.stream_combo.currentData())
        if self.column_mapping.isVisibleTo(self):  # a column of image paths
            fields.update(images, input_arrays=self.column_mapping.mapping()[0])
        return fields

    # ============================================================= choosers
    def choose_csv(self) -> None:
        path = dialogs_of(self).ask_open_path("Choose a CSV file", CSV_FILTER,
                                             start_folder(self.csv_path.text()))
        if path:
            self._updating = True
            self.csv_path.setText(path)
            self._merges = ()
            self._show_stream_note(path)
            self.show_columns(None, None)  # a new file: its own columns, target unset
            self._updating = False
            self.chosen.emit()

    def stream_choice(self, path: str | None = None) -> StreamChoice | None:
        """How the chosen table is read (streamed or whole, and why); ``None`` without one."""
        path = self.csv_path.text() if path is None else path
        if not path:
            return None
        try:
            spec = parse_table_spec(f"csv:{path}")
        except SettingsError:
            return None
        spec = dataclasses.replace(spec, stream=self.stream_combo.currentData())
        return stream_choice(spec)

    def _show_stream_note(self, path: str) -> None:
        """Say which way the table is read: streamed or whole, and why (``stream=auto``:
        by its size against the computer's memory)."""
        choice = self.stream_choice(path)
        if choice is not None:
            self.stream_note.setText(choice.sentence(Path(path).name))
        self.stream_note.setVisible(choice is not None)

    # ========================================================== columns
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
        if self.csv is None:
            return
        fields = self.settings_fields({})  # the colour of "mixed" column types, same choices
        try:
            settings = DataSettings(**fields) if fields else None
        except SettingsError:
            settings = None
        self.show_columns(self.csv, settings)


def _merge_text(merges: tuple[tuple[str, str, str], ...]) -> str:
    """``sex: M, Male → male; F → female``."""
    by_target: dict[tuple[str, str], list[str]] = {}
    for column, value, becomes in merges:
        by_target.setdefault((column, becomes), []).append(value)
    parts = [f"{column}: {', '.join(repr(v) for v in values)} → {becomes!r}"
             for (column, becomes), values in by_target.items()]
    return "; ".join(parts) + "."


__all__ = ["QtTableSource"]
