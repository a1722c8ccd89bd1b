#!/bin/bash
# A real S3 server for integration tests: Ceph RADOS Gateway (radosgw) on a throw-away one-node
# Ceph cluster (1 mon + 1 bluestore OSD on a sparse file + 1 rgw; no mgr, cephx off), with all of
# its config, data, logs, pid files and sockets inside DATA_DIR, listening on 127.0.0.1 only.
#
#   start-s3.sh install                install what the selected release needs (idempotent, needs root)
#   start-s3.sh start DATA_DIR [PORT]  create (or restart) the cluster in DATA_DIR; S3 on 127.0.0.1:PORT (default 7480).
#                                      stdout: S3_ENDPOINT=, AWS_ACCESS_KEY_ID=, AWS_SECRET_ACCESS_KEY=, AWS_REGION=
#                                      lines (source-able); progress goes to stderr
#   start-s3.sh env DATA_DIR           print those lines again
#   start-s3.sh stop DATA_DIR          stop the daemons of DATA_DIR (found by their pid files); data is kept
#   start-s3.sh status DATA_DIR        exit 0 if the S3 endpoint answers
#
# CEPH_RELEASE=reef (default): Ceph 18.2.7 daemons from Debian 13 "trixie" .debs, unpacked with dpkg -x
#     into CEPH_ROOT (default: ~/.cache/start-s3/ceph-reef, ~270 MB) and run through trixie's own ld.so; nothing from
#     trixie is installed system-wide. The `ceph` CLI comes from bookworm's ceph-common (apt).
# CEPH_RELEASE=pacific: Ceph 16.2.15 from Debian 12 (plain `apt-get install radosgw ceph-mon ceph-osd`).
#     Simpler, but rejects the AWS SDK's default streaming checksum uploads (411) and returns an empty
#     ETag from CompleteMultipartUpload.
# Other env: S3_ACCESS_KEY, S3_SECRET_KEY (default: Ceph s3-tests' 'testid' keys), MON_PORT (default PORT+10000;
#   the OSD takes ports MON_PORT+1..MON_PORT+40), BLOCK_SIZE_GB (sparse OSD file, default 10), START_TIMEOUT (s, 120).
set -euo pipefail

ACCESS_KEY=${S3_ACCESS_KEY:-0555b35654ad1656d804}
SECRET_KEY=${S3_SECRET_KEY:-h7GhxuBLTrlhVUyxSPUKUV8r/2EI4ngqJxD7iBdBYLhwluN30JaT3Q==}
TO=${START_TIMEOUT:-120}
log() { echo "[start-s3] $*" >&2; }
die() { echo "[start-s3] ERROR: $*" >&2; exit 1; }

# ---------- how to run each Ceph binary ----------
release_setup() {  # $1 = reef|pacific
  REL=$1
  case $REL in
  reef)
    CR=$(realpath -m "${CEPH_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/start-s3/ceph-reef}")
    LIBDIR=$CR/root/usr/lib/x86_64-linux-gnu
    LDSO=$LIBDIR/ld-linux-x86-64.so.2
    LP=$LIBDIR:$LIBDIR/ceph
    RUNPFX=("$LDSO" --library-path "$LP"); BINDIR=$CR/root/usr/bin ;;
  pacific)
    RUNPFX=(); BINDIR=/usr/bin ;;
  *) die "CEPH_RELEASE must be reef or pacific" ;;
  esac
}
cx() { local b=$1; shift; "${RUNPFX[@]}" "$BINDIR/$b" "$@"; }

install_reef() {
  local A=$CR/apt
  if [ -x "$CR/root/usr/bin/radosgw" ] && [ -f "$CR/ok" ]; then log "reef already unpacked in $CR"; return 0; fi
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs"
  echo "deb $("$(dirname "${BASH_SOURCE[0]}")/debian-mirror") trixie main" > "$A/sources.list"
  # private apt state: reads trixie's package lists without touching the system's sources, lists or caches
  local O=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=- -o Dir::State::Lists="$A/lists"
           -o Dir::State::Status=/dev/null -o Dir::Cache="$A/cache" -o APT::Sandbox::User=root -o Debug::NoLocking=1)
  apt-get "${O[@]}" update -qq >&2
  # the Ceph packages, plus the library packages they need (recursively); scripts/tools deps (python, lvm...) are skipped
  python3 - "$A/pkgs" "${O[@]}" <<'PY'
import re, subprocess, sys
out, opts = sys.argv[1], sys.argv[2:]
roots = ["radosgw", "ceph-mon", "ceph-osd", "ceph-base", "ceph-common", "librados2", "librgw2", "libradosstriper1"]
keep = re.compile(r'^(lib.*|zlib1g|gcc-\d+-base|openssl-provider-legacy)$')
seen, level = set(), list(roots)
while level:                      # breadth-first, one apt-cache call per level
    seen.update(level)
    show = subprocess.run(["apt-cache", *opts, "show", *level], capture_output=True, text=True).stdout
    got, nxt = set(), set()
    for st in show.split("\n\n"):
        f = dict(l.split(": ", 1) for l in st.splitlines() if ": " in l and not l.startswith(" "))
        if "Package" not in f or f["Package"] in got: continue   # first (= candidate) stanza only
        got.add(f["Package"])
        for k in ("Depends", "Pre-Depends"):
            for alt in f.get(k, "").split(","):
                n = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
                if n and n not in seen and keep.match(n) and n != "libc-bin": nxt.add(n)
    missing = set(level) - got
    if missing: sys.exit(f"not found in trixie lists: {sorted(missing)}")
    level = sorted(nxt)
