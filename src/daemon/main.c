/*
 * mxsyncd: keeps every account of a data directory in sync, with IDLE push
 * for INBOX, and delivers the event feed to webhooks.  doc/mxsyncd.8.
 *
 * One epoll loop (this thread) waits on the IDLE sockets, a signalfd, an
 * eventfd for job completions and the next timer.  Blocking work runs as
 * jobs on a worker pool; see daemon.h for the threading rules.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "account/account.h"
#include "daemon/daemon.h"
#include "events/events.h"
#include "net/interrupt.h"
#include "secrets/secrets.h"
#include "send/outbox.h"
#include "sync/sync.h"

enum job_kind {
	JOB_NONE = 0,
	JOB_START,   /* connect, full sync, then IDLE (or poll) */
	JOB_WAKE,    /* IDLE said something: DONE, sync INBOX, IDLE again */
	JOB_REFRESH, /* periodic: DONE, sync every folder, IDLE again */
	JOB_STOP     /* DONE if needed, LOGOUT, free the connection */
};

struct acct;

/* What the worker queue holds: an account's main job (connect, sync) or
 * the job that reads its IDLE connection (idle_connection = separate). */
struct job_slot {
	struct acct *a;
	bool idle;
};

struct acct {
	struct acct *next;
	uint32_t id;
	struct mx_account a;          /* owned copy from the store */
	const struct mx_acct_cfg *cfg; /* foreign (config), may be NULL */
	enum mx_acct_state state;
	enum mx_acct_state last_reported; /* last state sent as an event */
	bool reported;
	struct mx_conn *conn;
	bool busy;                    /* a worker has it */
	bool job_failing;             /* queued while in backoff (see pick_job) */
	bool idling;                  /* IDLE in progress on conn */
	bool removed;                 /* stop and free after the job */
	volatile int cancel;          /* the sync's cancel flag: removed,
				       * or the daemon stops */
	int fd;                       /* registered in epoll, or -1 */
	enum job_kind job, pending;   /* running / queued after it */
	int job_rc;
	bool job_keepalive;           /* WAKE was only a keepalive */
	struct mx_error job_err;
	struct mx_sync_stats job_stats;
	uint64_t next_at;             /* monotonic ms of the next timer */
	uint64_t next_refresh;        /* monotonic ms of the next full sync */
	uint64_t next_reauth_check;   /* auth_failed: look for a reauth mark */
	uint64_t backoff_ms;
	int64_t last_success;         /* wall clock */
	int64_t next_attempt_wall;
	char last_error[MX_ERROR_DETAIL];
	/* idle_connection = separate: a second connection stays in IDLE on
	 * INBOX and a sync runs on conn.  Dovecot (and others) hold a change
	 * back for a while after each IDLE command, so a client that ends
	 * IDLE to sync pays that delay on every push (doc/internals).  Its
	 * reads are a job of their own (idle_slot), one at a time, beside
	 * the main job; idle_conn is touched by that job or, when the main
	 * job opens it (open_idle), by the main job, never by both. */
	struct job_slot main_slot, idle_slot;
	struct mx_conn *idle_conn;
	bool idle_live;               /* idle_conn open (main thread's view) */
	bool idle_busy;               /* a worker has idle_slot */
	bool idle_restart;            /* that job: DONE, IDLE again */
	bool idle_changed;            /* its result: the server told a change */
	int idle_rc;
	struct mx_error idle_err;
	int idle_fd;                  /* registered in epoll, or -1 */
	uint64_t idle_opened;         /* monotonic ms */
	uint64_t idle_next_restart;
	bool job_separate;            /* this job leaves IDLE to idle_conn */
	bool open_idle;               /* this job opens idle_conn */
	bool separate_off;            /* no second connection: shared */
	bool stop_done;               /* stopped; freed when idle_slot is back */
};

struct retired_cfg {
	struct retired_cfg *next;
	struct mx_config cfg;
};

struct daemon {
	struct mx_store *st;
	/* Configurations replaced by SIGHUP: a worker may still read its
	 * account's folder list from one, so they are freed only at exit. */
	struct retired_cfg *retired;
	bool stuck;                   /* shutdown gave up waiting */
	bool lock_lost;               /* lock.mdb replaced: stopped */
	int cli_log_level;            /* from -v (or the default) */
	unsigned cli_trace;           /* from -D */
	const char *dir;
	const char *conf_path;
	struct mx_config cfg;
	struct acct *accts;
	int epfd, sigfd, donefd;
	volatile int stopping;        /* sets every account's cancel */
	uint64_t removals_seen;       /* mx_account_removals() */
	/* worker pool */
	pthread_t *workers;
	int nworkers;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job_slot **queue;      /* jobs to run */
	size_t nqueue, capqueue;
	int nfailing;                 /* workers running a job_failing job */
	struct job_slot **done;       /* finished, for the loop */
	size_t ndone, capdone;
	bool quit;
	struct mx_webhook *wh[MX_MAX_WEBHOOKS];
	struct mx_webhook_set *apiwh; /* endpoints made through the API */
	pthread_rwlock_t wh_lock;     /* workers notify, reload replaces */
	uint64_t next_prune;
	/* the outbox sender (one thread: sends are few, and one session
	 * at a time keeps each provider's rate limits simple) */
	pthread_t ob_thread;
	bool ob_started, ob_quit;
	pthread_mutex_t ob_mu;
	pthread_cond_t ob_cv;
	struct mx_api *api;           /* [api]: the HTTP API, else NULL */
	/* data.mdb watched (mx_store_watch), else -1: every commit, also
	 * by another process (mxsync flag, sync, send), wakes long-polls,
	 * event streams and webhooks at once instead of at the next tick. */
	int store_wfd;
	/* Summaries for messages stored before them (fill_main). */
	pthread_t fill_thread;
	bool fill_started;
	atomic_bool fill_stop;
	/* What API writes asked the loop to do (api_kick_cb): queued under
	 * kick_mu by API threads, kickfd wakes the loop (run_kicks). */
	int kickfd;
	pthread_mutex_t kick_mu;
	struct api_kick *kicks;
	size_t nkicks, capkicks;
};

struct api_kick {
	enum mx_api_kick what;
	uint32_t account;
};

/* The backend of account A: what it can do decides how it is driven. */
static const struct mx_backend_ops *acct_be(const struct acct *a)
{
	return mx_backend_for_account(&a->a);
}

/* SIGTERM: how long jobs in flight may finish before their network waits
 * are interrupted (mx_net_interrupt). */
#define MX_STOP_GRACE_MS 2000

static uint64_t now_ms(void)
{
	return mx_now_ms();
}

/* ---- account state, persisted for `mxsync status` ---- */

struct state_ctx {
	struct acct *a;
	const char *reason;
	bool emit;
};

static int state_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct state_ctx *sc = ctx;
	struct acct *a = sc->a;
	struct mx_acctstate s = {0};
	int rc;

	/* Removed (the loop has not noticed yet): nothing more of it may
	 * appear in the store or the feed after account.removed. */
	rc = mx_account_check_current(t, &a->a, err);
	if (rc == MX_ERR_CANCELLED)
		return MX_OK;
	if (rc)
		return rc;
	snprintf(s.state, sizeof(s.state), "%s", mx_acct_state_name(a->state));
	s.since = mx_wall_s();
	s.pid = getpid();
	s.last_success = a->last_success;
	snprintf(s.last_error, sizeof(s.last_error), "%s", a->last_error);
	if (a->state == MX_ST_BACKOFF)
		s.next_attempt = a->next_attempt_wall;
	rc = mx_acctstate_put(t, a->id, &s, err);
	if (rc == MX_OK && sc->emit) {
		json_t *x = json_object();

		json_object_set_new(x, "state",
				    json_string(mx_acct_state_name(a->state)));
		if (sc->reason)
			json_object_set_new(x, "reason", json_string(sc->reason));
		json_object_set_new(x, "account_name", json_string(a->a.name));
		rc = mx_store_event(t, "account.state", a->id, 0, 0, x, err);
		json_decref(x);
	}
	return rc;
}

