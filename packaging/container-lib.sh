# Shared by packaging/test-install and packaging/test-scaleout (sourced, not run): the cached clean
# Debian 12 tree and booting copies of it with systemd-nspawn (see /work/shared/env-notes.md).
# The caller sets REPO, DIST, CACHE, BASE, MIRROR and RUN and defines log and die.

prepare_base() {
    mkdir -p "$CACHE"
    if [ ! -e "$BASE/.tessera-complete" ]; then
        log "debootstrap bookworm from $MIRROR into $BASE (once; cached)"
        rm -rf "$BASE.tmp"
        debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates,curl \
            bookworm "$BASE.tmp" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
            || die "debootstrap failed, see $CACHE/debootstrap.log"
        rm -f "$BASE.tmp"/etc/apt/sources.list
        cp /etc/apt/sources.list.d/*.sources "$BASE.tmp"/etc/apt/sources.list.d/ 2>/dev/null \
            || echo "deb $MIRROR bookworm main" > "$BASE.tmp"/etc/apt/sources.list
        # This machine's apt settings, except Docker's hook that empties the archive cache.
        find /etc/apt/apt.conf.d -maxdepth 1 -type f ! -name 'docker-clean' -exec cp {} "$BASE.tmp"/etc/apt/apt.conf.d/ \;
        echo tessera-test > "$BASE.tmp"/etc/hostname
        # A root login is never needed: commands run through nsenter.
        rm -rf "$BASE" && mv "$BASE.tmp" "$BASE"
        touch "$BASE/.tessera-complete"
    fi
    # Download (never install) what the .debs need, without booting the tree.
    log "filling the tree's apt cache for the packages' dependencies"
    local update="true"
    [ -n "$(find "$BASE/var/lib/apt/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ] || update="apt-get update -qq"
    systemd-nspawn -q -D "$BASE" --register=no --keep-unit --pipe --bind-ro="$DIST:/srv/debs" \
        sh -c "$update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only /srv/debs/*.deb prometheus certbot pebble" \
        > "$RUN/download.log" 2>&1 || { cat "$RUN/download.log"; die "apt download failed"; }
    # The older release (test-install's upgrade check) on its own: apt may meet a shared dependency
    # differently for another package set (postgresql-client, real or provided by postgresql-client-15),
    # and the booted copy has no network to fetch what the first pass left out.
    if ls "$RUN"/prev/*.deb > /dev/null 2>&1; then
        systemd-nspawn -q -D "$BASE" --register=no --keep-unit --pipe --bind-ro="$RUN/prev:/srv/prev" \
            sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only /srv/prev/*.deb" \
            >> "$RUN/download.log" 2>&1 || { cat "$RUN/download.log"; die "apt download (older release) failed"; }
    fi
}

# ---- booting copies of the tree (test-scaleout; test-install has its own start_container) ----
# overlay_root DIR: a throwaway writable copy of $BASE mounted at DIR/root (the cached tree is never written).
overlay_root() {
    mkdir -p "$1/root" "$1/upper" "$1/work"
    mountpoint -q "$1/root" || mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$1/upper,workdir=$1/work" "$1/root"
}

# nspawn_boot NAME ROOT LOG [systemd-nspawn options...]: boots ROOT in the background and waits until
# systemd inside has finished starting. Sets BOOT_NSPAWN_PID (the nspawn process) and BOOT_INIT_PID
# (the container's PID 1, for ct_in).
nspawn_boot() {
    local name=$1 root=$2 logf=$3 pid="" state=""
    shift 3
    setsid systemd-nspawn -D "$root" -b --register=no --keep-unit --console=passive -M "$name" "$@" > "$logf" 2>&1 &
    BOOT_NSPAWN_PID=$!
    for _ in $(seq 1 100); do
        pid=$(pgrep -P "$BOOT_NSPAWN_PID" -x systemd || true)
        [ -n "$pid" ] && break
        sleep 0.2
    done
    [ -n "$pid" ] || { cat "$logf"; die "container $name did not boot"; }
    BOOT_INIT_PID=$pid
    # systemd's private bus socket appears a moment after PID 1 starts.
    for _ in $(seq 1 100); do
        state=$(ct_in "$pid" timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
        [ -n "$state" ] && break
        sleep 0.2
    done
    log "container $name booted: $state"
}

# nspawn_stop NSPAWN_PID INIT_PID: power off, then make sure nspawn has gone. A container whose shutdown
# hangs (seen here: systemd waiting with only journald left) is killed: SIGKILL to its PID 1 ends every
# process of its PID namespace, and nspawn then exits.
nspawn_stop() {
    [ -n "$1" ] || return 0
    [ -n "$2" ] && timeout 10 nsenter -t "$2" -a systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$1" 2>/dev/null; then
        [ -n "$2" ] && kill -KILL "$2" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

# ct_in INIT_PID COMMAND...: run a command inside that container, as root, with a clean environment.
ct_in() {
    local pid=$1
    shift
    nsenter -t "$pid" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
