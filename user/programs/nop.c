// SPDX-License-Identifier: MIT
/* Exits at once (the create/exit loop uses it). */
int main(void) { return 0; }