static bool transient(enum mx_acct_state s)
{
	return s == MX_ST_SYNCING || s == MX_ST_CONNECTING ||
	       s == MX_ST_INITIAL_SYNC;
}

static bool trouble(enum mx_acct_state s)
{
	return s == MX_ST_BACKOFF || s == MX_ST_AUTH_FAILED ||
	       s == MX_ST_DISABLED || s == MX_ST_STOPPED;
}

/*
 * Records a state change.  The feed gets an account.state event when an
 * account gets into trouble (backoff, auth_failed, disabled), out of it,
 * or first reaches idle/polling: the CRM needs those, not every
 * idle -> syncing -> idle round of a push.  The transient sync states are
 * not written to the store at all.
 */
static void set_state(struct daemon *d, struct acct *a, enum mx_acct_state s,
		      const char *reason)
{
	enum mx_acct_state old = a->state;
	struct state_ctx sc = {a, reason, false};
	struct mx_error err;

	/* Transient states are never events: a recovery is reported when
	 * the account next reaches a settled state. */
	sc.emit = old != s && !transient(s) &&
		  (trouble(s) || trouble(a->last_reported) || !a->reported) &&
		  !(a->reported && a->last_reported == s);
	if (old != s && !(transient(s) && transient(old)) &&
	    !(old == MX_ST_SYNCING && (s == MX_ST_IDLE || s == MX_ST_POLLING)) &&
	    !(s == MX_ST_SYNCING))
		mx_info("account %s: %s -> %s%s%s", a->a.name,
			mx_acct_state_name(a->state), mx_acct_state_name(s),
			reason ? ": " : "", reason ? reason : "");
	a->state = s;
	if (transient(s) && !sc.emit)
		return;
	if (sc.emit) {
		a->reported = true;
		a->last_reported = s;
	}
	if (mx_store_write(d->st, state_fn, &sc, &err) != MX_OK)
		mx_warn("account %s: cannot record state: %s", a->a.name,
			err.detail);
}

/* ---- worker pool ---- */

static void notify_webhooks(struct daemon *d);

/* Called by the sync engine after every committed batch: the webhooks
 * need not wait for the rest of the job (re-IDLE, other folders). */
static void on_commit(const struct mx_sync_progress *p, void *ctx)
{
	(void)p;
	notify_webhooks(ctx);
}

/* A worker: the second connection, in IDLE on INBOX.  If the server
 * refuses it (a connection limit), IDLE shares the sync connection. */
static void open_idle_conn(struct daemon *d, struct acct *a)
{
	struct mx_conn *c = NULL;
	struct mx_error e2;
	int rc;

	mx_error_clear(&e2);
	rc = mx_backend_connect(d->st, &a->a, NULL, &c, &e2);
	if (rc == MX_OK)
		rc = acct_be(a)->idle_start(c, "INBOX", &e2);
	if (rc != MX_OK) {
		if (c)
			acct_be(a)->disconnect(&c);
		mx_warn("account %s: no second connection for IDLE (%s); IDLE "
			"shares the sync connection", a->a.name,
			e2.detail[0] ? e2.detail : mx_strerror(rc));
		a->separate_off = true;
		return;
	}
	a->idle_conn = c;
}

/* A worker: read what the IDLE connection says (or re-issue IDLE before
 * the server's 30 min limit).  The connection stays in IDLE. */
static void idle_job_run(struct acct *a)
{
	struct mx_error *err = &a->idle_err;
	int rc;

	mx_error_clear(err);
	a->idle_changed = false;
	if (a->idle_restart) {
		rc = acct_be(a)->idle_done(a->idle_conn, err);
		if (rc == MX_OK)
			rc = acct_be(a)->idle_start(a->idle_conn, "INBOX", err);
		/* What came between DONE and IDLE: one sync covers it. */
		a->idle_changed = true;
	} else {
		rc = acct_be(a)->idle_check(a->idle_conn, &a->idle_changed,
					    err);
	}
	if (rc != MX_OK)
		acct_be(a)->disconnect(&a->idle_conn);
	a->idle_rc = rc;
}

/* Seconds to the next poll of an account that is not idling: API mode
 * has its own interval (history.list is cheap: 2 quota units). */
static int poll_interval_s(const struct daemon *d, const struct acct *a)
{
	if (!(acct_be(a)->caps & MX_CAP_MODEL_CHANGES))
		return d->cfg.poll_interval_s;
	if (a->cfg && a->cfg->api_poll_interval_s)
		return a->cfg->api_poll_interval_s;
	return d->cfg.api_poll_interval_s;
}

static void job_run(struct daemon *d, struct acct *a)
{
	struct mx_sync_opts opts = {0};
	const char *inbox[] = {"INBOX", NULL};
	bool synced = false;
	struct mx_error *err = &a->job_err;
	int rc = MX_OK;

	mx_error_clear(err);
	memset(&a->job_stats, 0, sizeof(a->job_stats));
	opts.cancel = &a->cancel;
	opts.progress = on_commit;
	opts.progress_ctx = d;
	if (acct_be(a)->caps & MX_CAP_MODEL_DROP) {
		/* POP3: no IDLE, and a session locks the maildrop; one session
		 * per poll (src/lib/sync/pop3sync.c).  Without a connection
		 * job_done() schedules the next poll at poll_interval. */
		a->job_keepalive = false;
		a->job_rc = a->job == JOB_STOP ? MX_OK
			    : mx_drop_sync(d->st, &a->a, &opts, &a->job_stats,
					   err);
		return;
	}
	if (acct_be(a)->caps & MX_CAP_MODEL_CHANGES) {
		/* API mode: history.list polled, no connection kept
		 * (src/lib/sync/changes.c); job_done() schedules the next
		 * poll at api_poll_interval. */
		a->job_keepalive = false;
		a->job_rc = a->job == JOB_STOP ? MX_OK
			    : mx_changes_sync(d->st, &a->a, &opts,
					      &a->job_stats, err);
		return;
	}
	if (a->cfg && a->cfg->folders && a->cfg->nfolders) {
		opts.folders = (const char *const *)a->cfg->folders;
		opts.nfolders = a->cfg->nfolders;
	}
	if (a->job == JOB_WAKE && a->idling && a->conn) {
		bool changed = true;

		rc = acct_be(a)->idle_check(a->conn, &changed, err);
		if (rc == MX_OK && !changed) {
			/* Only a keepalive: stay in IDLE, no sync. */
			a->job_rc = MX_OK;
			a->job_keepalive = true;
			return;
		}
		if (rc != MX_OK) {
			acct_be(a)->disconnect(&a->conn);
			a->idling = false;
			a->job_rc = rc;
			return;
		}
	}
	a->job_keepalive = false;
	if (a->idling && a->conn) {
		rc = acct_be(a)->idle_done(a->conn, err);
		a->idling = false;
	}
	switch (a->job) {
	case JOB_STOP:
		if (a->conn)
			acct_be(a)->disconnect(&a->conn);
		a->job_rc = MX_OK;
		return;
	case JOB_START:
		if (rc == MX_OK && a->conn == NULL)
			rc = mx_backend_connect(d->st, &a->a, NULL, &a->conn,
						err);
		break;
	case JOB_WAKE:
		/* With IDLE on its own connection, a push can come while the
		 * sync connection is down (the server closed it): open it. */
		if (rc == MX_OK && a->conn == NULL && a->job_separate)
			rc = mx_backend_connect(d->st, &a->a, NULL, &a->conn,
						err);
		/* Push is for INBOX; the other folders follow on REFRESH. */
		if (!(a->cfg && a->cfg->folders && a->cfg->nfolders)) {
			opts.folders = inbox;
			opts.nfolders = 1;
		}
		break;
	default:
		break;
	}
	if (rc == MX_OK && a->conn == NULL)
		rc = mx_error_set(err, MX_ERR_NET, "not connected");
	/* A push syncs INBOX as the store knows it, without LIST: one
	 * round trip less between the server's EXISTS and the event. */
	if (rc == MX_OK && a->job == JOB_WAKE && opts.folders == inbox) {
		rc = mx_sync_conn_known(d->st, &a->a, a->conn, &opts,
					&a->job_stats, err);
		synced = rc != MX_ERR_NOTFOUND;
		if (!synced) { /* INBOX never listed yet: the full way */
			mx_error_clear(err);
			memset(&a->job_stats, 0, sizeof(a->job_stats));
			rc = MX_OK;
		}
	}
	if (rc == MX_OK && !synced)
		rc = mx_sync_conn(d->st, &a->a, a->conn, &opts, &a->job_stats,
				  err);
	/* A partial sync (one folder refused) still leaves us connected. */
	if (rc == MX_ERR_SERVER && a->job_stats.folder_errors)
		rc = MX_OK;
	if (rc == MX_OK && !d->stopping &&
	    (acct_be(a)->server_caps(a->conn) & MX_CAP_IDLE)) {
		if (a->open_idle)
			open_idle_conn(d, a);
		if (!a->job_separate || (a->open_idle && a->idle_conn == NULL)) {
			rc = acct_be(a)->idle_start(a->conn, "INBOX", err);
			if (rc == MX_OK)
				a->idling = true;
		}
	}
	if (rc != MX_OK && a->conn) {
		acct_be(a)->disconnect(&a->conn);
		a->idling = false;
	}
	a->job_rc = rc;
}

