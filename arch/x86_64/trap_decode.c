// SPDX-License-Identifier: MIT
/* Names and error-code decoding for exceptions. Pure; also built into the host tests. */
#include <arch/trap.h>

const char *trap_name(unsigned vector)
{
	static const char *const names[NR_EXCEPTIONS] = {
		[VEC_DE] = "divide error",
		[VEC_DB] = "debug",
		[VEC_NMI] = "non-maskable interrupt",
		[VEC_BP] = "breakpoint",
		[VEC_OF] = "overflow",
		[VEC_BR] = "bound range exceeded",
		[VEC_UD] = "invalid opcode",
		[VEC_NM] = "device not available",
		[VEC_DF] = "double fault",
		[9] = "coprocessor segment overrun",
		[VEC_TS] = "invalid TSS",
		[VEC_NP] = "segment not present",
		[VEC_SS] = "stack-segment fault",
		[VEC_GP] = "general protection",
		[VEC_PF] = "page fault",
		[VEC_MF] = "x87 floating-point error",
		[VEC_AC] = "alignment check",
		[VEC_MC] = "machine check",
		[VEC_XM] = "SIMD floating-point error",
		[VEC_VE] = "virtualization exception",
		[VEC_CP] = "control protection",
	};
	if (vector < NR_EXCEPTIONS)
		return names[vector] ? names[vector] : "reserved exception";
	return "interrupt";
}

static void append(char **p, char *end, const char *s)
{
	while (*s && *p < end - 1)
		*(*p)++ = *s++;
}

void pf_error_describe(uint64_t error, char *buf, unsigned size)
{
	char *p = buf, *end = buf + size;

	if (size == 0)
		return;
	append(&p, end, (error & PF_ERR_P) ? "protection" : "not-present");
	append(&p, end, (error & PF_ERR_I) ? " exec" : (error & PF_ERR_W) ? " write" : " read");
	append(&p, end, (error & PF_ERR_U) ? " user" : " kernel");
	if (error & PF_ERR_RSVD)
		append(&p, end, " reserved-bit");
	if (error & PF_ERR_PK)
		append(&p, end, " protection-key");
	if (error & PF_ERR_SS)
		append(&p, end, " shadow-stack");
	*p = '\0';
}
