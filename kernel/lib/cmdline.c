// SPDX-License-Identifier: MIT
#include <knmm/bootinfo.h>
#include <knmm/cmdline.h>
#include <knmm/log.h>
#include <knmm/string.h>

static char cmdline[BOOT_CMDLINE_MAX];

void cmdline_init(const char *s) { kstrlcpy(cmdline, s, sizeof(cmdline)); }
const char *cmdline_raw(void) { return cmdline; }

/* Finds the last `key` word and its value (val, len). */
static bool find(const char *key, const char **val, size_t *len)
{
	size_t klen = strlen(key);
	bool found = false;

	for (const char *p = cmdline; *p;) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		size_t wlen = (size_t)(p - w);
		if (wlen >= klen && strncmp(w, key, klen) == 0 && (wlen == klen || w[klen] == '=')) {
			found = true;
			*val = wlen == klen ? w + klen : w + klen + 1;
			*len = wlen == klen ? 0 : wlen - klen - 1;
		}
	}
	return found;
}

bool cmdline_get_str(const char *key, char *out, size_t size)
{
	const char *v = NULL;
	size_t len = 0;

	if (!find(key, &v, &len) || size == 0)
		return false;
	if (len >= size)
		len = size - 1;
	memcpy(out, v, len);
	out[len] = '\0';
	return true;
}

uint64_t cmdline_get_u64(const char *key, uint64_t def)
{
	char buf[32];
	uint64_t v;

	if (!cmdline_get_str(key, buf, sizeof(buf)))
		return def;
	if (!parse_u64(buf, &v, NULL)) {
		pr_warn("cmdline: %s=%s is not a number; using %llu", key, buf, (unsigned long long)def);
		return def;
	}
	return v;
}

bool cmdline_get_bool(const char *key, bool def)
{
	char buf[16];

	if (!cmdline_get_str(key, buf, sizeof(buf)))
		return def;
	if (!buf[0] || !strcmp(buf, "on") || !strcmp(buf, "yes") || !strcmp(buf, "1") || !strcmp(buf, "true"))
		return true;
	if (!strcmp(buf, "off") || !strcmp(buf, "no") || !strcmp(buf, "0") || !strcmp(buf, "false"))
		return false;
	pr_warn("cmdline: %s=%s is not on/off; using %s", key, buf, def ? "on" : "off");
	return def;
}