/*
 * The queue index of the next job a worker may run, or -1 (D->mu held).
 * Accounts that failed last time (a server that drips, stalls or is down)
 * may hold at most all workers but one: each such job is bounded by the
 * account's timeout (net.h: step deadline), but with every worker on one
 * a healthy account's sync and its IDLE push would wait in the queue.
 * Oldest first otherwise; at shutdown anything goes.
 */
static ssize_t pick_job(struct daemon *d)
{
	int max_failing = d->nworkers > 1 ? d->nworkers - 1 : 1;

	for (size_t i = 0; i < d->nqueue; i++)
		if (d->queue[i]->idle || !d->queue[i]->a->job_failing ||
		    d->nfailing < max_failing || d->quit)
			return (ssize_t)i;
	return -1;
}

static void *worker_main(void *arg)
{
	struct daemon *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct job_slot *js;
		uint64_t one = 1;
		ssize_t i;
		bool failing;

		while ((i = pick_job(d)) < 0 && !d->quit)
			pthread_cond_wait(&d->cv, &d->mu);
		if (i < 0)
			break;
		js = d->queue[i];
		failing = !js->idle && js->a->job_failing;
		d->nqueue--;
		memmove(d->queue + i, d->queue + i + 1,
			(d->nqueue - (size_t)i) * sizeof(*d->queue));
		d->nfailing += failing;
		pthread_mutex_unlock(&d->mu);
		if (js->idle)
			idle_job_run(js->a);
		else
			job_run(d, js->a);
		pthread_mutex_lock(&d->mu);
		if (failing) {
			/* A failing job that had to wait may run now. */
			d->nfailing--;
			pthread_cond_broadcast(&d->cv);
		}
		if (d->ndone == d->capdone) {
			size_t n = d->capdone ? d->capdone * 2 : 64;
			struct job_slot **v = realloc(d->done, n * sizeof(*v));

			if (v == NULL)
				abort(); /* cannot report completion */
			d->done = v;
			d->capdone = n;
		}
		d->done[d->ndone++] = js;
		if (write(d->donefd, &one, sizeof(one)) < 0)
			mx_warn("eventfd write: %s", strerror(errno));
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* Queues JS for a worker (D->mu held). */
static void enqueue(struct daemon *d, struct job_slot *js)
{
	if (d->nqueue == d->capqueue) {
		size_t n = d->capqueue ? d->capqueue * 2 : 64;
		struct job_slot **v = realloc(d->queue, n * sizeof(*v));

		if (v == NULL)
			abort();
		d->queue = v;
		d->capqueue = n;
	}
	d->queue[d->nqueue++] = js;
	pthread_cond_signal(&d->cv);
}

static bool idle_separate(const struct daemon *d, const struct acct *a)
{
	int mode = a->cfg && a->cfg->idle_connection ? a->cfg->idle_connection
						     : d->cfg.idle_connection;

	return mode == MX_IDLE_CONN_SEPARATE && !a->separate_off &&
	       (acct_be(a)->caps & MX_CAP_IDLE);
}

static void submit_idle(struct daemon *d, struct acct *a, bool restart)
{
	if (a->idle_fd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, a->idle_fd, NULL);
		a->idle_fd = -1;
	}
	a->idle_busy = true;
	a->idle_restart = restart;
	pthread_mutex_lock(&d->mu);
	enqueue(d, &a->idle_slot);
	pthread_mutex_unlock(&d->mu);
}

static void submit(struct daemon *d, struct acct *a, enum job_kind k)
{
	if (a->busy) {
		/* One job at a time per account; keep the strongest wish. */
		if (k > a->pending || k == JOB_STOP)
			a->pending = k;
		return;
	}
	if (a->fd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, a->fd, NULL);
		a->fd = -1;
	}
	a->busy = true;
	a->job = k;
	a->job_separate = k != JOB_STOP && idle_separate(d, a);
	/* While the IDLE job runs, idle_conn is its own; if that job drops
	 * the connection, its completion asks for a REFRESH that opens it. */
	a->open_idle = a->job_separate && !a->idle_live && !a->idle_busy;
	pthread_mutex_lock(&d->mu);
	a->job_failing = a->backoff_ms > 0;
	enqueue(d, &a->main_slot);
	pthread_mutex_unlock(&d->mu);
	if (k == JOB_START && a->state != MX_ST_INITIAL_SYNC)
		set_state(d, a, MX_ST_CONNECTING, NULL);
	else if (k == JOB_WAKE || k == JOB_REFRESH)
		set_state(d, a, MX_ST_SYNCING, NULL);
}

/* ---- after a job ---- */

static void wake_webhooks(struct daemon *d)
{
	pthread_rwlock_rdlock(&d->wh_lock);
	for (size_t i = 0; i < MX_MAX_WEBHOOKS; i++)
		if (d->wh[i])
			mx_webhook_notify(d->wh[i]);
	mx_webhook_set_notify(d->apiwh);
	pthread_rwlock_unlock(&d->wh_lock);
}

static void notify_webhooks(struct daemon *d)
{
	wake_webhooks(d);
	mx_api_notify(d->api); /* long-polls and event streams */
}

static uint64_t jitter(uint64_t ms)
{
	/* +-20 %: many accounts failing together must not retry together. */
	uint64_t span = ms / 5;

	if (span == 0)
		return ms;
	return ms - span + (uint64_t)rand() % (2 * span + 1);
}

