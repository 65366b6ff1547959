#!/bin/sh
# Re-record tests/transcripts/hg/*.txt from the real `hg serve --stdio` (hg 7.2.4 in .venv).
# Deterministic: fixed users and dates, so node hashes are stable.  Run from anywhere.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
HG="$ROOT/.venv/bin/hg"
PY="$ROOT/.venv/bin/python"
OUT="$ROOT/tests/transcripts/hg"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HGRCPATH= HOME="$WORK" HGUSER=test HGPLAIN=1 HGENCODING=utf-8 TZ=UTC
rec() { echo "$PY $HERE/record_ssh.py $OUT/$1.txt"; }

cd "$WORK"
"$HG" init srv
printf '[phases]\npublish = False\n' > srv/.hg/hgrc
cd srv
echo a > a; "$HG" add -q a; "$HG" ci -qm 'add a' -d '0 0'
echo b > b; "$HG" add -q b; "$HG" ci -qm 'add b' -d '1 0'
"$HG" branch -q stable; echo c >> a; "$HG" ci -qm 'stable change' -d '2 0'
"$HG" up -q default; echo d >> b; "$HG" ci -qm 'default change' -d '3 0'
"$HG" merge -q stable; "$HG" ci -qm merge -d '4 0'
"$HG" bookmark -q -r 1 old-bm; "$HG" bookmark -q main
"$HG" phase -q -p 3
cd "$WORK"

"$HG" clone -q --ssh "$(rec clone-bundle2)" ssh://h/"$WORK"/srv cl
"$HG" -R cl pull -q --ssh "$(rec pull-nothing-new)" ssh://h/"$WORK"/srv
"$HG" id -r stable --ssh "$(rec lookup-branch)" ssh://h/"$WORK"/srv > /dev/null
"$HG" clone -q --config devel.legacy.exchange=bundle1 --ssh "$(rec clone-bundle1)" ssh://h/"$WORK"/srv cl1
"$HG" clone -q -U --stream --ssh "$(rec clone-stream2)" ssh://h/"$WORK"/srv cls2
"$HG" clone -q -U --stream --config devel.legacy.exchange=bundle1 --ssh "$(rec clone-stream1)" ssh://h/"$WORK"/srv cls1

cd cl
echo e > e; "$HG" add -q e; "$HG" ci -qm 'pushed change' -d '5 0'
"$HG" bookmark -q pushed-bm
"$HG" push -q -B pushed-bm --ssh "$(rec push-bundle2)" ssh://h/"$WORK"/srv
echo f > f; "$HG" add -q f; "$HG" ci -qm 'bundle1 push' -d '6 0'
"$HG" push -q --config devel.legacy.exchange=bundle1 --ssh "$(rec push-bundle1)" ssh://h/"$WORK"/srv
cd "$WORK"

# Raw sessions: bytes a client could send, answered by the real server.
raw() {
    name=$1; shift
    printf "$@" > "$WORK/$name.in"
    "$PY" "$HERE/record_ssh.py" "$OUT/$name.txt" h "hg -R $WORK/srv serve --stdio" < "$WORK/$name.in" > /dev/null 2>&1 || true
}
raw unknown-command 'hello\nbetween\npairs 81\n0000000000000000000000000000000000000000-0000000000000000000000000000000000000000nosuchcommand\nheads\n'
raw upgrade-request 'upgrade 2e82ab3f-9ce3-4b4e-8f8c-6fd1c0e9e23a proto=exp-ssh-v2-0003\nhello\nbetween\npairs 81\n0000000000000000000000000000000000000000-0000000000000000000000000000000000000000'
raw listkeys-and-known 'listkeys\nnamespace 9\nbookmarkslistkeys\nnamespace 6\nphaseslistkeys\nnamespace 10\nnamespacesbranchmap\nknown\n* 0\nnodes 81\n0000000000000000000000000000000000000000 1111111111111111111111111111111111111111lookup\nkey 4\nnope\n'
# Bundle files as `hg bundle` writes them (one c: line each: the bytes a push could carry).
for type in none-v1 gzip-v1 bzip2-v1 none-v2 gzip-v2 bzip2-v2 zstd-v2; do
    "$HG" -R srv bundle -q -a --type "$type" "$WORK/b.hg"
    "$PY" -c 'import sys; print("c: " + repr(open(sys.argv[1], "rb").read()))' "$WORK/b.hg" > "$OUT/bundle-$type.txt"
done
# Old clients' pushes (push-hgVERSION.txt), where OLD_HG names their hg commands, e.g.
# OLD_HG="/path/to/hg-4.0.2 /path/to/hg-4.4.2" (pip install mercurial==4.0.2 under Python 2.7).
"$HG" init "$WORK/spread"
(cd "$WORK/spread" &&
    for d in 1 2 3 4 5 6 7 8; do mkdir d$d; for f in 1 2 3 4 5; do echo "$d $f" > d$d/f$f; done; done &&
    "$HG" add -q && "$HG" ci -qm base -d '0 0' &&
    for c in $(seq 1 30); do
        echo "$c" >> d$((c % 8 + 1))/f$((c % 5 + 1)); echo "$c" >> d$(((c + 4) % 8 + 1))/f$((c % 5 + 1))
        "$HG" ci -qm "change $c" -d "$c 0"
    done)
for old in ${OLD_HG:-}; do
    version=$("$old" version -q | sed 's/.*version \([^)]*\)).*/\1/')
    rm -rf "$WORK/old-clone"
    "$old" clone -q -U --ssh "env -u PYTHONPATH $(rec clone-hg$version)" ssh://h/"$WORK"/spread "$WORK/old-clone"
    rm -rf "$WORK/old-srv" "$WORK/old-cl"
    "$HG" init "$WORK/old-srv"
    "$old" init "$WORK/old-cl"
    (cd "$WORK/old-cl" && echo a > a && "$old" add -q a && "$old" ci -qm 'add a' -d '0 0' &&
        "$old" bookmark -q pushed-bm &&
        "$old" push -q -B pushed-bm --ssh "env -u PYTHONPATH $(rec push-hg$version)" ssh://h/"$WORK"/old-srv)
done
echo recorded into "$OUT"
