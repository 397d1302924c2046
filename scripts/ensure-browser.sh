#!/bin/sh
# Installs Debian's chromium, chromium-driver and a CJK font when any is missing.
# Browser tests need them; the wall's Chinese text needs the font to render.
set -e
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
fc-list 2>/dev/null | grep -qi "noto sans cjk" || missing="$missing fonts-noto-cjk"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "ensure-browser: missing$missing and no root to install them; install them by hand" >&2
  exit 1
fi
echo "ensure-browser: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
