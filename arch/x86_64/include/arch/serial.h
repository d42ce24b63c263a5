/* SPDX-License-Identifier: MIT */
/* 16550 UART, polled. COM1 is the console, COM2 the dump sink. */
#ifndef ARCH_SERIAL_H
#define ARCH_SERIAL_H

#include <knmm/compiler.h>

#define COM1_PORT 0x3f8
#define COM2_PORT 0x2f8

/* 115200 8N1 with FIFOs; false if no UART answers at `port`. */
bool serial_init(uint16_t port);
void serial_putc(uint16_t port, char c);
/* Raw bytes, no newline translation. */
void serial_write(uint16_t port, const void *buf, size_t n);
/* A received byte, or -1 if none is waiting. */
int serial_getc(uint16_t port);

#endif
