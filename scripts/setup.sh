#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (run as root, or with sudo available): system packages, node modules, build.
#   bash scripts/setup.sh            # what the tests need
#   bash scripts/setup.sh --samples  # also puts OpenCV's sample clip vtest.avi into samples/ (for the README demo)
# Works offline apart from Debian's packages and the npm registry: every binary that npm packages would download
# (libtensorflow for @tensorflow/tfjs-node, ffmpeg-static, onnxruntime's CUDA files) is optional or skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

want_samples=0
for arg in "$@"; do
  case "$arg" in
    --samples) want_samples=1 ;;
    *) echo "setup.sh: unknown option $arg (expected --samples)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --- system packages --------------------------------------------------------------------------------------------
# libopencv-dev: the OpenCV 4.6 that @u4/opencv4nodejs compiles against; ffmpeg: the MP4 encoder and ffprobe;
# g++/make/python3/pkg-config: node-gyp's toolchain. GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0,
# x264enc from plugins-ugly, jpegdec from plugins-good): the real RTSP camera the live-source tests start on 127.0.0.1.
# mosquitto: the real MQTT broker the delivery tests start on 127.0.0.1 (its system service is not started here).
# chromium: the real browser the live-page tests drive through playwright-core (no browser download).
# redis-server: the Redis the scale-out tests and bench start on 127.0.0.1 and a free port (its system service is not
# relied on).
packages=(libopencv-dev ffmpeg pkg-config g++ make python3
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  mosquitto chromium redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# --- node modules -------------------------------------------------------------------------------------------------
export ONNXRUNTIME_NODE_INSTALL=skip          # its postinstall would fetch CUDA files; the CPU binaries are bundled
export OPENCV4NODEJS_DISABLE_AUTOBUILD=1      # build against Debian's OpenCV instead of downloading and building one
export OPENCV_INCLUDE_DIR=/usr/include/opencv4
export OPENCV_LIB_DIR=/usr/lib/x86_64-linux-gnu
export OPENCV_BIN_DIR=/usr/bin
export JOBS=max                               # node-gyp: compile opencv4nodejs on every core (about half the time)
stamp=node_modules/.visionpipe-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  log "npm ci (compiling @u4/opencv4nodejs takes about 5 minutes on 2 cores)"
  npm ci --no-audit --no-fund
  touch "$stamp"
else
  log "node modules up to date"
fi
node -e "
  const ok = (m) => { try { require.resolve(m); return true } catch { return false } };
  console.log('setup: optional @tensorflow/tfjs-node ' + (ok('@tensorflow/tfjs-node') ? 'installed (native TF.js backend)' : 'not installed: TF.js uses the WebAssembly backend'));
  console.log('setup: optional ffmpeg-static ' + (ok('ffmpeg-static') ? 'installed' : 'not installed: using FFMPEG_PATH or ffmpeg on PATH'));
"

# --- build --------------------------------------------------------------------------------------------------------
log "building dist/"
npm run -s build

# --- sample clip (for the README demo; tests use ../shared) ---------------------------------------------------------
if [ "$want_samples" -eq 1 ] && [ ! -s samples/vtest.avi ]; then
  src=/usr/share/doc/opencv-doc/examples/data/vtest.avi
  if [ ! -s "$src" ]; then
    log "fetching OpenCV's sample clip from Debian's opencv-doc package"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    $SUDO apt-get update -qq
    (cd "$tmp" && apt-get download opencv-doc >/dev/null && dpkg -x opencv-doc_*.deb extracted)
    src="$tmp/extracted/usr/share/doc/opencv-doc/examples/data/vtest.avi"
  fi
  cp "$src" samples/vtest.avi
  log "samples/vtest.avi ready"
fi
log "done"