open(out, "w").write("\n".join(sorted(seen)) + "\n")
PY
  (cd "$A/debs" && rm -f ./*.deb && apt-get "${O[@]}" download $(cat "$A/pkgs") >&2)
  rm -rf "$CR/root"; mkdir -p "$CR/root"
  for d in "$A"/debs/*.deb; do dpkg -x "$d" "$CR/root"; done
  local b bad=""
  for b in radosgw radosgw-admin ceph-mon ceph-osd monmaptool ceph-authtool; do
    [ -x "$CR/root/usr/bin/$b" ] || die "$b missing after unpacking"
    if "$LDSO" --library-path "$LP" --list "$CR/root/usr/bin/$b" | grep -E 'not found|=> /(usr/)?lib/' >&2; then bad=1; fi
  done
  [ -z "$bad" ] || die "some libraries do not resolve inside $CR/root (see above)"
  # keep only what start-s3.sh runs (+ a few debugging tools); drop docs
  for b in "$CR"/root/usr/bin/*; do
    case ${b##*/} in radosgw|radosgw-admin|ceph-mon|ceph-osd|monmaptool|ceph-authtool|osdmaptool|crushtool|ceph-conf|ceph-bluestore-tool) ;; *) rm -f "$b" ;; esac
  done
  rm -rf "$CR"/root/usr/share/{doc,man,locale,lintian}
  cx radosgw --version >"$CR/ok"
  rm -rf "$A/debs" "$A/cache"
  log "unpacked $(wc -l < "$A/pkgs") trixie packages into $CR/root: $(cat "$CR/ok")"
}

cmd=${1:-}
case "$cmd" in
install)
  release_setup "${CEPH_RELEASE:-reef}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$REL" = pacific ]; then pkgs=(radosgw ceph-mon ceph-osd ceph-common curl); else pkgs=(ceph-common curl python3); fi
  missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  [ "$REL" = reef ] && install_reef
  cx radosgw --version >&2
  exit 0 ;;
start|stop|env|status) ;;
*) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

D=$(realpath -m "${2:?DATA_DIR required}")
C=$D/ceph.conf
conf_port() { sed -n 's/^rgw frontends = beast endpoint=127.0.0.1:\([0-9]*\)$/\1/p' "$C"; }
print_env() {
  echo "S3_ENDPOINT=http://127.0.0.1:$(conf_port)"
  echo "AWS_ACCESS_KEY_ID=$(cat "$D/access_key")"
  echo "AWS_SECRET_ACCESS_KEY=$(cat "$D/secret_key")"
  echo "AWS_REGION=us-east-1"
}
endpoint_up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"; }
stop_daemons() {  # SIGTERM, one at a time (rgw, osd, mon), the daemons named by our pid files that run with our ceph.conf
  local n f p
  for n in client.rgw osd.0 mon.a; do
    f=$D/run/$n.pid; [ -f "$f" ] || continue; p=$(cat "$f"); rm -f "$f"
    kill -0 "$p" 2>/dev/null && grep -q -- "$C" "/proc/$p/cmdline" 2>/dev/null || continue
    kill "$p"
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
  done
}

case "$cmd" in
stop)   [ -f "$C" ] || die "no cluster in $D"; stop_daemons; log "stopped"; exit 0 ;;
env)    print_env; exit 0 ;;
status) endpoint_up "$(conf_port)"; exit $? ;;
esac

# ---------------- start ----------------
if [ -f "$D/release" ]; then
  [ -f "$D/ceph_root" ] && CEPH_ROOT=$(cat "$D/ceph_root")
  release_setup "$(cat "$D/release")"
else release_setup "${CEPH_RELEASE:-reef}"; fi
for b in ceph curl; do command -v "$b" >/dev/null || die "$b not found: run '$0 install' first"; done
if [ "$REL" = reef ]; then [ -f "$CR/ok" ] || die "Ceph reef not unpacked in $CR: run '$0 install' first"
else for b in radosgw ceph-mon ceph-osd; do command -v "$b" >/dev/null || die "$b not found: run '$0 install' first"; done; fi
t0=$(date +%s%N)
el() { echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }
waitfor() { local what=$1; shift; local end=$((SECONDS + TO)); until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || die "timeout waiting for $what (logs in $D/log)"; sleep 0.1; done; }
CEPH=(timeout 60 ceph -c "$C")   # the CLI (python, from bookworm's ceph-common) only sends 3 kinds of mon commands

