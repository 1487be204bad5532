"""Which sample the Inside view looks at (issue 17): a sample of the run's test split, a
file (an image, a folder of images, or a row of a table file, raw as in the training
file), or a row of the training table's columns edited by hand (small tables: one
editable row, raw values — the model's encoder reads it as it reads prediction files).

No keras here: the chosen sample travels to the worker as ``inputs_path`` (a file; an
edited row is written as a one-row CSV with the training file's header) or as ``data``
and ``first``, the fields ``StartActivations``/``StartExplanation`` take.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder.files import atomic_write
from kbuilder.graph.settings import TABLE_SUFFIXES, DataSettings, SettingsError, parse_table_spec

SOURCES = ("Test split", "A file", "An edited row")
# An edited row is offered for tables of at most this many columns (a row to type in).
MAX_EDITED_COLUMNS = 40
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True)
class Chosen:
    """The request fields that name the sample, and the words for the caption."""

    inputs_path: str | None
    data: dict[str, Any] | None
    first: int


class QtSampleChooser(QWidget):
    """See the module docstring. ``set_data`` gives it the run's data settings."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data: dict[str, Any] = {}
        self.file: Path | None = None
        self.columns: list[str] = []  # the training table's columns (the target left out)
        self._table_file: Path | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sample", self))
        self.source = QComboBox(self)
        self.source.addItems(SOURCES)
        self.source.setToolTip("Where the sample comes from: the run's test split, a file "
                               "(an image, a folder of images or a table of rows as in the "
                               "training file), or a row of the training table edited here")
        self.source.currentIndexChanged.connect(self._on_source)
        row.addWidget(self.source)
        self.sample = QSpinBox(self)
        self.sample.setRange(1, 1_000_000)
        self.sample.setToolTip("The sample: of the run's test split (1 is the first, as in "
                               "the Evaluation tab's samples), or the row (image) of the file")
        row.addWidget(self.sample)
        self.file_button = QPushButton("Choose File…", self)
        self.file_button.setToolTip("An image, a folder of images, or a table file with the "
                                    "training file's columns")
        self.file_button.clicked.connect(lambda: self.choose_file())
        row.addWidget(self.file_button)
        self.file_label = QLabel("", self)
        self.file_label.setObjectName("muted")
        row.addWidget(self.file_label, 1)
        self.fill_button = QPushButton("Fill From Row", self)
        self.fill_button.setToolTip("Fill the edited row with the training file's row of "
                                    "this number")
        self.fill_button.clicked.connect(lambda: self.fill_from_row(self.sample.value()))
        row.addWidget(self.fill_button)
        layout.addLayout(row)
        self.editor = QTableWidget(1, 0, self)
        self.editor.setToolTip("The row's values as in the training file (raw: numbers as "
                               "written, categories as words); the model encodes them")
        self.editor.verticalHeader().setVisible(False)
        self.editor.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.editor.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.editor.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout.addWidget(self.editor)
        self._on_source()

    # ================================================================ the data
    def set_data(self, data: dict[str, Any] | None) -> None:
        """The run's (or project's) data settings; an edited row is offered for a table
        file with a header and at most ``MAX_EDITED_COLUMNS`` columns."""
        self.data = dict(data or {})
        table = self._training_table()
        if table != self._table_file:
            self._table_file = table
            self.columns = self._header(table) if table else []
            self.editor.setColumnCount(len(self.columns))
            self.editor.setHorizontalHeaderLabels(self.columns)
            self._fit_editor()
            if self.columns:
                self.fill_from_row(1)
        item = self.source.model().item(2)
        item.setEnabled(bool(self.columns))
        if not self.columns and self.source.currentIndex() == 2:
            self.source.setCurrentIndex(0)

    def _fit_editor(self) -> None:
        """Exactly the header and the one row high (known once the columns are)."""
        self.editor.resizeRowsToContents()
        self.editor.setFixedHeight(self.editor.horizontalHeader().sizeHint().height()
                                   + self.editor.rowHeight(0) + 2 * self.editor.frameWidth()
                                   + 2)

    def _training_table(self) -> Path | None:
        source = str(self.data.get("source") or "")
        try:
            settings = DataSettings.from_dict(self.data) if source else None
        except SettingsError:
            return None
        if settings is None or settings.kind not in ("csv", "tsv"):
            return None
        try:
            path = Path(parse_table_spec(source).path)
        except (SettingsError, ValueError):
            return None
        return path if path.is_file() else None

    def _target(self) -> str | None:
        try:
            return parse_table_spec(str(self.data.get("source"))).target or \
                self.data.get("target")
        except (SettingsError, ValueError):
            return self.data.get("target")

    def _header(self, path: Path) -> list[str]:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            header = next(csv.reader(f, dialect=self._dialect(path)), [])
        target = self._target() or (header[-1] if header else None)
        columns = [c for c in header if c != target]
        return columns if 0 < len(columns) <= MAX_EDITED_COLUMNS else []

    @staticmethod
    def _dialect(path: Path) -> Any:
        return csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel

    # ================================================================ choosing
    def _on_source(self) -> None:
        index = self.source.currentIndex()
        self.file_button.setVisible(index == 1)
        self.file_label.setVisible(index == 1)
        self.fill_button.setVisible(index == 2)
        self.editor.setVisible(index == 2)
        self.sample.setEnabled(index != 1 or self._file_has_rows())

    def _file_has_rows(self) -> bool:
        return self.file is not None and (self.file.is_dir() or
                                          self.file.suffix.lower() not in IMAGE_SUFFIXES)

    def choose_file(self, path: str | None = None) -> bool:
        """Look at ``path`` (asked for when None); False when none was chosen."""
        if path is None:
            suffixes = " ".join(f"*{s}" for s in (*IMAGE_SUFFIXES, *TABLE_SUFFIXES,
                                                  ".npy", ".npz"))
            path, _ = QFileDialog.getOpenFileName(self, "Choose a sample",
                                                  "", f"Images and tables ({suffixes})")
        if not path:
            return False
        self.file = Path(path)
        self.file_label.setText(self.file.name)
        self.source.setCurrentIndex(1)
        self._on_source()
        return True

    def fill_from_row(self, row: int) -> None:
        """The edited row's cells from row ``row`` (1-based) of the training file."""
        if not self._table_file:
            return
        with open(self._table_file, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.DictReader(f, dialect=self._dialect(self._table_file))
            values: dict[str, str] = {}
            for number, line in enumerate(reader, start=1):
                if number == row:
                    values = {k: v or "" for k, v in line.items() if k is not None}
                    break
        self.set_row(values)

    def set_row(self, values: dict[str, Any]) -> None:
        """Put ``values`` (column -> value) into the edited row (others left empty)."""
        for j, column in enumerate(self.columns):
            self.editor.setItem(0, j, QTableWidgetItem(str(values.get(column, ""))))

    def row(self) -> dict[str, str]:
        """The edited row, column -> text."""
        return {c: (self.editor.item(0, j).text() if self.editor.item(0, j) else "")
                for j, c in enumerate(self.columns)}

    # ================================================================ the request
    def chosen(self, folder: Path) -> Chosen:
        """The request fields for the chosen sample; an edited row is written into
        ``folder`` (made if need be). Raises ``ValueError`` with a sentence when a file
        is wanted and none is chosen."""
        index = self.source.currentIndex()
        if index == 1:
            if self.file is None:
                raise ValueError("Choose the file to take the sample from (Choose File…).")
            first = self.sample.value() - 1 if self._file_has_rows() else 0
            return Chosen(str(self.file), None, first)
        if index == 2:
            import io

            folder.mkdir(parents=True, exist_ok=True)
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerow(self.row().values())
            path = folder / "edited_row.csv"
            atomic_write(path, text.getvalue())
            return Chosen(str(path), None, 0)
        return Chosen(None, dict(self.data), self.sample.value() - 1)

    def words(self) -> str:
        """What the sample is, for a tooltip or caption."""
        index = self.source.currentIndex()
        if index == 1 and self.file is not None:
            return f"{self.file.name}" + (f", row {self.sample.value()}"
                                          if self._file_has_rows() else "")
        if index == 2:
            return "the edited row"
        return f"sample {self.sample.value()} of the test split"
