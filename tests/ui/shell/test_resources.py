"""Finding the resource files (kbuilder/ui/shell/resources.py) in a checkout, an installed wheel
and the PyInstaller bundle; the style sheets read from resources/styles/."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbuilder.ui.shell import resources, theme


def resource_folder(where: Path) -> Path:
    (where / "icons").mkdir(parents=True)
    (where / resources.MARKER).write_text("<svg/>")
    return where


def test_the_checkout_resources_are_found():
    root = resources.root()
    assert (root / "kbuilder.svg").is_file() and (root / "styles" / "app.qss").is_file()
    assert resources.path("icons/save.svg").parent == root / "icons"


def test_an_installed_wheel_uses_its_package_folder(tmp_path):
    site = tmp_path / "site-packages"
    package = site / "kbuilder"
    installed = resource_folder(package / "resources")
    # Another distribution's top-level "resources" folder beside kbuilder is not ours.
    (site / "resources").mkdir()
    assert resources.find_root(package) == installed


def test_a_checkout_uses_the_top_level_folder(tmp_path):
    package = tmp_path / "kbuilder"
    package.mkdir()
    top = resource_folder(tmp_path / "resources")
    assert resources.find_root(package) == top


def test_the_bundle_uses_its_own_folder_first(tmp_path):
    bundle = tmp_path / "_internal"
    inside = resource_folder(bundle / "kbuilder" / "resources")
    package = bundle / "kbuilder"
    resource_folder(tmp_path / "resources")  # a stray folder above the bundle
    assert resources.find_root(package, bundle=str(bundle)) == inside


def test_missing_resources_say_where_they_were_looked_for(tmp_path):
    package = tmp_path / "site-packages" / "kbuilder"
    package.mkdir(parents=True)
    with pytest.raises(resources.ResourceError) as caught:
        resources.find_root(package, bundle=str(tmp_path / "bundle"))
    message = str(caught.value)
    for place in resources.candidates(package, bundle=str(tmp_path / "bundle")):
        assert str(place) in message
    assert "Reinstall kbuilder" in message


def test_an_unknown_resource_is_named():
    with pytest.raises(resources.ResourceError, match="styles/nope.qss"):
        resources.path("styles/nope.qss")


@pytest.mark.parametrize("scheme", [theme.LIGHT, theme.DARK], ids=["light", "dark"])
def test_style_sheets_take_the_theme_colours(scheme):
    sheet = theme.style_sheet("app", scheme)
    assert f"color: {scheme.error.name()};" in sheet and "$" not in sheet
    assert scheme.card.name() in theme.style_sheet("gallery", scheme)
    code = theme.style_sheet("code_view", scheme, code_background="#010203",
                             code_text="#040506")
    assert "background: #010203" in code and "color: #040506" in code


def test_every_style_sheet_is_filled_in():
    extra = {"code_background": "#000000", "code_text": "#ffffff"}
    sheets = resources.names("styles", ".qss")
    assert {"app", "gallery", "code_view"} <= set(sheets)
    for name in sheets:
        assert "$" not in theme.style_sheet(name, theme.LIGHT, **extra), name


def test_a_style_sheet_placeholder_without_a_colour_is_named(monkeypatch):
    monkeypatch.setattr(resources, "text", lambda name: "QLabel { color: ${teal}; }")
    with pytest.raises(ValueError, match=r"app\.qss uses \$\{teal\}.*muted"):
        theme.style_sheet("app", theme.LIGHT)
