#!/bin/bash
# cnnkit as an installed library: `cmake --install` into a fresh temporary prefix, then
# - the prefix holds libcnnkit.so (with its SONAME chain), libcnnkit.a, the headers, bin/cnnkit, cnnkit.pc, the
#   CMake package, the man page and the bash completion; every public header compiles alone (C11 and C++);
# - libcnnkit.so exports exactly the CNK_API functions of the installed headers, nothing else, and libcnnkit.a
#   defines no other global symbol; the public status codes equal the internal ones;
# - `cnnkit --version`, `cnnkit help SUBCOMMAND`; the man page is what doc/gen_manpage.py makes of the binary's
#   --help texts (every subcommand); the bash completion completes subcommands, options and option values;
# - both examples build against the prefix through pkg-config (shared, and static with --static) AND through
#   find_package(cnnkit) (shared and static), and run on real small data: train_images trains on a generated
#   image folder (test accuracy and report checked, the four builds write byte-identical models), and
#   classify_audio classifies a clip exactly as `cnnkit predict` does with a model the installed cnnkit trained.
set -u
PY=/usr/bin/python3
BUILD=${CNK_BUILD_DIR:?CNK_BUILD_DIR must name the build directory}
T="$BUILD/tmp-install-$$"
START=$SECONDS
step() { echo "[$((SECONDS - START)) s] $*"; }
rm -rf "$T" && mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P="$T/prefix"
export XDG_CACHE_HOME="$T/cache" # the feature cache of the runs below stays in the temporary folder
export OPENBLAS_NUM_THREADS=1

# Sanitizer builds: the examples must carry the same runtime as the library.
CFLAGS_EXTRA=(-O0)
if [ "${CNK_SANITIZE:-0}" = 1 ]; then
    CFLAGS_EXTRA+=(-fsanitize=address,undefined -fno-omit-frame-pointer)
    # The report's charts (PLplot, cairo) keep fontconfig's and pango's caches until exit, as the cnnkit binary
    # tells LSan through pipeline/plot.c's hook; the library keeps that hook to itself, so the examples say it
    # here. Leaks of cnnkit's own still fail the run.
    printf 'leak:libfontconfig.so\nleak:libpango\n' > "$T/lsan.supp"
    export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$T/lsan.supp:print_suppressions=0"
fi
CC=${CC:-cc}

