/*
 * Interrupting the network layer from a signal handler or another thread,
 * without libetpan types (for src/cli/ and src/daemon/).  Implemented in
 * tls.c; see net.h for the connections themselves.
 */
#ifndef MX_NET_INTERRUPT_H
#define MX_NET_INTERRUPT_H

#include <stdbool.h>

/*
 * Interrupts every connection of the process: each wait (connect, TLS
 * handshake, read, write), now or later, in any thread, fails at once with
 * MX_ERR_CANCELLED "interrupted".  Async-signal-safe: for SIGINT/SIGTERM
 * handlers and for a daemon's shutdown.  There is no way back.
 */
void mx_net_interrupt(void);

/* True once mx_net_interrupt() was called. */
bool mx_net_interrupted(void);

/* True while a connection of the process is open or being opened (a
 * signal handler may leave the default action to a process that has
 * none).  Async-signal-safe. */
bool mx_net_active(void);

#endif
