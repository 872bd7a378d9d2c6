#!/usr/bin/env bash
# Reproduces samples/template/canonical_face.obj from the npm packages
# @mediapipe/face_mesh@0.4.1657299874 (Apache-2.0) and @vladmandic/human@3.3.6 (MIT).
# Needs npm and python3 (standard library only). Usage: scripts/import-template.sh [OUT.obj]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-samples/template/canonical_face.obj}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent @mediapipe/face_mesh@0.4.1657299874 @vladmandic/human@3.3.6 >/dev/null)
mkdir -p "$TMP/mp" "$TMP/human"
tar xzf "$TMP"/mediapipe-face_mesh-0.4.1657299874.tgz -C "$TMP/mp"
tar xzf "$TMP"/vladmandic-human-3.3.6.tgz -C "$TMP/human" package/src/face/facemeshcoords.ts package/LICENSE
python3 scripts/import_template.py --mediapipe "$TMP/mp/package" --human "$TMP/human/package" --out "$OUT"
# Licence texts kept beside the derived file.
DIR=$(dirname "$OUT")
cp "$TMP/human/package/LICENSE" "$DIR/LICENSE-MIT"
cp /usr/share/common-licenses/Apache-2.0 "$DIR/LICENSE-APACHE-2.0"
