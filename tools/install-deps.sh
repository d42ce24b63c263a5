#!/bin/sh
# Installs what knmm's build, run and test targets need on Debian/Ubuntu.
#
#   tools/install-deps.sh          install whatever is missing (apt-get, as root or via sudo)
#   tools/install-deps.sh --check  exit 0 if everything is present, 1 otherwise (prints what is missing)
#
# When it cannot install (no root, no password-less sudo, no apt-get), it prints the exact
# command to run and exits 1, so `make` stops with a clear message instead of a cryptic one.
set -u

# tool on PATH (or file) -> Debian package that provides it
NEEDS="
qemu-system-x86_64:qemu-system-x86
grub-mkrescue:grub-common
/usr/lib/grub/i386-pc/multiboot2.mod:grub-pc-bin
xorriso:xorriso
mformat:mtools
gdb:gdb
python3:python3
readelf:binutils
ld:binutils
make:make
clang-format:clang-format
"

missing_pkgs=""
missing_what=""
for pair in $NEEDS; do
	what=${pair%%:*}
	pkg=${pair#*:}
	case $what in
	/*) [ -e "$what" ] && continue ;;
	*) command -v "$what" >/dev/null 2>&1 && continue ;;
	esac
	missing_what="$missing_what $what"
	case " $missing_pkgs " in
	*" $pkg "*) ;;
	*) missing_pkgs="$missing_pkgs $pkg" ;;
	esac
done
# The compiler, linker and objcopy the Makefile will use (it passes CC, LD and OBJCOPY:
# with CROSS=x86_64-elf- they are the cross tools, which Debian does not package).
for tool in "${CC:-gcc}:gcc" "${LD:-ld}:binutils" "${OBJCOPY:-objcopy}:binutils"; do
	what=${tool%%:*} pkg=${tool##*:}
	command -v "$what" >/dev/null 2>&1 && continue
	case $what in
	gcc | ld | objcopy | clang)
		[ "$what" = clang ] && pkg=clang
		missing_what="$missing_what $what"
		case " $missing_pkgs " in
		*" $pkg "*) ;;
		*) missing_pkgs="$missing_pkgs $pkg" ;;
		esac
		;;
	*)
		echo "knmm: $what is not on PATH: install that toolchain, or build without CROSS= (host gcc)" >&2
		exit 1
		;;
	esac
done

if [ -z "$missing_pkgs" ]; then
	exit 0
fi
echo "knmm: missing:$missing_what (Debian packages:$missing_pkgs)" >&2
if [ "${1:-}" = "--check" ]; then
	exit 1
fi

cmd="apt-get install -y --no-install-recommends$missing_pkgs"
if ! command -v apt-get >/dev/null 2>&1; then
	echo "knmm: no apt-get here; install the equivalents of:$missing_pkgs" >&2
	exit 1
fi
if [ "$(id -u)" = 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo="sudo"
else
	echo "knmm: cannot install as $(id -un); run this, then try again:" >&2
	echo "    sudo apt-get update && sudo $cmd" >&2
	exit 1
fi
echo "knmm: installing:$missing_pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2 || exit 1
$sudo $cmd >&2 || exit 1
exec "$0" --check
