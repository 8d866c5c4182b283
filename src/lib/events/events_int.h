/*
 * Internals of the events module shared by feed.c, webhook.c and the
 * `mxsync events` command.  Not part of the contract in events.h.
 */
#ifndef MX_EVENTS_INT_H
#define MX_EVENTS_INT_H

#include <stdint.h>

#include "store/store.h"

/* META key: big-endian u64, the lowest event id retention kept.  Absent
 * until the first prune that deleted something. */
#define MX_EVENTS_OLDEST_KEY "events_oldest"

/* mx_events_oldest(): public, in events.h. */

#endif
