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

/*
 * Lowest retained event id in transaction T: the recorded retention
 * boundary, 1 when nothing was ever pruned.  A cursor AFTER is expired
 * when AFTER + 1 < *OLDEST_R.
 */
int mx_events_oldest(struct mx_txn *t, uint64_t *oldest_r,
		     struct mx_error *err);

#endif
