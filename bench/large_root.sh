#!/bin/bash
# A large fs root for the README's "A large root" figures: 100 team folders of 70 bare git and 30 hg
# repositories (10,000, copies of one small repository of each kind), and DIR/rules.toml: a read list
# on every name (pattern = "*"), a read list and a writer per team, a private folder per team, 300
# per-repository grants, and ivan granted 5 repositories in two folders (u999: 3 team folders).
#   bench/large_root.sh DIR        then: twistd -n hgwire --root DIR/root --config DIR/rules.toml ...
set -e
DIR=${1:?usage: bench/large_root.sh DIR}
HG=${HG:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/hg}
R=$DIR/root; T=$DIR/template
rm -rf "$R" "$T"; mkdir -p "$R" "$T"
git init -q --bare "$T/g.git"
git init -q "$T/w" && (cd "$T/w" && echo hi > f && git add f && git -c user.name=a -c user.email=a@b commit -qm one \
    && git push -q ../g.git HEAD:refs/heads/main)
git -C "$T/g.git" symbolic-ref HEAD refs/heads/main
"$HG" init "$T/h" && (cd "$T/h" && echo hi > f && "$HG" add -q f && "$HG" commit -q -u a -m one)
for t in $(seq -w 0 99); do
  mkdir -p "$R/team$t"
  for r in $(seq -w 0 69); do cp -r "$T/g.git" "$R/team$t/repo$r.git"; done
  for r in $(seq -w 0 29); do cp -r "$T/h" "$R/team$t/hg$r"; done
done
python3 - "$DIR/rules.toml" <<'PY'
import sys
lines = ['anonymous_read = false', '', '[groups]', 'admins = ["root"]']
for t in range(100):
    members = [f'"u{(t * 5 + i) % 500:03d}"' for i in range(5)] + (['"u999"'] if t < 3 else [])
    lines += [f'team{t:02d} = [{", ".join(members)}]', f'team{t:02d}lead = ["u{t * 5 % 500:03d}"]']
lines += ['', '[[repo]]', 'pattern = "*"', 'read = ["@admins"]', 'write = ["@admins"]', '']
for t in range(100):
    lines += ['[[repo]]', f'pattern = "team{t:02d}/*"', f'read = ["@team{t:02d}"]', f'write = ["@team{t:02d}lead"]', '']
    lines += ['[[repo]]', f'pattern = "team{t:02d}/private*"', f'read = ["@team{t:02d}lead"]', '']
for i in range(300):
    lines += ['[[repo]]', f'pattern = "team{i // 3:02d}/repo{(i * 7) % 70:02d}.git"', f'write = ["u{(i * 11) % 500:03d}"]', '']
for name in ("team17/repo00.git", "team17/repo01.git", "team17/repo02.git", "team42/hg00", "team42/hg01"):
    lines += ['[[repo]]', f'pattern = "{name}"', 'read = ["ivan"]', '']
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
echo "$(find "$R" -mindepth 2 -maxdepth 2 | wc -l) repositories under $R; rules in $DIR/rules.toml"
