#!/usr/bin/env bash
# Static checks of the systemd/ and D-Bus files; needs no running systemd, no installed package.
#
#   .ci/unit-security.sh
#   UNIT_SECURITY_MAX=2.0 .ci/unit-security.sh   # exposure threshold (default 2.0; tuned at 1.7)
#
# 1. `systemd-analyze security --offline=yes`: fails if the exposure score is above the threshold.
# 2. `systemd-analyze verify` against a throw-away root holding the host's units plus stand-ins for
#    /usr/bin/codriverd and /bin/kill (verify insists ExecStart= binaries exist). Any diagnostic,
#    such as "Unknown key", fails the check (verify itself exits 0 for those).
# 3. The D-Bus policy is well-formed XML, and a private dbus-daemon (never the machine's bus)
#    enforces it: only codriver/root own the name; root, codriver and group codriver may call;
#    anyone else is refused, introspection included. Needs dbus-daemon, dbus-test-tool
#    (package dbus-tests), unshare and setpriv, and root; skipped with a note otherwise.
# 4. sysusers.d and tmpfiles.d files apply cleanly to a throw-away root.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX=${UNIT_SECURITY_MAX:-2.0}
UNIT=systemd/codriverd.service
POLICY=systemd/org.codriver.Codriver1.conf
fail=0
scratch=$(mktemp -d)
# Under `set -e` a failing last command of the trap sets the script's exit status, so every
# step here tolerates a process that already exited.
cleanup() {
    if [ -n "${bus_pid:-}" ]; then kill "$bus_pid" 2>/dev/null || true; fi
    if [ -n "${echo_pid:-}" ]; then kill "$echo_pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT
say() { printf '\n==> %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*" >&2; fail=1; }

# --- 1. exposure score ------------------------------------------------------------------------------
say "systemd-analyze security --offline=yes $UNIT (threshold $MAX)"
systemd-analyze security --offline=yes --no-pager "$UNIT" >"$scratch/security.txt" 2>&1 || true
grep -E '^✗' "$scratch/security.txt" || true
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$scratch/security.txt")
if [ -z "$score" ]; then
    cat "$scratch/security.txt" >&2
    bad "could not read the exposure score"
else
    echo "exposure: $score (max $MAX)"
    awk -v s="$score" -v m="$MAX" 'BEGIN { exit !(s <= m) }' || bad "exposure $score > $MAX"
fi

# --- 2. verify ---------------------------------------------------------------------------------------
say "systemd-analyze verify (alternate root)"
root="$scratch/root"
mkdir -p "$root/usr/bin" "$root/bin" "$root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
install -m 755 /bin/true "$root/usr/bin/codriverd"
install -m 755 "$(type -P kill)" "$root/bin/kill"
cp "$UNIT" "$root/usr/lib/systemd/system/"
if ! systemd-analyze verify --root="$root" codriverd.service >"$scratch/verify.txt" 2>&1; then
    bad "systemd-analyze verify failed"
fi
if [ -s "$scratch/verify.txt" ]; then
    cat "$scratch/verify.txt"
    bad "systemd-analyze verify printed diagnostics"
else
    echo "ok"
fi

# --- 3. D-Bus policy -------------------------------------------------------------------------------
say "D-Bus policy $POLICY"
if python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$POLICY"; then
    echo "well-formed XML"
else
    bad "$POLICY is not well-formed XML"
fi

if [ "$(id -u)" -ne 0 ] || ! command -v dbus-daemon >/dev/null || ! command -v dbus-test-tool >/dev/null \
    || ! command -v unshare >/dev/null || ! command -v setpriv >/dev/null; then
    echo "NOTE: enforcement test skipped (needs root, dbus-daemon, dbus-test-tool from dbus-tests, unshare, setpriv)"
else
    bus="$scratch/bus"
    mkdir -p "$bus/system.d"
    chmod 755 "$scratch" "$bus"
    cp "$POLICY" "$bus/system.d/"
    # A system-bus-like default policy (as Debian's system.conf), plus our file.
    cat >"$bus/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$bus/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <includedir>$bus/system.d</includedir>
</busconfig>
EOF
    # Users codriver (64001) and a member of group codriver (64002), visible only to this bus
    # through a private mount namespace; the machine's /etc is untouched.
    grep -v '^codriver:' /etc/passwd >"$bus/passwd" || true
    grep -v '^codriver:' /etc/group >"$bus/group" || true
    echo "codriver:x:64001:64001::/nonexistent:/usr/sbin/nologin" >>"$bus/passwd"
    echo "cdrvuser:x:64002:64002::/nonexistent:/usr/sbin/nologin" >>"$bus/passwd"
    echo "codriver:x:64001:cdrvuser" >>"$bus/group"
    echo "cdrvuser:x:64002:" >>"$bus/group"
    unshare -m sh -c "mount --bind '$bus/passwd' /etc/passwd && mount --bind '$bus/group' /etc/group \
        && exec dbus-daemon --config-file='$bus/bus.conf' --nofork --nopidfile" 2>"$bus/daemon.log" &
    bus_pid=$!
    export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$bus/socket"
    for _ in $(seq 50); do [ -S "$bus/socket" ] && break; sleep 0.1; done

    as() { # as UID SUPPLEMENTARY-GID|'' COMMAND...
        local u=$1 g=$2 groups=(--clear-groups)
        shift 2
        [ -n "$g" ] && groups=(--groups="$g")
        setpriv --reuid="$u" --regid="$u" "${groups[@]}" "$@"
    }
    own() { timeout 5 dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.RequestName string:org.codriver.Codriver1 uint32:4 2>&1 | tail -n1; }
    introspect() { timeout 5 dbus-send --system --print-reply --dest=org.codriver.Codriver1 /org/codriver/Codriver1 \
        org.freedesktop.DBus.Introspectable.Introspect 2>&1 | head -n1; }
    expect() { # expect allow|deny LABEL OUTPUT
        case "$1:$3" in
            allow:*"method return"* | allow:*"uint32 1"* | deny:*AccessDenied*) echo "ok: $2 ($1)" ;;
            *) bad "$2: expected $1, got: $3" ;;
        esac
    }
    export -f own introspect
    expect deny "nobody owns the name" "$(as 65534 '' bash -c own)"
    expect allow "root owns the name" "$(own)"
    # The daemon stand-in: dbus-test-tool answers every method call.
    as 64001 '' dbus-test-tool echo --system --name=org.codriver.Codriver1 2>"$bus/echo.log" &
    echo_pid=$!
    for _ in $(seq 50); do
        timeout 2 dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.NameHasOwner string:org.codriver.Codriver1 2>/dev/null | grep -q true && break
        sleep 0.1
    done
    expect allow "root calls" "$(introspect)"
    expect allow "user codriver calls" "$(as 64001 '' bash -c introspect)"
    expect allow "group codriver member calls" "$(as 64002 64001 bash -c introspect)"
    expect deny "nobody calls (introspection)" "$(as 65534 '' bash -c introspect)"
