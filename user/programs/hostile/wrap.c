// SPDX-License-Identifier: MIT
/*
 * Issue 13, finding 4: a handle value, once closed, is never valid again. Today a slot's
 * generation is 20 bits, so after 2^20 - 1 close/open cycles of one slot a closed value
 * comes back (the issue: a closed MDL handle then answered KnPmmMdlGetSize with another
 * MDL's size). The task "hostile-wrap" (user.hostile_handle_wrap).
 *
 * One cycle is the cheapest open and close there is: KnHandleTransfer of KN_HANDLE_SELF to
 * ourselves, then KnHandleClose; with no lower slot free it is the same slot every time
 * (or, once the kernel retires a slot whose generation would wrap, the next one). Every
 * value handed out is remembered (a bit per generation, per slot): none may come twice, and
 * the first closed value (an MDL handle's) stays rcBadHandle throughout.
 */
#include "common.h"

#define CYCLES    ((1u << 20) + 64)
#define SLOT_BITS 12
#define MAX_SLOTS 16

static struct {
	uint32_t slot;
	uint8_t *seen; /* a bit per value of the 20 bits above the slot */
} slots[MAX_SLOTS];
static unsigned nslots;

/* Marks h as handed out; false if it was before (or there is no room to remember it). */
static bool first_time(Handle h)
{
	uint32_t slot = h & ((1u << SLOT_BITS) - 1), gen = h >> SLOT_BITS;
	unsigned i = 0;
	while (i < nslots && slots[i].slot != slot)
		i++;
	if (i == nslots) {
		if (nslots == MAX_SLOTS)
			return false;
		slots[i].slot = slot;
		slots[i].seen = KnVmAllocate(RTL_NULL, (1u << (32 - SLOT_BITS)) / 8,
					     VMM_FLAG_RESERVE | VMM_FLAG_COMMIT | VMM_FLAG_READ | VMM_FLAG_WRITE);
		if (!slots[i].seen)
			return false;
		nslots++;
	}
	uint8_t bit = (uint8_t)(1u << (gen & 7));
	if (slots[i].seen[gen >> 3] & bit)
		return false;
	slots[i].seen[gen >> 3] |= bit;
	return true;
}

static int wrap_main(void)
{
	Handle first, h, again = 0, middle = 0;
	rtl_size_t size = 0;
	int state;

	ktap_start();
	/* The first value of the slot: an MDL handle, closed. */
	ktap_rc(KnPmmMdlCreate(PAGE, VMM_FLAG_READ | VMM_FLAG_WRITE, &first), rcOk, "wrap: an MDL handle");
	ktap_check(first_time(first), "wrap: its value remembered", NULL);
	ktap_rc(KnHandleClose(first), rcOk, "wrap: closed");

	unsigned cycles = 0, repeats = 0, first_again_at = 0;
	Retcode failed = rcOk;
	uint64_t t0 = rdtsc();
	for (; cycles < CYCLES; cycles++) {
		if ((failed = KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &h)) != rcOk)
			break;
		if (!first_time(h) && repeats++ == 0) {
			again = h;
			first_again_at = cycles + 1;
			/* What the issue saw: the old value now names an object again. */
			printf("    # wrap: cycle %u handed out %#x a second time (the first MDL handle was %#x); "
			       "KnTaskGetState(%#x) = %d\n",
			       cycles + 1, h, first, first, KnTaskGetState(first, &state));
		}
		if (cycles == 1000)
			middle = h;
		if ((failed = KnHandleClose(h)) != rcOk)
			break;
	}
	uint64_t ticks = rdtsc() - t0;
	ktap_check(failed == rcOk && cycles == CYCLES, "wrap: 2^20 + 64 open/close cycles", "stopped after %u: %d",
		   cycles, failed);
	ktap_check(repeats == 0, "wrap: no value was handed out twice", "%u repeats, the first (%#x) at cycle %u",
		   repeats, again, first_again_at);
	/* With a handle open in the slot again, and an MDL in the next: neither is the old value. */
	Handle open_now = 0, mdl2 = 0;
	ktap_rc(KnHandleTransfer(KN_HANDLE_SELF, KN_HANDLE_SELF, KN_RIGHT_FREEZE, &open_now), rcOk,
		"wrap: one more open");
	ktap_rc(KnPmmMdlCreate(2 * PAGE, VMM_FLAG_READ | VMM_FLAG_WRITE, &mdl2), rcOk, "wrap: and a 2-page MDL");
	ktap_check(first_time(open_now) && first_time(mdl2), "wrap: ... with values never seen", "%#x %#x", open_now,
		   mdl2);
	ktap_rc(KnTaskGetState(first, &state), rcBadHandle, "wrap: the first closed value is still stale (as a task)");
	ktap_rc(KnPmmMdlGetSize(first, &size), rcBadHandle, "wrap: ... and as an MDL");
	ktap_rc(KnTaskGetState(middle, &state), rcBadHandle, "wrap: so is a value closed on the way");
	ktap_rc(KnHandleClose(first), rcBadHandle, "wrap: closing the old value closes nothing");
	ktap_rc(KnPmmMdlGetSize(mdl2, &size), rcOk, "wrap: the new MDL handle still works");
	KnHandleClose(open_now);
	KnHandleClose(mdl2);
	printf("    # wrap: %u cycles (2 system calls each) in %llu TSC ticks, %llu a cycle\n", cycles,
	       (unsigned long long)ticks, (unsigned long long)(ticks / (cycles ? cycles : 1)));
	ktap_done();
}
