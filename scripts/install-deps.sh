#!/usr/bin/env bash
# Installs the Debian packages cnnkit needs that are missing. Usage: install-deps.sh build|test|bench
#   build: compilers' libraries (enough for `make demo`)
#   test:  build + what the test suite's references and browser check use
#   bench: test + what the benchmarks compare against
# As root it runs apt-get; otherwise it lists the missing packages and fails.
set -euo pipefail
level=${1:-build}

# fonts-wqy-zenhei: the charts' text goes through pango, which draws class names in Chinese, Japanese or
# Korean as boxes unless some installed font has those characters (Debian's default fonts do not).
build_pkgs="cmake make gcc pkg-config libsndfile1-dev libsoxr-dev libfftw3-dev libopenblas-dev libstb-dev
  libcmocka-dev libplplot-dev plplot-driver-cairo fonts-wqy-zenhei zlib1g-dev"
test_pkgs="python3 python3-numpy python3-scipy python3-sklearn python3-torch python3-torchaudio chromium
  clang libclang-rt-14-dev libopenmpi-dev openmpi-bin valgrind"
bench_pkgs="dataset-fashion-mnist"

wanted="$build_pkgs"
case "$level" in
  build) ;;
  test) wanted="$wanted $test_pkgs" ;;
  bench) wanted="$wanted $test_pkgs $bench_pkgs" ;;
  *) echo "install-deps.sh: unknown level '$level' (build, test or bench)" >&2; exit 2 ;;
esac

missing=""
for pkg in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "cnnkit needs these Debian packages:$missing" >&2
  echo "Install them as root: apt-get install$missing" >&2
  exit 1
fi
echo "Installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
