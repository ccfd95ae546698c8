#!/usr/bin/env bash
# Debian's msitools (msibuild, msiinfo, msiextract) and wixl, which build and
# read the Windows MSI: installed if absent, as root with apt-get; a no-op
# when they are there. Exit status 1 when they are missing and cannot be had.
set -euo pipefail
have() { command -v wixl >/dev/null 2>&1 && command -v msibuild >/dev/null 2>&1 && command -v msiinfo >/dev/null 2>&1 && command -v msiextract >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "msitools and wixl are needed for the Windows MSI: apt-get install msitools wixl (as root)" >&2
  exit 1
fi
echo "installing Debian's msitools and wixl (to build and read the Windows MSI)"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq msitools wixl >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq msitools wixl >/dev/null 2>&1; }
have
