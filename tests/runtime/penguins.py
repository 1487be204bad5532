"""Generated tables in physical units, seeded, no download.

``penguins_csv``: like the Palmer penguins, three species told apart by measurements (a
body mass of ~4,000 g), two text columns that say nothing about the species, and a few
missing values. ``cars_csv``: a regression of fuel consumption on weight, power and year.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

COLUMNS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g",
           "sex", "species"]
# species, count, then the mean bill length, bill depth, flipper length and body mass.
SPECIES = (("Adelie", 152, 38.8, 18.3, 190.0, 3700.0),
           ("Gentoo", 124, 47.5, 15.0, 217.0, 5076.0),
           ("Chinstrap", 68, 48.8, 18.4, 196.0, 3733.0))
SPREAD = (1.5, 0.6, 4.0, 250.0)


def penguins_csv(path: Path, seed: int = 0, missing: int = 10) -> Path:
    """Write the table (344 rows, 44 % of them the most common species) to ``path``."""
    rng = np.random.default_rng(seed)
    rows: list[list[object]] = []
    for name, count, *means in SPECIES:
        for _ in range(count):
            values = [round(float(rng.normal(m, s)), 1) for m, s in zip(means, SPREAD,
                                                                        strict=True)]
            rows.append([str(rng.choice(["Biscoe", "Dream", "Torgersen"])), *values,
                         str(rng.choice(["male", "female"])), name])
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    for row in rows[:missing]:  # a measurement missing here and there
        row[1 + int(rng.integers(4))] = ""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def cars_csv(path: Path, seed: int = 0, rows: int = 300) -> Path:
    """A regression table: fuel consumption (l/100 km) from weight in kg, power in kW,
    the model year and the fuel (text), nearly linear, with a little noise."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(1400, 300, rows).round()
    power = rng.normal(90, 30, rows).round(1)
    year = rng.integers(2000, 2021, rows)
    fuel = rng.choice(["petrol", "diesel"], rows)
    consumption = (1.5 + 0.004 * weight + 0.02 * power - 0.1 * (year - 2000)
                   - 0.8 * (fuel == "diesel") + rng.normal(0, 0.2, rows)).round(2)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["weight_kg", "power_kw", "year", "fuel", "consumption"])
        writer.writerows(zip(weight, power, year, fuel, consumption, strict=True))
    return path
