#!/usr/bin/env bash
# macOS: kbuilder.app (from the spec's BUNDLE step) and kbuilder-VERSION.dmg.
#
# Run on a Mac from the repository root, with kbuilder's dependencies and the `package`
# extra installed (python -m pip install -c constraints.txt -e ".[package]"); it cannot be
# built on Linux. See packaging/README.md.
#   packaging/macos/build_dmg.sh [PYTHON]
# Output: dist/kbuilder.app and dist/kbuilder-VERSION.dmg (a window with the app and a link
# to /Applications to drag it onto). Uses create-dmg when installed (brew install
# create-dmg) for the prettier window, else hdiutil, which every Mac has.
#
# Signing and notarization (needed for Gatekeeper to open the app without a warning) need
# an Apple Developer ID; set CODESIGN_IDENTITY to sign the app and the image:
#   CODESIGN_IDENTITY="Developer ID Application: NAME (TEAM)" packaging/macos/build_dmg.sh
# then notarize: xcrun notarytool submit dist/kbuilder-VERSION.dmg --wait ... and
# xcrun stapler staple dist/kbuilder-VERSION.dmg
set -euo pipefail
cd "$(dirname "$0")/../.."
python="${1:-.venv/bin/python}"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' kbuilder/__init__.py)"

"$python" packaging/icon.py build/icons >/dev/null
"$python" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller \
    packaging/kbuilder.spec
app=dist/kbuilder.app
[ -d "$app" ] || { echo "build_dmg.sh: PyInstaller made no $app" >&2; exit 1; }

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --deep --force --options runtime --timestamp \
        --sign "$CODESIGN_IDENTITY" "$app"
fi

dmg="dist/kbuilder-$version.dmg"
rm -f "$dmg"
if command -v create-dmg >/dev/null; then
    create-dmg --volname "kbuilder $version" --volicon build/icons/kbuilder.icns \
        --window-size 540 360 --icon-size 112 --icon kbuilder.app 140 170 \
        --app-drop-link 400 170 --hide-extension kbuilder.app "$dmg" "$app"
else
    staging="build/dmg"
    rm -rf "$staging" && mkdir -p "$staging"
    cp -R "$app" "$staging/"
    ln -s /Applications "$staging/Applications"
    hdiutil create -volname "kbuilder $version" -srcfolder "$staging" -ov \
        -format UDZO "$dmg"
fi
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --sign "$CODESIGN_IDENTITY" "$dmg"
fi
echo "$dmg"
