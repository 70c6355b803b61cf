#!/usr/bin/env bash
# Regenerates the app and tray icons (needs ImageMagick's `convert`).
# The mark: a main line with a branch leaving it at a switch (amber dot),
# white on a rounded square, so it reads on light and dark trays alike.
set -euo pipefail
cd "$(dirname "$0")"

# The branch is a cubic curve, drawn as a fine polyline (ImageMagick 6
# strokes wide Bezier paths badly).
branch=$(python3 -c '
p = [(200, 336), (200, 220), (336, 200), (336, 72)]
pts = []
for i in range(49):
    t = i / 48
    c = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3]
    pts.append("%.1f,%.1f" % (sum(k * q[0] for k, q in zip(c, p)), sum(k * q[1] for k, q in zip(c, p))))
print(" ".join(pts))')

render() { # background, dot colour, size, output file
  convert -size 512x512 xc:none \
    -fill "$1" -stroke 'rgba(255,255,255,0.18)' -strokewidth 8 \
    -draw 'roundrectangle 16,16 495,495 108,108' \
    -fill none -stroke white -strokewidth 60 \
    -draw "stroke-linecap round stroke-linejoin round line 200,440 200,72" \
    -draw "stroke-linecap round stroke-linejoin round polyline $branch" \
    -fill "$2" -stroke white -strokewidth 14 \
    -draw 'circle 200,336 244,336' \
    -filter Lanczos -resize "$3x$3" -strip "PNG32:$4"
}

render '#0f766e' '#f59e0b' 512 icon.png
render '#0f766e' '#f59e0b' 256 256x256.png
render '#0f766e' '#f59e0b' 128 128x128.png
render '#0f766e' '#f59e0b' 64 64x64.png
render '#0f766e' '#f59e0b' 48 48x48.png
render '#0f766e' '#f59e0b' 32 32x32.png
# The tray icon while the gateway is paused: the same mark, greyed.
render '#6b7280' '#d1d5db' 32 tray-paused.png
convert icon.png -define icon:auto-resize=256,128,64,48,32,16 icon.ico
