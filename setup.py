"""The one thing pyproject.toml cannot say: install the top-level resources/ folder (icons,
style sheets, the application icon) as the package folder kbuilder/resources/.

Everything else about the package is in pyproject.toml. kbuilder/ui/shell/resources.py finds the
files in either place (and in the PyInstaller bundle).
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
RESOURCES = "resources"
PACKAGE = "kbuilder.resources"

# Each folder of resources/ is listed as a package of its own (data only, no __init__.py):
# setuptools warns about data folders that look like packages but are not listed.
resource_packages = [PACKAGE] + [
    ".".join([PACKAGE, *folder.relative_to(ROOT / RESOURCES).parts])
    for folder in sorted((ROOT / RESOURCES).rglob("*")) if folder.is_dir()
]

setup(
    packages=find_packages(include=["kbuilder", "kbuilder.*"]) + resource_packages,
    package_dir={PACKAGE: RESOURCES},
    package_data={package: ["*"] for package in resource_packages},
)