if [ ! -f "$C" ]; then
  PORT=${3:-7480}
  MON_PORT=${MON_PORT:-$((PORT < 55000 ? PORT + 10000 : PORT - 10000))}
  endpoint_up "$PORT" && die "port $PORT already answers"
  mkdir -p "$D"/{run,log,mon,osd/ceph-0,rgw,crash}
  printf '%s' "$ACCESS_KEY" > "$D/access_key"; printf '%s' "$SECRET_KEY" > "$D/secret_key"; echo "$REL" > "$D/release"; [ "$REL" = reef ] && echo "$CR" > "$D/ceph_root"
  FSID=$(cat /proc/sys/kernel/random/uuid)
  PLUG=""   # reef: load plugins / object classes from the unpacked tree, never from the system's /usr/lib
  [ "$REL" = reef ] && PLUG="plugin dir = $LIBDIR/ceph
erasure code dir = $LIBDIR/ceph/erasure-code
osd class dir = $LIBDIR/rados-classes"
  cat > "$C" <<EOF
# generated by start-s3.sh ($REL): one-node throw-away Ceph cluster for tests, no auth, loopback only
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = $((MON_PORT + 1))
ms bind port max = $((MON_PORT + 40))
client mount timeout = 30
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
# with auth none the mon client must be allowed 'crc' mode, else daemons fail with get_initial_auth_request -13
ms mon client mode = crc secure
ms mon service mode = crc secure
ms mon cluster mode = crc secure
ms client mode = crc secure
ms service mode = crc secure
ms cluster mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
keyring = $D/keyring
crash dir = $D/crash
[mon]
$PLUG
mon data = $D/mon/\$cluster-\$id
mon initial members = a
# one mon: commit map changes at once (with the defaults every pool creation takes ~2 s)
paxos propose interval = 0.01
paxos min wait = 0.001
# never shut the mon down because the disk is nearly full (CI disks vary)
mon data avail warn = 1
mon data avail crit = 0
[osd]
$PLUG
osd data = $D/osd/\$cluster-\$id
osd objectstore = bluestore
bluestore block path = $D/osd/block
bluestore block create = true
bluestore block size = $(( ${BLOCK_SIZE_GB:-10} * 1024 * 1024 * 1024 ))
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false
bluestore fsck on mount = false
bluestore fsck on umount = false
bluestore cache autotune = false
bluestore cache size = 268435456
osd memory target = 1073741824
osd op num shards = 1
osd op num threads per shard = 2
osd max object name len = 460
osd max object namespace len = 64
[client.rgw]
$PLUG
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $D/rgw
rgw thread pool size = 64
EOF
  cx ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  cx monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >/dev/null
  cx ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >"$D/log/mkfs.log" 2>&1 || die "ceph-mon --mkfs failed: $D/log/mkfs.log"
  cx ceph-mon -c "$C" -i a 2>>"$D/log/stderr.log"
  log "mon started ($(el))"
  OSDUUID=$(cat /proc/sys/kernel/random/uuid)
  ID=$("${CEPH[@]}" osd new "$OSDUUID" 2>>"$D/log/stderr.log") || die "'ceph osd new' failed (mon log: $D/log/mon.a.log)"
  [ "$ID" = 0 ] || die "unexpected osd id '$ID'"
  cx ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$OSDUUID" >>"$D/log/mkfs.log" 2>&1 || die "ceph-osd --mkfs failed: $D/log/mkfs.log"
  log "osd created ($(el))"
  NEW=1
else
  PORT=$(conf_port)
  endpoint_up "$PORT" && { log "already running"; print_env; exit 0; }
  stop_daemons   # leftovers of a half-started run
  cx ceph-mon -c "$C" -i a 2>>"$D/log/stderr.log"
  log "mon restarted ($(el))"
  NEW=0
fi
cx ceph-osd -c "$C" -i 0 2>>"$D/log/stderr.log"
waitfor "osd.0 up" bash -c "timeout 10 ceph -c '$C' osd dump 2>/dev/null | grep -q '^osd.0 up'"
log "osd up ($(el))"
cx radosgw -c "$C" -n client.rgw 2>>"$D/log/stderr.log"
waitfor "radosgw on 127.0.0.1:$PORT" endpoint_up "$PORT"
log "rgw up ($(el))"
if [ "$NEW" = 1 ]; then
  timeout 60 "${RUNPFX[@]}" "$BINDIR/radosgw-admin" -c "$C" -n client.rgw user create --uid testid --display-name 'M. Tester' \
    --access-key "$(cat "$D/access_key")" --secret-key "$(cat "$D/secret_key")" >"$D/log/user.json" 2>>"$D/log/mkfs.log" \
    || die "radosgw-admin user create failed"
  # make the bucket pools now, so that the first CreateBucket / PUT does not pay for it
  for p in default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
    "${CEPH[@]}" osd pool create "$p" 8 8 >/dev/null 2>&1 && "${CEPH[@]}" osd pool application enable "$p" rgw >/dev/null 2>&1 || true
  done
fi
log "ready in $(el): S3 ($REL) at http://127.0.0.1:$PORT, data in $D; stop with: $0 stop $D"
print_env