/* Registers CONN's IDLE socket for SLOT: 0, or 1 when bytes are already
 * buffered (poll() would not tell us), or -1 when it cannot be watched. */
static int watch_idle(struct daemon *d, const struct mx_backend_ops *be,
		      struct mx_conn *conn, struct job_slot *slot, int *fd_r)
{
	struct epoll_event ev = {0};
	int fd = be->idle_fd(conn);

	if (be->idle_pending(conn))
		return 1;
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = slot;
	if (fd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -1;
	*fd_r = fd;
	return 0;
}

static void arm_idle(struct daemon *d, struct acct *a)
{
	int r = watch_idle(d, acct_be(a), a->conn, &a->main_slot, &a->fd);

	if (r > 0)
		submit(d, a, JOB_WAKE);
	else if (r < 0)
		submit(d, a, JOB_REFRESH);
}

static void arm_idle_conn(struct daemon *d, struct acct *a)
{
	int r = watch_idle(d, acct_be(a), a->idle_conn, &a->idle_slot,
			   &a->idle_fd);

	if (r != 0)
		submit_idle(d, a, r < 0); /* unwatchable: IDLE anew */
}

static void free_acct(struct acct *a)
{
	if (a->conn)
		acct_be(a)->disconnect(&a->conn);
	if (a->idle_conn) {
		struct mx_error e2;

		acct_be(a)->idle_done(a->idle_conn, &e2);
		acct_be(a)->disconnect(&a->idle_conn);
	}
	mx_account_free(&a->a);
	free(a);
}

static void job_done(struct daemon *d, struct acct *a)
{
	enum job_kind k = a->job;
	uint64_t now = now_ms();

	a->busy = false;
	a->job = JOB_NONE;
	if (k == JOB_STOP || a->removed) {
		struct acct **pp;

		if (a->conn && a->idling) {
			struct mx_error e2;

			acct_be(a)->idle_done(a->conn, &e2);
		}
		if (a->idle_fd >= 0) {
			epoll_ctl(d->epfd, EPOLL_CTL_DEL, a->idle_fd, NULL);
			a->idle_fd = -1;
		}
		if (a->idle_busy) {
			/* A worker still reads idle_conn: free on its return. */
			a->stop_done = true;
			return;
		}
		for (pp = &d->accts; *pp && *pp != a; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = a->next;
		if (a->removed)
			mx_info("account %s (#%u): stopped, connection closed",
				a->a.name, a->id);
		free_acct(a);
		return;
	}
	notify_webhooks(d);
	if (a->open_idle && a->idle_conn) {
		a->idle_live = true;
		a->idle_opened = now;
		a->idle_next_restart = now + (uint64_t)d->cfg.idle_restart_s * 1000;
		if (!d->stopping)
			arm_idle_conn(d, a);
	}
	if (a->job_rc != MX_OK) {
		snprintf(a->last_error, sizeof(a->last_error), "%s",
			 a->job_err.detail[0] ? a->job_err.detail
					      : mx_strerror(a->job_rc));
		if (d->stopping)
			return;
		if (a->job_rc == MX_ERR_AUTH) {
			/* Retrying cannot help until the credentials change:
			 * no loop.  SIGHUP (or a restart) tries again. */
			a->next_at = UINT64_MAX;
			set_state(d, a, MX_ST_AUTH_FAILED, a->last_error);
			return;
		}
		if (a->job_rc == MX_ERR_INSECURE || a->job_rc == MX_ERR_TLS_VERIFY ||
		    a->job_rc == MX_ERR_CONFIG) {
			/* A configuration problem: retry rarely. */
			a->backoff_ms = (uint64_t)d->cfg.backoff_max_s * 1000;
			a->next_at = now + a->backoff_ms;
			a->next_attempt_wall = mx_wall_s() + d->cfg.backoff_max_s;
			set_state(d, a, MX_ST_BACKOFF, a->last_error);
			return;
		}
		if (a->backoff_ms == 0)
			a->backoff_ms = (uint64_t)d->cfg.backoff_min_s * 1000;
		else if (a->backoff_ms < (uint64_t)d->cfg.backoff_max_s * 1000)
			a->backoff_ms *= 2;
		if (a->backoff_ms > (uint64_t)d->cfg.backoff_max_s * 1000)
			a->backoff_ms = (uint64_t)d->cfg.backoff_max_s * 1000;
		a->next_at = now + jitter(a->backoff_ms);
		a->next_attempt_wall = mx_wall_s() +
				       (int64_t)((a->next_at - now) / 1000);
		set_state(d, a, MX_ST_BACKOFF, a->last_error);
		return;
	}
	if (k == JOB_WAKE && a->job_keepalive) {
		/* The stored state never left "idle": no write needed. */
		a->state = MX_ST_IDLE;
		if (!d->stopping && a->pending == JOB_NONE) {
			arm_idle(d, a);
			return;
		}
	}
	a->backoff_ms = 0;
	a->last_error[0] = '\0';
	a->last_success = mx_wall_s();
	if (k == JOB_START || k == JOB_REFRESH)
		a->next_refresh = now + (uint64_t)d->cfg.folder_interval_s * 1000;
	if (d->stopping)
		return;
	if (a->pending != JOB_NONE) {
		enum job_kind p = a->pending;

		a->pending = JOB_NONE;
		submit(d, a, p);
		return;
	}
	if (a->idling) {
		set_state(d, a, MX_ST_IDLE, NULL);
		/* IDLE is re-issued well before the server's 30 min limit
		 * (RFC 2177), and other folders are checked on schedule;
		 * both by a REFRESH on the same connection. */
		a->next_at = now + (uint64_t)d->cfg.idle_restart_s * 1000;
		if (a->next_refresh < a->next_at)
			a->next_at = a->next_refresh;
		arm_idle(d, a);
	} else if (a->idle_live && a->job_separate) {
		/* IDLE runs on idle_conn (its own restart timer). */
		set_state(d, a, MX_ST_IDLE, NULL);
		a->next_at = a->next_refresh;
	} else {
		set_state(d, a, MX_ST_POLLING, NULL);
		a->next_at = now + (uint64_t)poll_interval_s(d, a) * 1000;
	}
}

static void idle_job_done(struct daemon *d, struct acct *a)
{
	uint64_t now = now_ms();

	a->idle_busy = false;
	if (a->stop_done) {
		struct acct **pp;

		for (pp = &d->accts; *pp && *pp != a; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = a->next;
		free_acct(a);
		return;
	}
	if (a->removed || d->stopping)
		return;
	if (a->idle_rc != MX_OK) {
		a->idle_live = false;
		mx_info("account %s: IDLE connection: %s", a->a.name,
			a->idle_err.detail[0] ? a->idle_err.detail
					      : mx_strerror(a->idle_rc));
		if (now - a->idle_opened < 60 * 1000) {
			/* Dropped soon after it opened: likely a server
			 * that allows one session; do not loop reopening. */
			mx_warn("account %s: IDLE connection closed within a "
				"minute; IDLE shares the sync connection",
				a->a.name);
			a->separate_off = true;
		}
		/* Reopen it (or IDLE on the sync connection), and sync what
		 * it may have missed. */
		if (a->state == MX_ST_IDLE || a->state == MX_ST_SYNCING ||
		    a->state == MX_ST_POLLING)
			submit(d, a, JOB_REFRESH);
		return;
	}
	if (a->idle_restart)
		a->idle_next_restart = now + (uint64_t)d->cfg.idle_restart_s * 1000;
	arm_idle_conn(d, a);
	/* A change told while a sync runs queues one more (submit keeps it
	 * as pending): none is lost.  In backoff the retry syncs anyway. */
	if (a->idle_changed && a->state != MX_ST_BACKOFF &&
	    a->state != MX_ST_AUTH_FAILED)
		submit(d, a, JOB_WAKE);
}

/* ---- accounts from the store ---- */

static bool same_account(const struct mx_account *x, const struct mx_account *y)
{
#define EQ(f) ((x->f == NULL && y->f == NULL) || \
	       (x->f && y->f && strcmp(x->f, y->f) == 0))
	return EQ(imap_url) && EQ(password) && EQ(password_file) &&
	       EQ(ca_file) && EQ(refresh_token) && EQ(oauth_token_url) &&
	       x->generation == y->generation &&
	       x->insecure_plaintext == y->insecure_plaintext &&
	       x->disabled == y->disabled && x->timeout_s == y->timeout_s &&
	       x->proto == y->proto && x->pop3_delete == y->pop3_delete;
#undef EQ
}

/* Stops account A's work and connections (WHY is logged); it is freed
 * once its job is back.  load_accounts() starts a new one for its id when
 * its record is still there. */
static void stop_acct(struct daemon *d, struct acct *a, const char *why)
{
	a->removed = true;
	a->cancel = 1; /* its sync stops at the next batch */
	mx_info("account %s (#%u): %s; stopping it", a->a.name, a->id, why);
	if (a->busy) {
		a->pending = JOB_STOP;
	} else {
		if (a->fd >= 0)
			epoll_ctl(d->epfd, EPOLL_CTL_DEL, a->fd, NULL);
		a->fd = -1;
		submit(d, a, JOB_STOP);
	}
	if (a->idle_fd >= 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, a->idle_fd, NULL);
		a->idle_fd = -1;
	}
}

/* (Re)reads the accounts: starts new ones, restarts changed ones, stops
 * removed ones, keeps the connections of unchanged ones. */
static int load_accounts(struct daemon *d, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc;

	rc = mx_account_list_all(d->st, &v, &n, err);
	if (rc)
		return rc;
	for (struct acct *a = d->accts; a; a = a->next) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = v[i].id == a->id && same_account(&v[i], &a->a);
		if (!found && !a->removed)
			stop_acct(d, a, "removed or changed");
	}
	for (size_t i = 0; i < n; i++) {
		struct acct *a;
		bool kept = false;

		for (a = d->accts; a; a = a->next)
			if (!a->removed && a->id == v[i].id)
				kept = true;
		if (kept) {
			for (a = d->accts; a; a = a->next)
				if (!a->removed && a->id == v[i].id)
					a->cfg = mx_config_account(&d->cfg, a->a.name);
			mx_account_free(&v[i]);
			continue;
		}
		a = calloc(1, sizeof(*a));
		if (a == NULL) {
			mx_account_free(&v[i]);
			continue;
		}
		a->id = v[i].id;
		a->a = v[i];
		a->fd = -1;
		a->idle_fd = -1;
		a->main_slot.a = a;
		a->idle_slot.a = a;
		a->idle_slot.idle = true;
		a->cfg = mx_config_account(&d->cfg, a->a.name);
		a->state = MX_ST_CONNECTING;
		a->next = d->accts;
		d->accts = a;
		if ((a->cfg && a->cfg->disabled) || a->a.disabled) {
			set_state(d, a, MX_ST_DISABLED,
				  a->a.disabled ? "disabled (mxsync account disable)"
						: "disabled in the configuration");
			a->next_at = UINT64_MAX;
		} else {
			a->state = MX_ST_INITIAL_SYNC;
			set_state(d, a, MX_ST_CONNECTING, NULL);
			submit(d, a, JOB_START);
		}
	}
	free(v);
	return MX_OK;
}

