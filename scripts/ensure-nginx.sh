#!/bin/sh
# Installs Debian's nginx when it is missing: the scale-out drill (tests/deploy/) starts one as
# the current user, in front of two relays and two web workers, and checks deploy/nginx's site.
# Only the binary is wanted: the package's own service is stopped and disabled again.
set -e
command -v nginx >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/nginx ] && exit 0
if [ "$(id -u)" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "ensure-nginx: nginx missing and no root to install it; install it by hand" >&2
  exit 1
fi
echo "ensure-nginx: installing nginx"
$SUDO apt-get update -qq
# policy-rc.d 101: the package must not start its own server on port 80 during the install
# (a CI runner or a developer's machine may have something there)
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
