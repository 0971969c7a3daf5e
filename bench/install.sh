#!/bin/sh
# The peers of bench/serve.js: postgrey and postfwd (Debian packages), for `npm run bench`.
# Installed without starting their system services (policy-rc.d denies it for the install;
# the services are then disabled): the bench starts its own instances on 127.0.30.x with
# their configuration and state in a temp dir, and stops them. Run as root.
set -eu
added_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  added_policy=1
fi
trap '[ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgrey postfwd
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable postgrey postfwd >/dev/null 2>&1 || true
  systemctl stop postgrey postfwd >/dev/null 2>&1 || true
fi
# Nothing of theirs may be left listening.
if command -v ss >/dev/null 2>&1 && ss -ltnp | grep -E 'postgrey|postfwd'; then
  echo "bench/install.sh: a postgrey/postfwd service is listening (above); stop it" >&2
  exit 1
fi