# --- install
step "install"
cmake --install "$BUILD" --prefix "$P" > "$T/install.log" 2>&1 || { cat "$T/install.log"; fail "cmake --install"; }
LIBDIR=$(dirname "$(find "$P" -name libcnnkit.a | head -1)")
[ -f "$LIBDIR/libcnnkit.a" ] || fail "no libcnnkit.a installed"
SONAME=$(readelf -d "$LIBDIR/libcnnkit.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ -n "$SONAME" ] || fail "libcnnkit.so has no SONAME"
[ -L "$LIBDIR/libcnnkit.so" ] && [ -L "$LIBDIR/$SONAME" ] || fail "libcnnkit.so -> $SONAME symlinks missing"
VERSION=$("$P/bin/cnnkit" --version | awk '{print $2}')
[ -f "$LIBDIR/libcnnkit.so.$VERSION" ] || fail "no libcnnkit.so.$VERSION (cnnkit --version says $VERSION)"
for f in include/cnnkit/cnnkit.h include/cnnkit/version.h include/cnnkit/context.h include/cnnkit/classify.h \
         include/cnnkit/features.h include/cnnkit/train.h include/cnnkit/report.h include/cnnkit/export.h \
         bin/cnnkit share/man/man1/cnnkit.1 share/bash-completion/completions/cnnkit; do
    [ -s "$P/$f" ] || fail "not installed: $f"
done
[ -s "$LIBDIR/pkgconfig/cnnkit.pc" ] || fail "cnnkit.pc not installed"
[ -s "$LIBDIR/cmake/cnnkit/cnnkitConfig.cmake" ] || fail "cnnkitConfig.cmake not installed"
grep -q "^#define CNNKIT_VERSION \"$VERSION\"" "$P/include/cnnkit/version.h" || fail "version.h does not say $VERSION"
# No file of the source tree's internal headers may be needed: nothing outside include/cnnkit is installed.
[ "$(find "$P/include" -type f | grep -vc '/include/cnnkit/')" = 0 ] || fail "internal headers were installed"

# --- the installed binary: --version, help SUBCOMMAND (the same text as SUBCOMMAND --help)
[ "$("$P/bin/cnnkit" --version)" = "cnnkit $VERSION" ] || fail "cnnkit --version"
SUBS=$("$P/bin/cnnkit" --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p')
for sub in features train eval predict report summary import bench; do # those ../shared/CLI.md names
    echo "$SUBS" | grep -qx $sub || fail "cnnkit --help does not list the $sub subcommand"
done
for sub in $SUBS; do
    "$P/bin/cnnkit" help $sub > "$T/help1.txt" || fail "cnnkit help $sub exits $?"
    "$P/bin/cnnkit" $sub --help > "$T/help2.txt" || fail "cnnkit $sub --help exits $?"
    [ -s "$T/help1.txt" ] && cmp -s "$T/help1.txt" "$T/help2.txt" || fail "cnnkit help $sub differs from $sub --help"
done
"$P/bin/cnnkit" help no-such-command > /dev/null 2>&1
[ $? = 2 ] || fail "cnnkit help no-such-command should be a usage error (exit 2)"

# --- the public context header repeats the internal status codes and callback types (same values)
SRC=${CNK_SOURCE_DIR:?CNK_SOURCE_DIR must name the source tree}
defs() { sed -e 's|/\*.*\*/||g' "$1" | sed -n '/^enum cnk_status {/,/^};/p; /^typedef void (\*cnk_/p' | tr -d ' \n'; }
[ -n "$(defs "$SRC/core/context.h")" ] || fail "no status enum found in core/context.h"
[ "$(defs "$SRC/core/context.h")" = "$(defs "$P/include/cnnkit/context.h")" ] \
    || fail "cnnkit/context.h's status codes or callback types differ from core/context.h"

# --- the man page is the one the installed binary's --help texts generate, and renders without warnings
step "man page"
$PY "$SRC/doc/gen_manpage.py" "$P/bin/cnnkit" > "$T/cnnkit.1" || fail "doc/gen_manpage.py"
cmp -s "$T/cnnkit.1" "$P/share/man/man1/cnnkit.1" || { diff "$P/share/man/man1/cnnkit.1" "$T/cnnkit.1" | head -20;
    fail "doc/cnnkit.1 is out of date: doc/gen_manpage.py BUILD/cnnkit > doc/cnnkit.1"; }
for sub in $SUBS; do
    grep -q "^\.SS $sub\$" "$T/cnnkit.1" || fail "the man page lacks the $sub subcommand"
done
if command -v groff > /dev/null; then
    [ -z "$(groff -man -Tutf8 -ww -z "$T/cnnkit.1" 2>&1)" ] || fail "groff warns about the man page"
fi

# --- bash completion: subcommands, options (from --help) and option values
step "completion"
complete_line() { # words... -> the completions, space-separated
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cnnkit; echo "${COMPREPLY[*]}"' \
        _ "$P/share/bash-completion/completions/cnnkit" "$@"
}
[ "$(complete_line "$P/bin/cnnkit" tr)" = train ] || fail "completion of 'cnnkit tr'"
[ "$(complete_line "$P/bin/cnnkit" train --ep)" = --epochs ] || fail "completion of 'cnnkit train --ep'"
[ "$(complete_line "$P/bin/cnnkit" features --kind w)" = wavelet ] || fail "completion of '--kind w'"
[ "$(complete_line "$P/bin/cnnkit" help pre)" = predict ] || fail "completion of 'cnnkit help pre'"
# the built-in networks come from the binary (`cnnkit summary --help`), not a list kept in the script
[ "$(cd "$T" && complete_line "$P/bin/cnnkit" train --arch cnn4)" = cnn4d ] || fail "completion of '--arch cnn4'"
[ "$(cd "$T" && complete_line "$P/bin/cnnkit" train --arch mobilenet_v)" = "mobilenet_v2 mobilenet_v1" ] ||
    fail "completion of '--arch mobilenet_v'"

# --- every public header compiles on its own, as C11 (pedantic) and as C++
step "headers"
for h in "$P"/include/cnnkit/*.h; do
    name=$(basename "$h")
    printf '#include <cnnkit/%s>\n#include <cnnkit/%s>\nint main(void) { return 0; }\n' "$name" "$name" > "$T/h.c"
    $CC -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$P/include" "$T/h.c" || fail "$name alone (C)"
    if command -v c++ > /dev/null; then
        c++ -x c++ -Wall -Wextra -Werror -fsyntax-only -I"$P/include" "$T/h.c" || fail "$name alone (C++)"
    fi
done

# --- the shared library exports exactly the public API
step "symbols"
grep -h '^CNK_API ' "$P"/include/cnnkit/*.h | grep -o '^CNK_API [^(]*(' | sed 's/($//; s/.*[ *]//' | sort -u > "$T/api.txt"
nm -D --defined-only "$LIBDIR/libcnnkit.so" | awk '{print $NF}' | sort -u > "$T/exported.txt"
[ "$(wc -l < "$T/api.txt")" -ge 40 ] || fail "fewer public functions than expected in the headers"
if ! cmp -s "$T/api.txt" "$T/exported.txt"; then
    diff "$T/api.txt" "$T/exported.txt"
    fail "exported symbols differ from the CNK_API declarations (< only declared, > only exported)"
fi
# The static library too: its only global definitions are the API (and GCC's OpenMP named-critical locks,
# common symbols that must stay mergeable).
nm --defined-only --extern-only "$LIBDIR/libcnnkit.a" | awk 'NF == 3 {print $3}' | grep -v '^\.gomp_critical_user_' \
    | sort -u > "$T/static.txt"
if ! cmp -s "$T/api.txt" "$T/static.txt"; then
    diff "$T/api.txt" "$T/static.txt" | head -20
    fail "libcnnkit.a's global symbols differ from the CNK_API declarations (> only in the archive)"
fi

# --- build the examples: pkg-config (shared and static) ...
step "pkg-config builds"
EX="$P/share/doc/cnnkit/examples"
[ -s "$EX/classify_audio.c" ] && [ -s "$EX/train_images.c" ] || fail "examples not installed"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
[ "$(pkg-config --modversion cnnkit)" = "$VERSION" ] || fail "pkg-config --modversion cnnkit"
pkg-config --static --libs cnnkit | grep -q -- '-lsndfile' || fail "pkg-config --static lacks the private dependencies"
mkdir -p "$T/pc" "$T/pcs"
for ex in classify_audio train_images; do
    # shellcheck disable=SC2046
    $CC -std=c11 -Wall -Wextra -Werror "${CFLAGS_EXTRA[@]}" "$EX/$ex.c" -o "$T/pc/$ex" \
        $(pkg-config --cflags --libs cnnkit) -lm || fail "$ex via pkg-config"
    # Static: libcnnkit.a by name (a plain -lcnnkit would pick the .so) plus what cnnkit.pc declares private:
    # the Requires.private modules and the Libs.private flags. The modules are linked shared here, because
    # Debian ships some of sndfile's own private dependencies (e.g. mp3lame) without a linkable library.
    # shellcheck disable=SC2046
    $CC -std=c11 -Wall -Wextra -Werror "${CFLAGS_EXTRA[@]}" "$EX/$ex.c" -o "$T/pcs/$ex" \
        $(pkg-config --cflags cnnkit) "$LIBDIR/libcnnkit.a" $(pkg-config --libs $(pkg-config --print-requires-private cnnkit)) \
        $(sed -n 's/^Libs.private://p' "$LIBDIR/pkgconfig/cnnkit.pc") || fail "$ex via pkg-config --static"
done
ldd "$T/pcs/train_images" | grep -q libcnnkit && fail "the static build still needs libcnnkit.so"
LD_LIBRARY_PATH="$LIBDIR" ldd "$T/pc/train_images" | grep -q "$SONAME" || fail "the shared build does not use $SONAME"

# ... and find_package(cnnkit) (shared and static)
step "find_package builds"
for kind in shared static; do
    static=OFF
    [ $kind = static ] && static=ON
    cmake -S "$EX" -B "$T/cm-$kind" -DCMAKE_PREFIX_PATH="$P" -DCNNKIT_STATIC=$static -DCMAKE_BUILD_TYPE=None \
        -DCMAKE_C_FLAGS="${CFLAGS_EXTRA[*]} -Wall -Wextra -Werror" > "$T/cm-$kind.log" 2>&1 \
        || { cat "$T/cm-$kind.log"; fail "configure the examples with find_package(cnnkit) ($kind)"; }
    cmake --build "$T/cm-$kind" > "$T/cm-$kind-build.log" 2>&1 \
        || { cat "$T/cm-$kind-build.log"; fail "build the examples with find_package(cnnkit) ($kind)"; }
done
ldd "$T/cm-static/classify_audio" | grep -q libcnnkit && fail "cnnkit::cnnkit_static still needs libcnnkit.so"
ldd "$T/cm-shared/classify_audio" | grep -q "$LIBDIR/$SONAME" || fail "cnnkit::cnnkit does not run against the prefix"

# --- train_images on a generated folder: 2 classes of 32x32 grey images, horizontal vs vertical stripes with
step "train_images"
# random period, phase and noise (20 each; an easy task a working pipeline learns within a few epochs: 8, since
# with 4 the batch-norm running statistics of some seeds have not settled and the network predicts one class).
$PY - "$T/images" <<'EOF' || fail "generate the image set"
import os, sys
import numpy as np
rng = np.random.default_rng(3)
for cls in ("horizontal", "vertical"):
    os.makedirs(os.path.join(sys.argv[1], cls))
    for i in range(20):
        period, phase = rng.uniform(5, 9), rng.uniform(0, 6.3)
        ramp = np.sin(2 * np.pi * np.arange(32) / period + phase)
        img = np.tile(ramp[:, None] if cls == "horizontal" else ramp[None, :], (1, 32) if cls == "horizontal" else (32, 1))
        img = np.clip(127 + 90 * img + rng.normal(0, 25, (32, 32)), 0, 255).astype(np.uint8)
        with open(os.path.join(sys.argv[1], cls, f"{cls}{i:02d}.pgm"), "wb") as f:
            f.write(b"P5\n32 32\n255\n" + img.tobytes())
EOF
run_train() { # build-dir tag
    LD_LIBRARY_PATH="$LIBDIR" "$1/train_images" "$T/images" "$T/model-$2.cnk" "$T/report-$2" 8 1 \
        > "$T/train-$2.out" 2> "$T/train-$2.err" || { cat "$T/train-$2.err"; fail "train_images ($2)"; }
}
run_train "$T/pc" pc
grep -q "^cnnkit $VERSION (headers $VERSION)$" "$T/train-pc.out" || fail "train_images: version line"
[ "$(grep -c '^epoch ' "$T/train-pc.out")" -ge 1 ] || fail "train_images printed no epoch line"
acc=$(sed -n 's/.*test accuracy \([0-9.]*\) on \([0-9]*\) images/\1/p' "$T/train-pc.out")
[ -n "$acc" ] || { cat "$T/train-pc.out"; fail "train_images printed no test accuracy"; }
$PY -c "import sys; sys.exit(0 if float('$acc') >= 0.8 else 1)" || { cat "$T/train-pc.out"; fail "test accuracy $acc < 0.8"; }
grep -q "^whole folder: 40 images, accuracy " "$T/train-pc.out" || fail "train_images did not evaluate 40 images"
for f in report.txt metrics.json report.html predictions.csv confusion.csv; do
    [ -s "$T/report-pc/$f" ] || fail "train_images' report lacks $f"
done
# The library's report equals what `cnnkit eval` prints for the same model and folder.
"$P/bin/cnnkit" eval "$T/model-pc.cnk" "$T/images" > "$T/eval.out" 2> /dev/null || fail "cnnkit eval"
cmp -s "$T/eval.out" "$T/report-pc/report.txt" || { diff "$T/eval.out" "$T/report-pc/report.txt"; fail "report.txt differs from cnnkit eval"; }
# Same seed, same threads: every build of the example trains the same model, byte for byte.
for b in pcs cm-shared cm-static; do
    run_train "$T/$b" "$b"
    cmp -s "$T/model-pc.cnk" "$T/model-$b.cnk" || fail "the $b build trained a different model"
done

# --- classify_audio: a model trained by the installed cnnkit on a tiny generated audio set
step "classify_audio"
"$P/bin/cnnkit" demo --out "$T/audio" --generate-only --clips 6 --seconds 0.5 --sr 8000 > /dev/null 2>&1 \
    || fail "cnnkit demo --generate-only"
"$P/bin/cnnkit" train "$T/audio/data" -o "$T/audio.cnk" --epochs 2 --batch-size 8 --threads 1 > /dev/null 2>&1 \
    || fail "cnnkit train (audio)"
CLIP=$(find "$T/audio/data" -name '*.wav' | sort | head -1)
"$P/bin/cnnkit" predict "$T/audio.cnk" "$CLIP" --format csv > "$T/predict.csv" 2> /dev/null || fail "cnnkit predict"
want=$(tail -1 "$T/predict.csv" | awk -F, '{print $2 " (" $3 ")"}')
for b in pc pcs cm-shared cm-static; do
    LD_LIBRARY_PATH="$LIBDIR" "$T/$b/classify_audio" "$T/audio.cnk" "$CLIP" > "$T/classify-$b.out" 2> "$T/classify.err" \
        || { cat "$T/classify.err"; fail "classify_audio ($b)"; }
    got=$(head -1 "$T/classify-$b.out" | sed 's/^.*: //')
    [ "$got" = "$want" ] || fail "classify_audio ($b) says '$got', cnnkit predict '$want'"
    [ "$(wc -l < "$T/classify-$b.out")" = 5 ] || fail "classify_audio ($b) should list the 4 demo classes"
done
# The probabilities it lists sum to 1.
$PY - "$T/classify-pc.out" <<'EOF' || fail "classify_audio's probabilities do not sum to 1"
import sys
p = [float(l.split()[-1]) for l in open(sys.argv[1]).read().splitlines()[1:]]
sys.exit(0 if abs(sum(p) - 1) < 1e-5 and all(0 <= x <= 1 for x in p) else 1)
EOF
# Errors: a missing model is exit 3 with the path in the message.
LD_LIBRARY_PATH="$LIBDIR" "$T/pc/classify_audio" "$T/nope.cnk" "$CLIP" > /dev/null 2> "$T/err.txt"
[ $? = 3 ] || fail "classify_audio with a missing model should exit 3"
grep -q "nope.cnk" "$T/err.txt" || fail "the error does not name the missing model"
echo "ok: installed into a fresh prefix; examples built 4 ways and ran (test accuracy $acc)"
