// SPDX-License-Identifier: MIT
/* A small, complete-enough vsnprintf for the kernel (see include/knmm/printf.h). */
#include <knmm/printf.h>
#include <knmm/string.h>

struct out {
	char *buf;
	size_t size, len;
};

static void emit(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		emit(o, c);
}

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };

static void emit_number(struct out *o, uint64_t v, bool negative, unsigned base, bool upper, int flags, int width,
			int prec)
{
	char digits[24];
	int n = 0;
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char sign = negative ? '-' : (flags & F_PLUS) ? '+' : (flags & F_SPACE) ? ' ' : 0;
	const char *prefix = "";

	if (v == 0 && prec == 0)
		n = 0;
	else
		do {
			digits[n++] = set[v % base];
			v /= base;
		} while (v);
	if ((flags & F_ALT) && base == 16 && n > 0)
		prefix = upper ? "0X" : "0x";
	if ((flags & F_ALT) && base == 8)
		prefix = "0";

	int zeros = prec > n ? prec - n : 0;
	int plen = (int)strlen(prefix);
	int total = n + zeros + plen + (sign ? 1 : 0);
	if ((flags & F_ZERO) && !(flags & F_LEFT) && prec < 0 && width > total) {
		zeros += width - total;
		total = width;
	}
	if (!(flags & F_LEFT))
		emit_pad(o, ' ', width - total);
	if (sign)
		emit(o, sign);
	for (const char *p = prefix; *p; p++)
		emit(o, *p);
	emit_pad(o, '0', zeros);
	while (n)
		emit(o, digits[--n]);
	if (flags & F_LEFT)
		emit_pad(o, ' ', width - total);
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			emit(&o, *p);
			continue;
		}
		int flags = 0, width = 0, prec = -1;
		for (;; p++) {
			char c = p[1];
			if (c == '-')
				flags |= F_LEFT;
			else if (c == '0')
				flags |= F_ZERO;
			else if (c == '+')
				flags |= F_PLUS;
			else if (c == ' ')
				flags |= F_SPACE;
			else if (c == '#')
				flags |= F_ALT;
			else
				break;
		}
		p++;
		if (*p == '*') {
			width = va_arg(ap, int);
			if (width < 0) {
				flags |= F_LEFT;
				width = -width;
			}
			p++;
		} else {
			while (*p >= '0' && *p <= '9')
				width = width * 10 + (*p++ - '0');
		}
		if (*p == '.') {
			p++;
			prec = 0;
			if (*p == '*') {
				prec = va_arg(ap, int);
				p++;
			} else {
				while (*p >= '0' && *p <= '9')
					prec = prec * 10 + (*p++ - '0');
			}
		}
		int len = 0; /* 0 int, 1 long, 2 long long, -1 short, -2 char, 3 size_t/intmax/ptrdiff */
		for (;; p++) {
			if (*p == 'l')
				len = len == 1 ? 2 : 1;
			else if (*p == 'h')
				len = len == -1 ? -2 : -1;
			else if (*p == 'z' || *p == 'j' || *p == 't')
				len = 3;
			else
				break;
		}
		char conv = *p;
		if (conv == '\0')
			break;
		switch (conv) {
		case 'd':
		case 'i': {
			int64_t v;
			if (len >= 1)
				v = len == 1 ? va_arg(ap, long) : va_arg(ap, long long);
			else
				v = va_arg(ap, int);
			if (len == -1)
				v = (short)v;
			else if (len == -2)
				v = (signed char)v;
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			emit_number(&o, mag, v < 0, 10, false, flags, width, prec);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uint64_t v;
			if (len >= 1)
				v = len == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned long long);
			else
				v = va_arg(ap, unsigned int);
			if (len == -1)
				v = (unsigned short)v;
			else if (len == -2)
				v = (unsigned char)v;
			unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
			emit_number(&o, v, false, base, conv == 'X', flags, width, prec);
			break;
		}
		case 'p':
			emit_number(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), false, 16, false, F_ALT, 0, -1);
			break;
		case 'c': {
			if (!(flags & F_LEFT))
				emit_pad(&o, ' ', width - 1);
			emit(&o, (char)va_arg(ap, int));
			if (flags & F_LEFT)
				emit_pad(&o, ' ', width - 1);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int n = (int)(prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s));
			if (!(flags & F_LEFT))
				emit_pad(&o, ' ', width - n);
			for (int i = 0; i < n; i++)
				emit(&o, s[i]);
			if (flags & F_LEFT)
				emit_pad(&o, ' ', width - n);
			break;
		}
		case '%':
			emit(&o, '%');
			break;
		default: /* unknown conversion: print it as is */
			emit(&o, '%');
			emit(&o, conv);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