/* ---- webhooks and retention ---- */

/*
 * The endpoints made through the HTTP API (/v1/webhooks, kept in the
 * store): started, restarted or stopped to match their records, at start,
 * after a reload and on MX_API_KICK_WEBHOOKS.  CONFIG: mxsync.conf's
 * endpoints are registered first, so that the API lists them (read-only).
 */
static void sync_api_webhooks(struct daemon *d, bool config)
{
	struct mx_error err;

	mx_error_clear(&err);
	if (config && mx_webhook_ep_register_config(d->st, d->cfg.webhooks,
						    d->cfg.nwebhooks,
						    &err) != MX_OK)
		mx_log(MX_LOG_ERROR, "webhooks: registering mxsync.conf's "
		       "endpoints: %s", err.detail);
	pthread_rwlock_wrlock(&d->wh_lock);
	if (mx_webhook_set_sync(&d->apiwh, d->st, &err) != MX_OK)
		mx_log(MX_LOG_ERROR, "webhooks: %s", err.detail);
	pthread_rwlock_unlock(&d->wh_lock);
}

static void start_webhooks(struct daemon *d)
{
	pthread_rwlock_wrlock(&d->wh_lock);
	for (size_t i = 0; i < d->cfg.nwebhooks; i++) {
		struct mx_error err;

		if (mx_webhook_start(d->st, &d->cfg.webhooks[i], &d->wh[i],
				     &err) != MX_OK)
			mx_log(MX_LOG_ERROR, "%s", err.detail); /* names it */
	}
	pthread_rwlock_unlock(&d->wh_lock);
	sync_api_webhooks(d, true);
}

static void stop_webhooks(struct daemon *d)
{
	pthread_rwlock_wrlock(&d->wh_lock);
	for (size_t i = 0; i < MX_MAX_WEBHOOKS; i++)
		mx_webhook_stop(&d->wh[i]);
	mx_webhook_set_stop(&d->apiwh);
	pthread_rwlock_unlock(&d->wh_lock);
}

static void prune_events(struct daemon *d)
{
	struct mx_error err;
	uint64_t n = 0;

	if (d->cfg.retention_days == 0 && d->cfg.retention_count == 0)
		return;
	if (mx_events_prune(d->st, d->cfg.retention_days * 86400,
			    d->cfg.retention_count, &n, &err) != MX_OK)
		mx_warn("event retention: %s", err.detail);
	else if (n)
		mx_info("event retention: %" PRIu64 " events pruned", n);
	/* Finished outbox entries follow the same age limit. */
	if (d->cfg.retention_days > 0) {
		if (mx_outbox_prune(d->st, d->cfg.retention_days * 86400, &n,
				    &err) != MX_OK)
			mx_warn("outbox retention: %s", err.detail);
		else if (n)
			mx_info("outbox retention: %" PRIu64 " entries pruned", n);
	}
}

/* ---- the outbox ---- */

/*
 * Sends queued mail (src/lib/send/outbox.c).  Wakes every second and runs
 * the outbox when something was written to the store since the last run
 * (the event log's last id moved: `mxsync send --queue-only` or the API
 * queued mail) or when a retry or quota hold falls due.  Entries left in
 * "sending" by a crash are recovered at the first run.
 */
/* `enabled = no` in the configuration stops sending too. */
static bool account_disabled_in_config(const struct mx_account *a, void *ctx)
{
	struct daemon *d = ctx;
	const struct mx_acct_cfg *c;
	bool off;

	pthread_mutex_lock(&d->ob_mu);
	c = mx_config_account(&d->cfg, a->name);
	off = c && c->disabled;
	pthread_mutex_unlock(&d->ob_mu);
	return off;
}

