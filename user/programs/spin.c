// SPDX-License-Identifier: MIT
/* Busy-loops forever (until terminated): the scheduler must preempt it. */
#include <knlib.h>

int main(void)
{
	volatile uint64_t n = 0;
	for (;;)
		n++;
}
