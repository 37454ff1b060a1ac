#!/bin/bash
# report.html in a real browser: builds a comparison report with `cnnkit report`, renders it offline in
# headless Chromium to a 1280x2000 PNG, and checks the page really rendered: the expected size, many
# colours, mostly not background, and the embedded confusion-matrix heatmap visible (its dark blue cells).
set -u
BIN=${CNK_BIN:?CNK_BIN must point to the cnnkit binary}
FIX=${CNK_FIXTURES:?CNK_FIXTURES must point to tests/fixtures}/metrics
PY=/usr/bin/python3
CHROMIUM=${CNK_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "FAIL: $CHROMIUM not found: install Debian's chromium package (make test's set-up does)" >&2
    exit 1
fi
WORK=${CNK_BUILD_DIR:-.}/tmp-report-browser-$$
rm -rf "$WORK" && mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
PROFILE=$(mktemp -d)
trap 'rm -rf "$WORK" "$PROFILE"' EXIT

"$BIN" report "$FIX/random_3.csv" "$FIX/unicode.csv" "$FIX/quoted.csv" --names 'fusion,audio <branch>,image' \
    --title 'Browser check & <escaping>' -o "$WORK/report" -q || { echo "FAIL: cnnkit report failed" >&2; exit 1; }

shot="$WORK/shot.png"
timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$PROFILE" \
    --screenshot="$shot" --window-size=1280,2000 "file://$WORK/report/report.html" >"$WORK/chromium.log" 2>&1
if [ ! -s "$shot" ]; then
    echo "FAIL: Chromium wrote no screenshot; its output:" >&2
    tail -20 "$WORK/chromium.log" >&2
    exit 1
fi
# Keep the last screenshot for people to look at.
cp "$shot" "${CNK_BUILD_DIR:-.}/report_browser_screenshot.png" 2>/dev/null

$PY - "$shot" <<'EOF'
import struct, sys, zlib

def read_png(path):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG with zlib alone (no imaging library needed)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if filt == 1: line[i] = (line[i] + a) & 255
            elif filt == 2: line[i] = (line[i] + b) & 255
            elif filt == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows

width, height, bpp, rows = read_png(sys.argv[1])
problems = []
if (width, height) != (1280, 2000):
    problems.append("screenshot is %dx%d, expected 1280x2000" % (width, height))
colors, background, navy = set(), 0, 0
bg = tuple(rows[5][5 * bpp:5 * bpp + 3])
for row in rows:
    for x in range(0, width * bpp, bpp):
        px = (row[x], row[x + 1], row[x + 2])
        colors.add(px)
        background += px == bg
        # The heatmap's dark cells; the page's own blue text is lighter and far smaller in area.
        navy += px[0] < 60 and px[1] < 110 and px[2] > 90 and px[2] - px[0] > 60
total = width * height
print("size %dx%d, %d colours, %.1f%% background %s, %d heatmap-blue pixels"
      % (width, height, len(colors), 100.0 * background / total, bg, navy))
if len(colors) < 200:
    problems.append("only %d distinct colours: the page looks blank" % len(colors))
if background > 0.9 * total:
    problems.append("%.1f%% of the page is background" % (100.0 * background / total))
if navy < 15000:
    problems.append("the confusion-matrix chart is not visible (%d dark blue pixels)" % navy)
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
