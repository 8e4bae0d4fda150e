#!/usr/bin/env bash
# Installs, builds and starts the demo broadcast (test pattern + tone).
# Open the printed http://127.0.0.1:8080/ in a browser. Extra arguments go
# to gst-broadcast (see build/tools/gst-broadcast --help).
set -euo pipefail
cd "$(dirname "$0")/.."
WB_WITH_BROWSER=0 bash scripts/install-deps.sh
bash scripts/build.sh
export GST_PLUGIN_PATH="$PWD/build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
exec build/tools/gst-broadcast "$@"
