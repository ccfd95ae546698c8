#!/usr/bin/env bash
# Fails when git tracks a build output: a file over 1 MB, or an executable
# binary (ELF, Mach-O, PE), wherever it sits. Build outputs belong in
# .gitignore, never in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt 1000000 ]; then
    echo "tracked file over 1 MB: $f ($size bytes)" >&2; bad=1; continue
  fi
  magic=$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46) kind=ELF ;;
    cffaedfe|cefaedfe|feedface|feedfacf|cafebabe) kind=Mach-O ;;
    4d5a*) kind=PE ;;
    *) kind= ;;
  esac
  if [ -n "$kind" ]; then
    echo "tracked executable ($kind): $f" >&2; bad=1
  fi
done < <(git ls-files -z)
if [ "$bad" -ne 0 ]; then
  echo "remove these with 'git rm --cached' and cover them in .gitignore" >&2
  exit 1
fi
