// SPDX-License-Identifier: MIT
/* String helpers shared by the kernel and the host tests. */
#include <knmm/string.h>

size_t kstrlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

bool glob_match(const char *glob, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*glob == '*') {
			star = glob++;
			resume = s;
		} else if (*glob == '?' || *glob == *s) {
			glob++;
			s++;
		} else if (star) {
			glob = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*glob == '*')
		glob++;
	return *glob == '\0';
}

bool parse_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0, base = 10;
	const char *p = s;
	unsigned shift = 0;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	const char *digits = p;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (p == digits)
		return false;
	switch (*p) {
	case 'K':
	case 'k':
		shift = 10;
		p++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		p++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		p++;
		break;
	case 'T':
	case 't':
		shift = 40;
		p++;
		break;
	default:
		break;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	if (!end && *p)
		return false;
	if (end)
		*end = p;
	*out = v << shift;
	return true;
}
