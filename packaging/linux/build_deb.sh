#!/usr/bin/env bash
# Build the .deb from the PyInstaller bundle.
#
# Usage: packaging/linux/build_deb.sh [BUNDLE_DIR] [OUT_DIR]
#   BUNDLE_DIR  the bundle folder PyInstaller made (default: dist/kbuilder)
#   OUT_DIR     where the .deb is written (default: dist)
# Needs dpkg-deb (Debian's dpkg) and packaging/icon.py's icons in build/icons.
#
# The package installs:
#   /opt/kbuilder/                         the bundle (Python, Qt, keras, TensorFlow, ...)
#   /usr/bin/kbuilder                      a launcher script for menus and terminals
#   /usr/share/applications/kbuilder.desktop
#   /usr/share/icons/hicolor/NxN/apps/kbuilder.png
#   /usr/share/mime/packages/kbuilder.xml  .kbproj files open with kbuilder
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bundle="${1:-$root/dist/kbuilder}"
out="${2:-$root/dist}"
icons="$root/build/icons"

version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$root/kbuilder/__init__.py")"
arch="$(dpkg --print-architecture)"
stage="$root/build/deb/kbuilder_${version}_${arch}"

[ -x "$bundle/kbuilder" ] || { echo "build_deb.sh: no bundle at $bundle (run pyinstaller first)" >&2; exit 2; }
[ -f "$icons/kbuilder-256.png" ] || { echo "build_deb.sh: no icons in $icons (run packaging/icon.py)" >&2; exit 2; }

rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/usr/share/applications" \
    "$stage/usr/share/mime/packages" "$stage/usr/share/doc/kbuilder"
cp -a "$bundle" "$stage/opt/kbuilder"
install -m 0755 "$here/launcher.sh" "$stage/usr/bin/kbuilder"
install -m 0644 "$here/kbuilder.desktop" "$stage/usr/share/applications/kbuilder.desktop"
install -m 0644 "$here/kbuilder-mime.xml" "$stage/usr/share/mime/packages/kbuilder.xml"
for size in 16 32 48 64 128 256 512; do
    dir="$stage/usr/share/icons/hicolor/${size}x${size}/apps"
    mkdir -p "$dir"
    install -m 0644 "$icons/kbuilder-$size.png" "$dir/kbuilder.png"
done
cat > "$stage/usr/share/doc/kbuilder/copyright" <<COPYRIGHT
kbuilder $version, with Python, Qt (PySide6, LGPLv3), TensorFlow, Keras, ONNX Runtime,
OpenVINO and their dependencies, each under its own license (see the *.dist-info folders
in /opt/kbuilder/_internal).
kbuilder itself: Apache License 2.0 (/usr/share/common-licenses/Apache-2.0).
COPYRIGHT
install -m 0755 "$here/postinst" "$here/postrm" "$stage/DEBIAN/"

# The bundle brings its own Python and Qt; the system gives the C library, X11/Wayland
# client libraries and OpenGL that Qt's xcb platform loads (the README's list).
depends="libc6 (>= 2.36), libxcb-cursor0, libxkbcommon-x11-0, libxcb-icccm4, libxcb-image0, \
libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xinerama0, \
libxcb-xkb1, libegl1, libgl1, libfontconfig1, libdbus-1-3"
installed_kb="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: kbuilder
Version: $version
Architecture: $arch
Maintainer: kbuilder developers <kbuilder@localhost>
Installed-Size: $installed_kb
Depends: $depends
Recommends: desktop-file-utils, shared-mime-info
Section: science
Priority: optional
Description: build, train and export Keras models visually
 kbuilder is a desktop application for domain experts: drag layers onto a
 canvas, wire them, train on your data with live curves, and leave with a
 .keras file, an ONNX/OpenVINO/SavedModel/LiteRT export or readable Python.
 This package bundles Python, Qt, Keras and TensorFlow (CPU); it works offline.
CONTROL

mkdir -p "$out"
deb="$out/kbuilder_${version}_${arch}.deb"
# --root-owner-group: files owned by root without fakeroot. zstd -9: ~15x faster than xz -6
# for ~15% more bytes (measured on libtensorflow_cc); every dpkg that can run this bundle
# (glibc >= 2.36: Debian 12, Ubuntu 22.10 and newer) reads it.
dpkg-deb --root-owner-group -Zzstd -z9 --threads-max=2 --build "$stage" "$deb"
echo "$deb"
