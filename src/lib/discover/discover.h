/*
 * Server discovery from an e-mail address: which IMAP / POP3 / SMTP
 * servers serve USER@DOMAIN, without a provider preset.
 *
 * Two sources, in this order (doc/internals/discovery.md has the why):
 *  1. DNS SRV records (RFC 6186, RFC 8314 for _submissions._tcp):
 *     _imaps._tcp, _imap._tcp, _pop3s._tcp, _pop3._tcp, _submissions._tcp,
 *     _submission._tcp under DOMAIN, through glibc's resolver.  A target of
 *     "." means "service not offered" (RFC 6186 3.4) and is dropped.  DNS is
 *     not authenticated: a target outside DOMAIN is kept but flagged
 *     (foreign_domain) so that callers can warn.
 *  2. Only when SRV gave no incoming (IMAP or POP3) server: the autoconfig
 *     document (Thunderbird's config-v1.1.xml) from
 *       https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDR
 *       https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml
 *     over HTTPS only (certificate verified, redirects only to https, at
 *     most 3, body at most 64 KiB), parsed by a strict small XML parser
 *     (autoconfig.c): no DOCTYPE or entity declarations, depth and element
 *     limits.
 *
 * Plain-text-only servers are never offered.  Every attempt and every
 * rejected record or document leaves one line in the discovery log.
 */
#ifndef MX_DISCOVER_H
#define MX_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/* Largest autoconfig document accepted (bytes). */
#define MX_AUTOCONFIG_MAX (64 * 1024)

struct mx_disc_server {
	char *proto;          /* "imap", "pop3", "smtp" (owned) */
	char *host;           /* validated DNS name, no trailing dot (owned) */
	uint16_t port;        /* 1..65535 */
	enum mx_tls_mode tls; /* MX_TLS_IMPLICIT or MX_TLS_STARTTLS, never
				 MX_TLS_NONE */
	char *user;           /* login name with %EMAILADDRESS%,
				 %EMAILLOCALPART%, %EMAILDOMAIN% substituted;
				 NULL if the source does not say (owned) */
	unsigned auth;        /* MX_AUTH_* (account/presets.h) the source
				 announces; 0 if it does not say (SRV) */
	char *source;         /* "SRV _imaps._tcp.example.org" or
				 "autoconfig https://..." (owned) */
	int priority;         /* lower first; SRV records keep their DNS
				 priority, autoconfig entries come after every
				 SRV entry in document order */
	int weight;           /* SRV weight (higher first at equal priority),
				 0 for autoconfig */
	bool foreign_domain;  /* SRV target outside the address's domain:
				 usable but unauthenticated, warn the user */
};

struct mx_discovery {
	struct mx_disc_server *v; /* sorted: priority, then implicit TLS
				     before STARTTLS, then weight (owned) */
	size_t n;
	char *log; /* what was tried and why each attempt failed, one line
		      each, NUL-terminated; "" if nothing to say (owned) */
};

struct mx_discover_opts {
	const char *dns_server; /* "IPv4:PORT" replacing resolv.conf's name
				   servers (tests, split DNS); NULL = system */
	const char *ca_file;    /* PEM CA bundle for the autoconfig fetch;
				   NULL = system store */
	const char *connect_to; /* tests only: "HOST:PORT"; every HTTPS
				   connection goes there (CURLOPT_CONNECT_TO)
				   while URL, SNI and certificate name stay the
				   real host */
	int timeout_s;          /* per DNS query / HTTP fetch; <= 0 = 15 */
	bool no_srv, no_autoconfig;
};

/*
 * Discovers the servers for EMAIL ("local@domain").  OPTS may be NULL
 * (defaults).  OUT is always initialized, also on failure, and must be
 * released with mx_discovery_free(); on MX_ERR_NOTFOUND its log says what
 * was tried.
 * Returns MX_OK when at least one server was found.
 * Errors: MX_ERR_INVAL (EMAIL is not local@domain with a valid domain,
 * or a bad dns_server / connect_to), MX_ERR_NOTFOUND (nothing usable; the
 * detail lists each attempt and its outcome and ends with a hint to use
 * --imap or --provider), MX_ERR_NOMEM.
 */
int mx_discover(const char *email, const struct mx_discover_opts *opts,
		struct mx_discovery *out, struct mx_error *err);

/* Frees everything OUT owns and zeroes it.  NULL-safe. */
void mx_discovery_free(struct mx_discovery *d);

/* Best server of PROTO ("imap", "pop3", "smtp"), or NULL.  Points into D. */
const struct mx_disc_server *mx_discovery_best(const struct mx_discovery *d,
					       const char *proto);

/* The account URL of server SV for EMAIL (account add and POST
 * /v1/accounts): SCHEME://USER@HOST:PORT, the scheme from its protocol and
 * TLS (imaps, imap, pop3s, pop3, smtps, smtp), USER the login name the
 * source gives, else EMAIL.  malloc()ed; NULL when out of memory. */
char *mx_disc_url(const struct mx_disc_server *sv, const char *email);

/* ---- internal, exposed for the unit tests and the fuzz target ---- */

/*
 * Parses an autoconfig document (DOC, LEN bytes, not necessarily
 * NUL-terminated) for EMAIL and appends the usable servers to OUT with
 * SOURCE and priorities PRIO_BASE, PRIO_BASE + 1, ... in document order.
 * Rejected entries (wrong type, missing or bad hostname/port/socketType,
 * plain-text socketType, no supported authentication) leave one line each
 * in LOG ("incomingServer #2: port \"abc\" is not a number 1-65535").
 * Returns MX_OK if at least one server was added.
 * Errors: MX_ERR_PROTOCOL (not well-formed, DOCTYPE/ENTITY, too deep, too
 * many elements, not a clientConfig document; detail says where and why),
 * MX_ERR_NOTFOUND ("no usable server in autoconfig document"),
 * MX_ERR_NOMEM.  OUT keeps what it held before on any error.
 */
int mx_autoconfig_parse(const char *doc, size_t len, const char *email,
			const char *source, int prio_base,
			struct mx_discovery *out, struct mx_buf *log,
			struct mx_error *err);

/*
 * Parses one DNS answer MSG (LEN bytes) to the SRV query QNAME (e.g.
 * "_imaps._tcp.example.org") and appends its usable records to OUT as
 * PROTO/TLS servers of the e-mail DOMAIN.  Malformed messages, records of
 * other names or types, bad targets ("a..b", over-long labels), port 0 and
 * "." targets are skipped with a line in LOG.  Returns the number of
 * servers added, or -1 when the whole message is unparseable (logged) or
 * on ENOMEM.
 */
int mx_srv_parse(const unsigned char *msg, size_t len, const char *qname,
		 const char *proto, enum mx_tls_mode tls, const char *domain,
		 struct mx_discovery *out, struct mx_buf *log);

/* Sorts D->v into the documented order (stable). */
void mx_discovery_sort(struct mx_discovery *d);

/* True if NAME (no trailing dot) is a valid host name: LDH labels of 1-63
 * bytes, not starting or ending with '-', total at most 253, not all
 * digits in the last label. */
bool mx_disc_valid_host(const char *name);

/* True if HOST is DOMAIN or a subdomain of it (case-insensitive). */
bool mx_disc_in_domain(const char *host, const char *domain);

/* Appends a server (copies every string).  0, or -1 on ENOMEM. */
int mx_discovery_add(struct mx_discovery *d, const struct mx_disc_server *s);

#endif
