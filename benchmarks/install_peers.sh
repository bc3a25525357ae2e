#!/usr/bin/env bash
# Install the peers that bench.py compares procrunner against. Idempotent: re-running it
# only installs what is missing. Everything lands under benchmarks/.peers/ (gitignored),
# except foreman, which comes from Debian's ruby-foreman package (binary /usr/bin/foreman).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="$here/.peers"
mkdir -p "$peers"

# honcho: PyPI, in its own venv.
if [ ! -x "$peers/honcho-venv/bin/honcho" ]; then
    python3 -m venv "$peers/honcho-venv"
    "$peers/honcho-venv/bin/pip" install --quiet honcho
fi

# procrunner itself, from this checkout, installed the way users install it (not editable:
# an editable install adds an import hook that costs ~15 ms at every start). Reinstalled on
# every run so that it is the working tree being measured.
python3 -m venv "$peers/procrunner-venv" 2>/dev/null || true
"$peers/procrunner-venv/bin/pip" install --quiet --force-reinstall --no-deps "$here/.." >/dev/null
"$peers/procrunner-venv/bin/pip" install --quiet "$here/.." >/dev/null

# foreman (Ruby): Debian's ruby-foreman.
if ! command -v foreman >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "foreman is missing: run as root, or: sudo apt-get install -y ruby-foreman" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ruby-foreman
fi

# wrk: the HTTP load generator of bench_router.py (Debian's package).
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "wrk is missing: run as root, or: sudo apt-get install -y wrk" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi

# node-foreman: npm's 'foreman' package, binary nf.
if [ ! -x "$peers/node/node_modules/.bin/nf" ]; then
    command -v npm >/dev/null 2>&1 || {
        echo "npm is missing: apt-get install -y nodejs npm" >&2
        exit 1
    }
    npm install --silent --no-fund --no-audit --prefix "$peers/node" foreman
fi

echo "procrunner:   $("$peers/procrunner-venv/bin/procrunner" --version 2>&1)"
echo "honcho:       $("$peers/honcho-venv/bin/honcho" --version 2>&1)"
echo "foreman:      $(foreman version 2>&1)"
echo "node-foreman: $("$peers/node/node_modules/.bin/nf" --version 2>&1)"
