#!/bin/sh
# Builds a bootable ISO: tools/mkiso.sh OUT.iso KERNEL.elf "CMDLINE" [MODULE.elf | raw:MODULE.elf ...]
# The kernel and the modules are copied without debug sections (GRUB loads every
# non-allocated section of the kernel, and the symbol table is all it needs from them);
# raw: modules (the malformed test programs) are copied byte for byte. Each module is
# loaded as `module2 /boot/NAME.elf NAME`.
set -eu
out=$1 kernel=$2 cmdline=$3
shift 3
objcopy=${OBJCOPY:-objcopy}
stage=${out%.iso}.iso-root
rm -rf "$stage"
mkdir -p "$stage/boot/grub"
$objcopy --strip-debug "$kernel" "$stage/boot/kernel.elf"
modules=""
for m in "$@"; do
	case $m in
	raw:*)
		m=${m#raw:}
		name=$(basename "$m" .elf)
		cp "$m" "$stage/boot/$name.elf"
		;;
	*)
		name=$(basename "$m" .elf)
		$objcopy --strip-debug "$m" "$stage/boot/$name.elf"
		;;
	esac
	modules="$modules	module2 /boot/$name.elf $name
"
done
here=$(dirname "$0")
awk -v cmdline="$cmdline" -v modules="$modules" '
	{ gsub(/@CMDLINE@/, cmdline) }
	/^@MODULES@$/ { printf "%s", modules; next }
	{ print }' "$here/../iso/grub.cfg.in" >"$stage/boot/grub/grub.cfg"
# Only the GRUB modules a BIOS boot of this menu needs: a small ISO, made quickly.
grub-mkrescue -o "$out" \
	--install-modules="multiboot2 normal serial terminal terminfo iso9660 biosdisk part_msdos part_gpt echo test" \
	--locales= --fonts= --themes= --compress=no \
	"$stage" >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
