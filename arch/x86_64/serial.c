// SPDX-License-Identifier: MIT
#include <arch/io.h>
#include <arch/serial.h>

#define UART_DATA 0
#define UART_IER  1
#define UART_FCR  2
#define UART_LCR  3
#define UART_MCR  4
#define UART_LSR  5
#define UART_SCR  7

#define LCR_DLAB      0x80
#define LCR_8N1       0x03
#define FCR_ENABLE    0xc7 /* enable, clear both FIFOs, 14-byte trigger */
#define MCR_DTR_RTS   0x03
#define LSR_DATA      0x01
#define LSR_THR_EMPTY 0x20

bool serial_init(uint16_t port)
{
	outb(port + UART_SCR, 0x5a); /* a scratch register that reads back means a UART */
	if (inb(port + UART_SCR) != 0x5a)
		return false;
	outb(port + UART_IER, 0);
	outb(port + UART_LCR, LCR_DLAB);
	outb(port + UART_DATA, 1); /* divisor 1: 115200 baud */
	outb(port + UART_IER, 0);
	outb(port + UART_LCR, LCR_8N1);
	outb(port + UART_FCR, FCR_ENABLE);
	outb(port + UART_MCR, MCR_DTR_RTS);
	return true;
}

void serial_putc(uint16_t port, char c)
{
	while (!(inb(port + UART_LSR) & LSR_THR_EMPTY))
		__asm__ __volatile__("pause");
	outb(port + UART_DATA, (uint8_t)c);
}

void serial_write(uint16_t port, const void *buf, size_t n)
{
	const char *p = buf;

	for (size_t i = 0; i < n; i++)
		serial_putc(port, p[i]);
}

int serial_getc(uint16_t port)
{
	if (!(inb(port + UART_LSR) & LSR_DATA))
		return -1;
	return inb(port + UART_DATA);
}
