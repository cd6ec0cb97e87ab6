#!/usr/bin/env bash
# Makes this machine able to run the molecule scenarios, idempotently (run it as root):
#   1. installs podman, runc and debootstrap when missing (Debian/Ubuntu);
#   2. builds the test image localhost/lm-molecule-bookworm:latest when it does not exist:
#      a minimal Debian 12 made by debootstrap (no container registry is needed) that boots
#      systemd as PID 1, so services really start inside the container.
# podman's own settings for these tests are in molecule/containers.conf (CONTAINERS_CONF);
# nothing under /etc/containers is changed.
#
# Environment: LM_MOLECULE_IMAGE (image name), LM_MOLECULE_MIRROR (Debian mirror; default:
# the first URIs: line of /etc/apt/sources.list.d/*.sources or the first deb line of
# /etc/apt/sources.list, else http://deb.debian.org/debian), LM_MOLECULE_REBUILD=1 (rebuild),
# LM_MOLECULE_WHEELS (the wheelhouse directory, default /var/tmp/lm-molecule-wheels).
set -euo pipefail

IMAGE=${LM_MOLECULE_IMAGE:-localhost/lm-molecule-bookworm:latest}
SUITE=bookworm
PACKAGES=python3,cron,systemd,systemd-sysv,dbus,sudo,ca-certificates
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*" >&2; }

missing=()
for package in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}; run $0 as root to install them"
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The scenarios mount the wheelhouse (filled by build-wheels.sh in prepare.yml) at /srv/wheels.
mkdir -p "${LM_MOLECULE_WHEELS:-/var/tmp/lm-molecule-wheels}"

if [ "${LM_MOLECULE_REBUILD:-0}" != 1 ] && podman image exists "$IMAGE"; then
    exit 0
fi

mirror() {
    if [ -n "${LM_MOLECULE_MIRROR:-}" ]; then echo "$LM_MOLECULE_MIRROR"; return; fi
    local uri
    uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -v -- '-security' | head -n 1 || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
            /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

root=$(mktemp -d /var/tmp/lm-molecule-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
MIRROR=$(mirror)
say "building $IMAGE with debootstrap ($SUITE from $MIRROR; about a minute)"
started=$SECONDS
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    tail -n 20 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"
# The container's apt uses the same mirror (bookworm-updates and security included).
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" \
    >"$root/etc/apt/sources.list"
# Smaller, faster apt inside the container: no recommends, no docs.
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$root/etc/apt/apt.conf.d/90lm-molecule"
# Units that cannot work in a container (no getty on a console, no kernel tuning).
for unit in getty@tty1.service systemd-remount-fs.service systemd-sysctl.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
rm -f "$root/etc/machine-id" && touch "$root/etc/machine-id"
apt_cache=$root/var/cache/apt/archives
find "$apt_cache" -name '*.deb' -delete
tar -C "$root" -c . | podman import --change 'CMD ["/lib/systemd/systemd"]' - "$IMAGE" >/dev/null
say "built $IMAGE in $((SECONDS - started)) s"
