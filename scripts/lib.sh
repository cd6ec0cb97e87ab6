# Sourced by scripts/*: installs what a fresh Debian/Ubuntu machine lacks, then the project's venv.
set -euo pipefail

PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${LM_VENV:-$PROJECT_DIR/.venv}
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=

say() { printf '==> %s\n' "$*" >&2; }

# ensure_debs PKG...: apt-get install the packages that are not installed yet.
ensure_debs() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}; run this script as root (sudo) to install them"
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    if [ -z "$APT_UPDATED" ]; then apt-get update -qq; APT_UPDATED=1; fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv EXTRAS: the project's virtualenv with `pip install -e .[EXTRAS]`, redone when
# setup.cfg changes.
ensure_venv() {
    local extras=$1 python=${PYTHON:-python3}
    if ! command -v "$python" >/dev/null; then ensure_debs python3; fi
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        say "Python >= 3.11 is needed ($python is $("$python" --version 2>&1))"
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating the virtualenv $VENV"
        "$python" -m venv "$VENV" 2>/dev/null || {
            rm -rf "$VENV"
            ensure_debs python3-venv
            "$python" -m venv "$VENV"
        }
    fi
    local stamp="$VENV/.installed-$extras"
    if [ ! -f "$stamp" ] || [ "$PROJECT_DIR/setup.cfg" -nt "$stamp" ]; then
        say "installing the project into $VENV (.[$extras])"
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q -e "$PROJECT_DIR[$extras]"
        touch "$stamp"
    fi
}

# ensure_oidc_provider: npm's certified `oidc-provider` (the external OpenID provider the tests
# log in against) in .lm-dev/oidc-provider, from the npm registry; Node.js from Debian if missing.
OIDC_PROVIDER_VERSION=8.8.1
OIDC_PROVIDER_DIR=${LM_OIDC_PROVIDER_DIR:-$PROJECT_DIR/.lm-dev/oidc-provider}
ensure_oidc_provider() {
    command -v node >/dev/null && command -v npm >/dev/null || ensure_debs nodejs npm
    local stamp="$OIDC_PROVIDER_DIR/.installed-$OIDC_PROVIDER_VERSION"
    [ -f "$stamp" ] && return 0
    say "installing oidc-provider@$OIDC_PROVIDER_VERSION into $OIDC_PROVIDER_DIR"
    # npm ignores the system's CA store, and with --prefix it also skips the global npmrc that
    # may name it: trust Debian's bundle (sites behind a TLS-inspecting proxy need it).
    if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
        export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    fi
    mkdir -p "$OIDC_PROVIDER_DIR"
    # Node.js trusts only the CAs built into it, not the system's: without this, npm hangs
    # retrying where the registry is reached through a site's TLS proxy (its CA is in the
    # system's list) and in minimal environments (`env -i`) that lack the caller's setting.
    if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
        export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    fi
    npm install --silent --no-audit --no-fund --prefix "$OIDC_PROVIDER_DIR" \
        "oidc-provider@$OIDC_PROVIDER_VERSION" >/dev/null
    touch "$stamp"
}
