#!/bin/sh
# usage: scripts/build.sh BUILDDIR [configure args...]
# Generates the build system if needed and builds out of tree in BUILDDIR.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
b=$1; shift
[ -x "$top/configure" ] && [ "$top/configure" -nt "$top/configure.ac" ] ||
	(cd "$top" && autoreconf -fi >/dev/null 2>&1 || autoreconf -fi)
mkdir -p "$b"
cd "$b"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
	"$top/configure" -q "$@"
fi
make -s -j"$(nproc)"
