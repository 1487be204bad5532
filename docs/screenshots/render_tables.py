"""Render data-roles.png and input-stage.png: a messy table in the Data tab, then the model
fitted to it with its preprocessing as nodes.

Run: .venv/bin/python docs/screenshots/render_tables.py
The table is generated (penguin-like measurements in physical units, missing values, text
categories spelled several ways, an id column and a date).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from render import HERE, new_window, settle  # the README's renderer, beside this file

sys.path.insert(0, str(HERE.parents[1]))

from kbuilder.ui.app import create_application  # noqa: E402


def messy_csv(path: Path) -> Path:
    rng = np.random.default_rng(3)
    species = ["Adelie", "Chinstrap", "Gentoo"]
    sexes = ["male", "Male", "M", "female", "Female ", "F", ""]
    rows = ["sample_id;island;sex;bill_mm;flipper_mm;body_mass_g;measured_on;species"]
    for i in range(240):
        k = i % 3
        mass = "" if i % 17 == 0 else f"{3700 + 600 * k + rng.normal(0, 250):.0f}"
        rows.append(";".join([
            f"P{1000 + i}", ["Torgersen", "Dream", "Biscoe"][(i + k) % 3],
            sexes[i % len(sexes)], f"{38 + 5 * k + rng.normal(0, 2):.1f}".replace(".", ","),
            f"{190 + 12 * k + rng.normal(0, 5):.0f}", mass,
            f"2024-0{1 + i % 9}-{10 + i % 18}", species[k]]))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def main() -> None:
    app = create_application()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        window = new_window(folder)
        window.dialogs.unsaved = "discard"
        window.new_from_template("mlp_classifier")
        page = window.data_page
        window._show_page(page)
        assert page.wait(300)
        window.dialogs.open_path = str(messy_csv(folder / "penguins.csv"))
        page.source.kind_combo.setCurrentIndex(page.source.kind_combo.findData("csv"))
        page.source.csv_choose.click()
        assert page.wait(300), page.error
        page.source.target_combo.setCurrentIndex(page.source.target_combo.findData("species"))
        assert page.wait(300), page.error
        settle(app, window)
        window.grab().save(str(HERE / "data-roles.png"))
        page.checks.fit_button.click()
        assert page.wait(300), page.error
        window._show_page(window.model_page)
        window.editor.view.fit(window.editor.scene.itemsBoundingRect().adjusted(-40, -40, 40, 40))
        for _ in range(30):  # the summary is recomputed in the background after an edit
            settle(app, window)
            time.sleep(0.1)
        window.grab().save(str(HERE / "input-stage.png"))
        window.close()
    print("screenshots written to", HERE)


if __name__ == "__main__":
    main()