fi

# --- 4. sysusers.d / tmpfiles.d --------------------------------------------------------------------
say "sysusers.d + tmpfiles.d (alternate root)"
sroot="$scratch/sroot"
mkdir -p "$sroot/etc" "$sroot/usr/lib/sysusers.d" "$sroot/usr/lib/tmpfiles.d"
cp systemd/codriver.sysusers "$sroot/usr/lib/sysusers.d/codriver.conf"
cp systemd/codriver.tmpfiles "$sroot/usr/lib/tmpfiles.d/codriver.conf"
if systemd-sysusers --root="$sroot" codriver.conf 2>&1 && systemd-tmpfiles --root="$sroot" --create codriver.conf 2>&1 \
    && grep -q '^codriver:' "$sroot/etc/passwd" && grep -q '^gpio:.*codriver' "$sroot/etc/group" \
    && [ "$(stat -c %U "$sroot/var/lib/codriver/spool" 2>/dev/null || stat -c %u "$sroot/var/lib/codriver/spool")" != root ]; then
    echo "ok"
else
    bad "sysusers/tmpfiles did not apply"
fi

if [ "$fail" -ne 0 ]; then
    echo; echo "unit-security: FAILED" >&2
    exit 1
fi
echo; echo "unit-security: all checks passed (exposure $score)"