static void *outbox_main(void *arg)
{
	struct daemon *d = arg;
	uint64_t seen = 0;
	int64_t next_due = 0;
	bool first = true;

	pthread_mutex_lock(&d->ob_mu);
	while (!d->ob_quit) {
		struct mx_error err;
		uint64_t last = 0;
		struct timespec ts;

		pthread_mutex_unlock(&d->ob_mu);
		if (mx_events_last_id(d->st, &last, &err) == MX_OK &&
		    (first || last != seen ||
		     (next_due && next_due <= mx_wall_s()))) {
			struct mx_ob_run_opts o = {0, 0, false, &d->stopping,
						   account_disabled_in_config, d};
			struct mx_ob_run_stats s;

			if (mx_outbox_run(d->st, &o, &s, &err) != MX_OK) {
				if (err.code != MX_ERR_CANCELLED)
					mx_warn("outbox: %s", err.detail);
			} else if (s.sent || s.failed || s.deferred || s.held ||
				   s.appended || s.recovered) {
				mx_info("outbox: sent %u (relay %u), failed %u, "
					"deferred %u, held %u, copied to Sent %u, "
					"recovered %u", s.sent, s.relayed,
					s.failed, s.deferred, s.held, s.appended,
					s.recovered);
			}
			/* Our own events do not count as news. */
			if (mx_events_last_id(d->st, &seen, NULL) != MX_OK)
				seen = last;
			next_due = mx_outbox_next_due(d->st);
			first = false;
		}
		pthread_mutex_lock(&d->ob_mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!d->ob_quit)
			pthread_cond_timedwait(&d->ob_cv, &d->ob_mu, &ts);
	}
	pthread_mutex_unlock(&d->ob_mu);
	return NULL;
}

static void start_outbox(struct daemon *d)
{
	pthread_mutex_init(&d->ob_mu, NULL);
	pthread_cond_init(&d->ob_cv, NULL);
	d->ob_started = pthread_create(&d->ob_thread, NULL, outbox_main, d) == 0;
	if (!d->ob_started)
		mx_log(MX_LOG_ERROR, "outbox: cannot start its thread");
}

static void stop_outbox(struct daemon *d)
{
	if (!d->ob_started)
		return;
	pthread_mutex_lock(&d->ob_mu);
	d->ob_quit = true;
	pthread_cond_signal(&d->ob_cv);
	pthread_mutex_unlock(&d->ob_mu);
	pthread_join(d->ob_thread, NULL);
	d->ob_started = false;
}

/* ---- requests of the HTTP API (src/api/: api_kick) ---- */

/* On an API thread: queue the request and wake the loop.  The same
 * request twice before the loop runs is kept once. */
