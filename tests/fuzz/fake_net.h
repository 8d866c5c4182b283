/*
 * In-memory transport for the protocol fuzz targets (fake_net.c): the
 * next mx_net_connect() returns a stream that reads DATA and then sees
 * the server close; writes are discarded.  DATA is borrowed until the
 * stream is closed.
 *
 * DATA's first byte is the target's option byte, returned (-1: no
 * input); its bits 4-6 give the size of the server's writes: 0 as many
 * bytes as asked, 1-6 at most 1 << n bytes per read, 7 one line per read
 * (a server that waits for the client between lines, as during IDLE).
 * The rest is the server's.
 */
#ifndef MX_FUZZ_FAKE_NET_H
#define MX_FUZZ_FAKE_NET_H

#include <stddef.h>
#include <stdint.h>

int mx_fuzz_net_feed(const uint8_t *data, size_t len);

#endif