static void api_kick_cb(void *ctx, enum mx_api_kick what, uint32_t account)
{
	struct daemon *d = ctx;
	uint64_t one = 1;
	bool dup = false;

	pthread_mutex_lock(&d->kick_mu);
	for (size_t i = 0; i < d->nkicks && !dup; i++)
		dup = d->kicks[i].what == what && d->kicks[i].account == account;
	if (!dup && d->nkicks == d->capkicks) {
		size_t cap = d->capkicks ? d->capkicks * 2 : 16;
		struct api_kick *v = realloc(d->kicks, cap * sizeof(*v));

		if (v) {
			d->kicks = v;
			d->capkicks = cap;
		}
	}
	if (!dup && d->nkicks < d->capkicks)
		d->kicks[d->nkicks++] = (struct api_kick){what, account};
	pthread_mutex_unlock(&d->kick_mu);
	if (write(d->kickfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		mx_warn("eventfd write: %s", strerror(errno));
}

static struct acct *acct_by_id(struct daemon *d, uint32_t id)
{
	for (struct acct *a = d->accts; a; a = a->next)
		if (a->id == id && !a->removed)
			return a;
	return NULL;
}

static void run_kick(struct daemon *d, const struct api_kick *k)
{
	struct mx_error err;
	struct acct *a;

	switch (k->what) {
	case MX_API_KICK_ACCOUNTS:
		/* As after SIGHUP: new accounts start, changed records
		 * restart, removed ones stop. */
		if (load_accounts(d, &err) != MX_OK)
			mx_warn("accounts: %s", err.detail);
		break;
	case MX_API_KICK_SYNC:
		a = acct_by_id(d, k->account);
		/* Idle or polling: its refresh runs at the next turn of the
		 * loop.  Busy: it is syncing already; in backoff the retry
		 * comes forward. */
		if (a && !a->busy && (a->state == MX_ST_IDLE ||
				      a->state == MX_ST_POLLING ||
				      a->state == MX_ST_BACKOFF))
			a->next_at = now_ms();
		break;
	case MX_API_KICK_OUTBOX:
		pthread_mutex_lock(&d->ob_mu);
		pthread_cond_signal(&d->ob_cv);
		pthread_mutex_unlock(&d->ob_mu);
		break;
	case MX_API_KICK_WEBHOOKS:
		sync_api_webhooks(d, false);
		break;
	case MX_API_KICK_RECONNECT:
		/* Its connections go; a fresh start connects again with
		 * backoff and auth_failed forgotten, as after an edit. */
		a = acct_by_id(d, k->account);
		if (a == NULL)
			break;
		stop_acct(d, a, "reconnect asked through the API");
		if (load_accounts(d, &err) != MX_OK)
			mx_warn("accounts: %s", err.detail);
		break;
	}
}

static void run_kicks(struct daemon *d)
{
	struct api_kick *v;
	uint64_t x;
	size_t n;

	if (read(d->kickfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
		mx_warn("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&d->kick_mu);
	v = d->kicks;
	n = d->nkicks;
	d->kicks = NULL;
	d->nkicks = d->capkicks = 0;
	pthread_mutex_unlock(&d->kick_mu);
	for (size_t i = 0; i < n && !d->stopping; i++)
		run_kick(d, &v[i]);
	free(v);
}

/* ---- main loop ---- */

static int reload(struct daemon *d)
{
	struct mx_config nc;
	struct mx_error err;

	if (mx_config_load(d->conf_path, &nc, &err) != MX_OK) {
		mx_log(MX_LOG_ERROR, "reload: %s; keeping the old configuration",
		       err.detail);
		return -1;
	}
	stop_webhooks(d);
	{
		struct retired_cfg *r = calloc(1, sizeof(*r));

		if (r == NULL) {
			mx_config_free(&nc);
			return -1;
		}
		r->cfg = d->cfg;
		r->next = d->retired;
		d->retired = r;
	}
	/* The sender thread reads the account settings under ob_mu. */
	pthread_mutex_lock(&d->ob_mu);
	d->cfg = nc;
	pthread_mutex_unlock(&d->ob_mu);
	/* The command line (-v, -D) wins over the file, as at start. */
	mx_log_level = d->cli_log_level > d->cfg.log_level ? d->cli_log_level
							    : d->cfg.log_level;
	mx_trace_mask = d->cli_trace | d->cfg.trace;
	for (struct acct *a = d->accts; a; a = a->next) {
		a->cfg = mx_config_account(&d->cfg, a->a.name);
		if (a->state == MX_ST_AUTH_FAILED && !a->busy) {
			a->state = MX_ST_BACKOFF;
			a->next_at = now_ms(); /* retry after a reload */
		}
	}
	if (load_accounts(d, &err) != MX_OK)
		mx_log(MX_LOG_ERROR, "reload: %s", err.detail);
	start_webhooks(d);
	mx_info("configuration reloaded");
	return 0;
}

/*
 * `mxsync account reauth` verified new credentials and left a "reauth"
 * mark in the account's state record: take the account out of
 * auth_failed with its current record from the store (the credentials
 * may have been edited meanwhile).
 */
static void check_reauth(struct daemon *d, struct acct *a)
{
	struct mx_account fresh = {0};
	struct mx_error err;
	struct mx_txn t;
	bool asked;

	if (mx_txn_begin(d->st, false, &t, NULL) != MX_OK)
		return;
	asked = mx_acctstate_reauth_requested(&t, a->id);
	mx_txn_abort(&t);
	if (!asked)
		return;
	if (mx_account_load(d->st, a->a.name, &fresh, &err) != MX_OK) {
		mx_warn("account %s: reauth: %s", a->a.name, err.detail);
		return;
	}
	mx_account_free(&a->a);
	a->a = fresh;
	mx_info("account %s: reauthorized, connecting again", a->a.name);
	a->backoff_ms = 0;
	a->next_at = now_ms();
	set_state(d, a, MX_ST_CONNECTING, NULL);
	submit(d, a, JOB_START);
}

/* `mxsync account remove` while we run: drop the account at once (its
 * sync is cancelled, its connection closed) rather than at the next
 * SIGHUP, when its batches would have gone on arriving. */
static void check_removals(struct daemon *d)
{
	struct mx_error err;
	uint64_t n;

	if (mx_account_removals(d->st, &n, &err) != MX_OK) {
		mx_warn("accounts: %s", err.detail);
		return;
	}
	if (n == d->removals_seen)
		return;
	d->removals_seen = n;
	if (load_accounts(d, &err) != MX_OK)
		mx_warn("accounts: %s", err.detail);
}

static void run_timers(struct daemon *d, uint64_t now)
{
	check_removals(d);
	for (struct acct *a = d->accts; a; a = a->next) {
		if (a->state == MX_ST_AUTH_FAILED && !a->busy && !a->removed &&
		    now >= a->next_reauth_check) {
			a->next_reauth_check = now + 1000;
			check_reauth(d, a);
		}
		if (a->idle_live && !a->idle_busy && !a->removed &&
		    now >= a->idle_next_restart)
			submit_idle(d, a, true);
		if (a->busy || a->removed || a->next_at > now)
			continue;
		a->next_at = UINT64_MAX;
		switch (a->state) {
		case MX_ST_BACKOFF:
		case MX_ST_CONNECTING:
			submit(d, a, JOB_START);
			break;
		case MX_ST_IDLE:
		case MX_ST_POLLING:
			submit(d, a, JOB_REFRESH);
			break;
		default:
			break;
		}
	}
	if (now >= d->next_prune) {
		prune_events(d);
		d->next_prune = now + 3600 * 1000;
	}
}

static int next_timeout(struct daemon *d, uint64_t now)
{
	uint64_t next = now + 1000; /* webhooks also poll once a second */

	for (struct acct *a = d->accts; a; a = a->next) {
		if (!a->busy && a->next_at < next)
			next = a->next_at;
		if (a->idle_live && !a->idle_busy &&
		    a->idle_next_restart < next)
			next = a->idle_next_restart;
	}
	return next <= now ? 0 : (int)(next - now);
}

static void drain_done(struct daemon *d)
{
	uint64_t v;
	struct job_slot **list;
	size_t n;

	if (read(d->donefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		mx_warn("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&d->mu);
	list = d->done;
	n = d->ndone;
	d->done = NULL;
	d->ndone = d->capdone = 0;
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		if (list[i]->idle)
			idle_job_done(d, list[i]->a);
		else
			job_done(d, list[i]->a);
	}
	free(list);
}

static bool any_busy(struct daemon *d)
{
	for (struct acct *a = d->accts; a; a = a->next)
		if (a->busy || a->idle_busy)
			return true;
	return false;
}

static int loop(struct daemon *d)
{
	struct epoll_event evs[64];
	uint64_t stop_deadline = 0, stop_interrupt = 0;

	for (;;) {
		uint64_t now = now_ms();
		bool store_changed = false;
		int n, timeout;

		if (d->stopping) {
			for (struct acct *a = d->accts; a; a = a->next)
				a->cancel = 1;
			if (!any_busy(d))
				break;
			if (now > stop_interrupt && !mx_net_interrupted()) {
				/* Batches in flight had their grace time; a
				 * worker still busy waits on a slow server: end
				 * its wait now rather than after its timeout. */
				mx_info("shutdown: interrupting network waits");
				mx_net_interrupt();
			}
			if (now > stop_deadline) {
				mx_warn("shutdown: jobs still running after %d s; "
					"exiting (committed data is safe)", 10);
				d->stuck = true;
				break;
			}
		}
		if (!d->stopping) {
			struct mx_error lerr;

			/* Someone deleted or replaced lock.mdb: our writes
			 * would no longer be serialised with theirs. */
			if (mx_store_check_lock(d->st, &lerr) != MX_OK) {
				mx_log(MX_LOG_ERROR, "%s", lerr.detail);
				d->lock_lost = true;
				d->stopping = 1;
				mx_api_drain(d->api);
				stop_deadline = now + 10000;
			}
		}
		timeout = d->stopping ? 100 : next_timeout(d, now);
		n = epoll_wait(d->epfd, evs, 64, timeout);
		if (n < 0 && errno != EINTR) {
			mx_log(MX_LOG_ERROR, "epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &d->sigfd) {
				struct signalfd_siginfo si;

				while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP && !d->stopping) {
						reload(d);
					} else if (si.ssi_signo == SIGTERM ||
						   si.ssi_signo == SIGINT) {
						if (!d->stopping)
							mx_info("shutting down: "
								"finishing batches in flight");
						d->stopping = 1;
						/* API clients get 503 from
						 * now, not a hang or a reset */
						mx_api_drain(d->api);
						stop_interrupt = now_ms() +
							MX_STOP_GRACE_MS;
						stop_deadline = now_ms() + 10000;
					}
				}
			} else if (p == &d->donefd) {
				drain_done(d);
			} else if (p == &d->store_wfd) {
				/* Drained before the waiters read (see
				 * mx_store_watch); they are woken below. */
				mx_store_watch_drain(d->store_wfd);
				store_changed = true;
			} else if (p == &d->kickfd) {
				run_kicks(d);
			} else {
				struct job_slot *js = p;
				struct acct *a = js->a;

				/* IDLE said something (or the peer left). */
				if (js->idle) {
					if (!a->idle_busy && !d->stopping)
						submit_idle(d, a, false);
				} else if (!a->busy && !d->stopping) {
					submit(d, a, JOB_WAKE);
				}
			}
		}
		if (!d->stopping) {
			run_timers(d, now_ms());
			/* A commit (ours or another process's, seen by the
			 * watch) wakes every waiter now.  Otherwise webhooks
			 * look again every tick (at most 1 s); long-polls and
			 * streams re-read on their own (src/api/events.c). */
			if (store_changed)
				notify_webhooks(d);
			else
				wake_webhooks(d);
		}
	}
	return 0;
}

/*
 * A store from before message summaries: the API's listing reads the
 * full record of each message that has none (slow), so they are written
 * now, 500 a write transaction, beside the workers.  Once all are there
 * this is one walk of the date index that writes nothing.
 */
static void *fill_main(void *arg)
{
	struct daemon *d = arg;
	uint8_t pos[20] = {0};
	size_t done, total = 0;
	bool more = true;
	struct mx_error err;

	while (more && !atomic_load(&d->fill_stop)) {
		if (mx_store_summaries_fill(d->st, pos, 500, &done, &more,
					    &err) != MX_OK) {
			mx_warn("message summaries: %s", err.detail);
			break;
		}
		total += done;
	}
	if (total)
		mx_info("message summaries: %zu written (messages stored "
			"before summaries)", total);
	return NULL;
}

static void usage(FILE *fp)
{
	fputs("usage: mxsyncd [-d DATA_DIR] [-c CONFIG] [-D CATS] [-v] [--syslog]\n"
	      "       mxsyncd --api-routes\n"
	      "Keeps every account of DATA_DIR in sync (IDLE push for INBOX),\n"
	      "records every change in the event feed and delivers it to the\n"
	      "configured webhooks; serves the HTTP API when CONFIG has [api].\n"
	      "CONFIG defaults to DATA_DIR/mxsync.conf.\n"
	      "SIGHUP reloads the configuration and the account list; SIGTERM\n"
	      "finishes the batches in flight and exits.  See mxsyncd(8).\n",
	      fp);
}

int main(int argc, char **argv)
{
	struct daemon d;
	struct mx_error err;
	struct epoll_event ev = {0};
	const char *dir = NULL;
	char *conf = NULL;
	bool use_syslog = false;
	sigset_t mask;
	int rc = 1;

	memset(&d, 0, sizeof(d));
	d.store_wfd = -1;
	mx_log_ident = "mxsyncd";
	/* Before any secret is in memory: no core dump may hold one. */
	if (mx_secrets_protect_process() != 0)
		mx_warn("cannot disable core dumps: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			d.conf_path = argv[++i];
		else if (!strcmp(argv[i], "-D") && i + 1 < argc) {
			if (mx_trace_parse(argv[++i], &mx_trace_mask) < 0) {
				fprintf(stderr, "mxsyncd: -D: imap,sync,store,webhook,smtp,pop3,all\n");
				return 2;
			}
		} else if (!strcmp(argv[i], "-v"))
			mx_log_level = MX_LOG_DEBUG;
		else if (!strcmp(argv[i], "--syslog"))
			use_syslog = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("mxsyncd %s\n", MX_VERSION_STRING);
			return 0;
		} else if (!strcmp(argv[i], "--api-routes")) {
			mx_api_print_routes(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (mx_store_open(dir, &d.st, &err) != MX_OK) {
		fprintf(stderr, "mxsyncd: %s\n", err.detail);
		return 6;
	}
	/* One daemon per data directory, held until exit. */
	if (mx_store_daemon_lock(d.st, &err) != MX_OK) {
		fprintf(stderr, "mxsyncd: %s\n", err.detail);
		mx_store_close(&d.st);
		return 1;
	}
	d.dir = mx_store_dir(d.st);
	if (d.conf_path == NULL) {
		if (asprintf(&conf, "%s/mxsync.conf", d.dir) < 0)
			goto out;
		d.conf_path = conf;
	}
	if (mx_config_load(d.conf_path, &d.cfg, &err) != MX_OK) {
		fprintf(stderr, "mxsyncd: %s\n", err.detail);
		rc = 2;
		goto out;
	}
	d.cli_log_level = mx_log_level;
	d.cli_trace = mx_trace_mask;
	mx_trace_mask |= d.cfg.trace;
	if (mx_log_level == MX_LOG_INFO)
		mx_log_level = d.cfg.log_level;
	if (use_syslog || d.cfg.syslog)
		mx_log_syslog("mxsyncd");
	srand((unsigned)(time(NULL) ^ getpid()));

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* Blocked before the workers start, so they inherit the mask and
	 * every signal arrives through the signalfd. */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	d.donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d.kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&d.kick_mu, NULL);
	d.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d.sigfd < 0 || d.donefd < 0 || d.kickfd < 0 || d.epfd < 0) {
		mx_log(MX_LOG_ERROR, "setup: %s", strerror(errno));
		goto out;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &d.sigfd;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.sigfd, &ev);
	ev.data.ptr = &d.donefd;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.donefd, &ev);
	d.store_wfd = mx_store_watch(d.st);
	ev.data.ptr = &d.store_wfd;
	if (d.store_wfd >= 0 &&
	    epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.store_wfd, &ev) < 0) {
		close(d.store_wfd);
		d.store_wfd = -1;
	}
	if (d.store_wfd < 0)
		mx_warn("cannot watch %s/data.mdb (inotify): commits by other "
			"processes reach long-polls and webhooks within 1 s",
			d.dir);
	ev.data.ptr = &d.kickfd;
	epoll_ctl(d.epfd, EPOLL_CTL_ADD, d.kickfd, &ev);
	/* After the signal mask: MHD's threads inherit it. */
	if (d.cfg.api_enabled &&
	    mx_api_start(&d.cfg.api, d.st, d.cfg.workers,
			 &(struct mx_api_hooks){.ctx = &d, .kick = api_kick_cb},
			 &d.api, &err) != MX_OK) {
		mx_log(MX_LOG_ERROR, "%s", err.detail);
		rc = 2;
		goto out;
	}
	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cv, NULL);
	pthread_rwlock_init(&d.wh_lock, NULL);
	d.nworkers = d.cfg.workers;
	d.workers = calloc((size_t)d.nworkers, sizeof(*d.workers));
	for (int i = 0; d.workers && i < d.nworkers; i++)
		pthread_create(&d.workers[i], NULL, worker_main, &d);
	mx_info("mxsyncd %s: data dir %s, config %s, %d workers",
		MX_VERSION_STRING, d.dir, d.conf_path, d.nworkers);
	start_webhooks(&d);
	start_outbox(&d);
	d.fill_started = pthread_create(&d.fill_thread, NULL, fill_main, &d) ==
			 0;
	if (mx_account_removals(d.st, &d.removals_seen, &err) != MX_OK)
		mx_warn("accounts: %s", err.detail);
	if (load_accounts(&d, &err) != MX_OK) {
		mx_log(MX_LOG_ERROR, "%s", err.detail);
	} else {
		d.next_prune = now_ms() + 60 * 1000;
		loop(&d);
		rc = d.lock_lost ? 6 : 0;
	}
	if (d.stuck) {
		/* A worker is blocked in network I/O: do not wait for its
		 * timeout.  LMDB aborts its open transaction, so the store
		 * stays consistent. */
		stop_webhooks(&d);
		_exit(d.lock_lost ? 6 : 0);
	}
	/* Shutdown: the sender and the workers first (they may hold
	 * connections), then LOGOUT what is left, then webhooks. */
	if (d.fill_started) {
		atomic_store(&d.fill_stop, true);
		pthread_join(d.fill_thread, NULL);
	}
	stop_outbox(&d);
	pthread_mutex_lock(&d.mu);
	d.quit = true;
	pthread_cond_broadcast(&d.cv);
	pthread_mutex_unlock(&d.mu);
	for (int i = 0; d.workers && i < d.nworkers; i++)
		pthread_join(d.workers[i], NULL);
	while (d.accts) {
		struct acct *a = d.accts;

		d.accts = a->next;
		if (!a->removed)
			set_state(&d, a, MX_ST_STOPPED, "daemon stopped");
		if (a->conn) {
			struct mx_error e2;

			if (a->idling)
				acct_be(a)->idle_done(a->conn, &e2);
			acct_be(a)->disconnect(&a->conn);
		}
		free_acct(a);
	}
	stop_webhooks(&d);
	mx_info("stopped");
out:
	mx_api_stop(&d.api);
	free(d.workers);
	free(d.queue);
	free(d.done);
	mx_config_free(&d.cfg);
	while (d.retired) {
		struct retired_cfg *r = d.retired;

		d.retired = r->next;
		mx_config_free(&r->cfg);
		free(r);
	}
	free(conf);
	if (d.epfd > 0)
		close(d.epfd);
	if (d.sigfd > 0)
		close(d.sigfd);
	if (d.donefd > 0)
		close(d.donefd);
	if (d.store_wfd >= 0)
		close(d.store_wfd);
	if (d.kickfd > 0)
		close(d.kickfd);
	free(d.kicks);
	mx_store_close(&d.st);
	return rc;
}
