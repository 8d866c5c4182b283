/*
 * Unit tests of the network transport: our OpenSSL mailstream driver
 * against real TLS servers run in a thread of the test on 127.0.0.1.
 *
 * The certificates are made at start with OpenSSL's API, in memory and in
 * a mkdtemp() directory (for the CA files the client loads):
 *   ca        test CA
 *   good      signed by ca, DNS:localhost, IP:127.0.0.1
 *   other     signed by ca, DNS:other.test only (name mismatch)
 *   self      self-signed, DNS:localhost, IP:127.0.0.1
 *   other_ca  an unrelated CA (wrong trust anchor)
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/net.h"

struct ident {
	X509 *cert;
	EVP_PKEY *key;
};

static char tmpdir[64];
static char ca_path[128], other_ca_path[128], junk_path[128];
static struct ident ca, other_ca, good, other, self;

/* ---- certificates ------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "test_net: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, v3, nid, value);

	if (ex == NULL || X509_add_ext(x, ex, -1) != 1)
		die(value);
	X509_EXTENSION_free(ex);
}

/*
 * Makes a P-256 key and a certificate for CN, signed by ISSUER (NULL:
 * self-signed).  CA true makes a CA; SAN NULL omits subjectAltName.
 */
static struct ident make_ident(const char *cn, const struct ident *issuer,
			       bool ca_cert, const char *san)
{
	static long serial = 1;
	struct ident id;
	X509V3_CTX v3;
	X509_NAME *name;

	id.key = EVP_EC_gen("P-256");
	id.cert = X509_new();
	if (id.key == NULL || id.cert == NULL)
		die("key generation");
	X509_set_version(id.cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(id.cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(id.cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(id.cert), 86400);
	X509_set_pubkey(id.cert, id.key);
	name = X509_get_subject_name(id.cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	if (issuer != NULL)
		name = X509_get_subject_name(issuer->cert);
	X509_set_issuer_name(id.cert, name);
	X509V3_set_ctx(&v3, issuer ? issuer->cert : id.cert, id.cert, NULL,
		       NULL, 0);
	add_ext(id.cert, &v3, NID_basic_constraints,
		ca_cert ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(id.cert, &v3, NID_subject_key_identifier, "hash");
	if (ca_cert)
		add_ext(id.cert, &v3, NID_key_usage,
			"critical,keyCertSign,cRLSign");
	if (issuer != NULL) {
		add_ext(id.cert, &v3, NID_authority_key_identifier,
			"keyid:always");
		add_ext(id.cert, &v3, NID_key_usage,
			"critical,digitalSignature");
		add_ext(id.cert, &v3, NID_ext_key_usage, "serverAuth");
	}
	if (san != NULL)
		add_ext(id.cert, &v3, NID_subject_alt_name, san);
	if (X509_sign(id.cert, issuer ? issuer->key : id.key,
		      EVP_sha256()) == 0)
		die("X509_sign");
	return id;
}

static void write_pem(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || PEM_write_X509(f, cert) != 1 || fclose(f) != 0)
		die(path);
}

static void ident_free(struct ident *id)
{
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
}

static void fixtures_setup(void)
{
	FILE *f;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mx-test-net-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		die("mkdtemp");
	ca = make_ident("mxsync test CA", NULL, true, NULL);
	other_ca = make_ident("unrelated CA", NULL, true, NULL);
	good = make_ident("localhost", &ca, false,
			  "DNS:localhost,IP:127.0.0.1");
	other = make_ident("other.test", &ca, false, "DNS:other.test");
	/* Like `openssl req -x509`: no key usage, the issuer is itself. */
	self = make_ident("localhost", NULL, false,
			  "DNS:localhost,IP:127.0.0.1");
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	snprintf(other_ca_path, sizeof(other_ca_path), "%s/other-ca.pem",
		 tmpdir);
	snprintf(junk_path, sizeof(junk_path), "%s/junk.pem", tmpdir);
	write_pem(ca_path, ca.cert);
	write_pem(other_ca_path, other_ca.cert);
	f = fopen(junk_path, "w");
	if (f == NULL || fputs("not a certificate\n", f) < 0 || fclose(f) != 0)
		die(junk_path);
}

static void fixtures_teardown(void)
{
	char path[160];

	/* left behind by test_ca_file_replaced if it failed */
	snprintf(path, sizeof(path), "%s/rotating.pem", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/rotating.pem.new", tmpdir);
	unlink(path);
	unlink(ca_path);
	unlink(other_ca_path);
	unlink(junk_path);
	rmdir(tmpdir);
	ident_free(&ca);
	ident_free(&other_ca);
	ident_free(&good);
	ident_free(&other);
	ident_free(&self);
}

/* ---- an in-process server: one connection, one scripted play ------ */

struct peer {
	int fd;
	SSL *ssl;
};

struct server;
typedef void play_fn(struct server *srv, struct peer *p);

struct server {
	int lfd;
	uint16_t port;
	SSL_CTX *ctx;      /* implicit TLS; NULL = plain */
	SSL_CTX *tls_ctx;  /* for STARTTLS plays */
	play_fn *play;
	bool no_close_notify; /* vanish without TLS close_notify */
	pthread_t thread;
	/* results, read by the test after server_stop() */
	bool accepted, handshake_ok;
	char sni[64];
	char got[128];
};

static SSL_CTX *server_ctx(const struct ident *id, int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL || SSL_CTX_use_certificate(ctx, id->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, id->key) != 1)
		die("server context");
	if (version != 0) {
		/*
		 * OpenSSL 3 allows TLS < 1.2 only at security level 0; a
		 * server stuck on an old version is what we emulate.
		 */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		if (SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
		    SSL_CTX_set_max_proto_version(ctx, version) != 1)
			die("server protocol version");
	}
	return ctx;
}

static void peer_write(struct peer *p, const char *s)
{
	size_t n = strlen(s);

	if (p->ssl != NULL)
		SSL_write(p->ssl, s, (int)n);
	else
		(void)send(p->fd, s, n, MSG_NOSIGNAL);
}

/* Reads one line (CRLF stripped); false on EOF or error. */
static bool peer_read_line(struct peer *p, char *buf, size_t size)
{
	size_t n = 0;
	char c;

	for (;;) {
		int r = p->ssl ? SSL_read(p->ssl, &c, 1)
			       : (int)recv(p->fd, &c, 1, 0);

		if (r <= 0)
			return false;
		if (c == '\n')
			break;
		if (c != '\r' && n + 1 < size)
			buf[n++] = c;
	}
	buf[n] = '\0';
	return true;
}

/* Waits until the client closes (or the socket timeout fires). */
static void peer_drain(struct peer *p)
{
	char buf[256];

	while (p->ssl ? SSL_read(p->ssl, buf, sizeof(buf)) > 0
		      : recv(p->fd, buf, sizeof(buf), 0) > 0)
		;
}

static bool peer_accept_tls(struct server *srv, struct peer *p, SSL_CTX *ctx)
{
	const char *sni;

	p->ssl = SSL_new(ctx);
	if (p->ssl == NULL || SSL_set_fd(p->ssl, p->fd) != 1 ||
	    SSL_accept(p->ssl) != 1)
		return false;
	sni = SSL_get_servername(p->ssl, TLSEXT_NAMETYPE_host_name);
	snprintf(srv->sni, sizeof(srv->sni), "%s", sni ? sni : "");
	srv->handshake_ok = true;
	return true;
}

static void *server_main(void *arg)
{
	struct server *srv = arg;
	struct pollfd pfd = {.fd = srv->lfd, .events = POLLIN};
	struct timeval tv = {.tv_sec = 10};
	struct peer p = {.fd = -1};

	/* Never hang the suite: give up if the client does not come. */
	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	p.fd = accept(srv->lfd, NULL, NULL);
	if (p.fd < 0)
		return NULL;
	srv->accepted = true;
	setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (srv->ctx == NULL || peer_accept_tls(srv, &p, srv->ctx))
		srv->play(srv, &p);
	if (p.ssl != NULL && srv->handshake_ok && !srv->no_close_notify)
		SSL_shutdown(p.ssl);
	SSL_free(p.ssl);
	close(p.fd);
	ERR_clear_error();
	return NULL;
}

static int listen_loopback(uint16_t *port_r)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/* Starts SRV: CTX (owned by SRV) for implicit TLS, NULL for plain. */
static void server_start(struct server *srv, SSL_CTX *ctx, play_fn *play)
{
	memset(srv, 0, sizeof(*srv));
	srv->ctx = ctx;
	srv->play = play;
	srv->lfd = listen_loopback(&srv->port);
	ck_assert_int_eq(listen(srv->lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&srv->thread, NULL, server_main, srv),
			 0);
}

static void server_stop(struct server *srv)
{
	pthread_join(srv->thread, NULL);
	close(srv->lfd);
	SSL_CTX_free(srv->ctx);
	SSL_CTX_free(srv->tls_ctx);
}

/* ---- plays -------------------------------------------------------- */

/* Two lines in one write, so the client has one left in its buffer. */
static void play_echo(struct server *srv, struct peer *p)
{
	char line[100], out[128];

	if (!peer_read_line(p, line, sizeof(line)))
		return;
	snprintf(srv->got, sizeof(srv->got), "%s", line);
	snprintf(out, sizeof(out), "echo: %s\r\nbye\r\n", line);
	peer_write(p, out);
	peer_drain(p);
}

/* An IMAP greeting, then LOGOUT (mailimap_free sends it) is answered. */
static void play_greet(struct server *srv, struct peer *p)
{
	char line[100], out[160], *sp;

	peer_write(p, "* OK ready\r\n");
	if (!peer_read_line(p, line, sizeof(line)))
		return;
	snprintf(srv->got, sizeof(srv->got), "%s", line);
	sp = strchr(line, ' ');
	if (sp == NULL)
		return;
	*sp = '\0';
	snprintf(out, sizeof(out), "* BYE logging out\r\n%s OK LOGOUT done\r\n",
		 line);
	peer_write(p, out);
	peer_drain(p);
}

static void play_silent(struct server *srv, struct peer *p)
{
	peer_drain(p);
}

/* A slow drip: one byte every 100 ms, 100 at most, never a line end. */
static void play_drip(struct server *srv, struct peer *p)
{
	for (int i = 0; i < 100; i++) {
		if (send(p->fd, "x", 1, MSG_NOSIGNAL) != 1)
			return; /* the client gave up */
		usleep(100 * 1000);
	}
}

static void play_close_midline(struct server *srv, struct peer *p)
{
	peer_write(p, "* partial");
}

static void play_starttls(struct server *srv, struct peer *p)
{
	char line[100];

	if (!peer_read_line(p, line, sizeof(line)))
		return;
	snprintf(srv->got, sizeof(srv->got), "%s", line);
	peer_write(p, "OK\r\n");
	if (peer_accept_tls(srv, p, srv->tls_ctx))
		play_echo(srv, p);
}

/* The reply and an injected line in one segment, before the handshake. */
static void play_inject(struct server *srv, struct peer *p)
{
	char line[100];

	if (!peer_read_line(p, line, sizeof(line)))
		return;
	peer_write(p, "OK\r\ninjected\r\n");
	peer_drain(p);
}

/* ---- client helpers ----------------------------------------------- */

static struct mx_net_opts opts_with(const char *ca_file, int timeout_s)
{
	struct mx_net_opts o = {.ca_file = ca_file, .timeout_s = timeout_s};

	return o;
}

/* Connects to SRV and expects failure CODE with DETAIL in the text. */
static void expect_connect_error(struct server *srv, const char *host,
				 const char *ca_file, int code,
				 const char *detail)
{
	struct mx_net_opts o = opts_with(ca_file, 5);
	struct mx_error err;
	mailstream *s = (mailstream *)1;

	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect(host, srv->port, true, &o, &s, &err),
			 code);
	ck_assert_int_eq(err.code, code);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err.detail, detail) != NULL,
		      "detail \"%s\" lacks \"%s\"", err.detail, detail);
	server_stop(srv);
}

/* Writes LINE, expects "echo: LINE" then "bye" (already buffered). */
static void echo_roundtrip(mailstream *s, const char *line)
{
	MMAPString *buf = mmap_string_new("");
	char want[128];
	char *got;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(mailstream_write(s, line, strlen(line)),
			 (int)strlen(line));
	ck_assert_int_eq(mailstream_write(s, "\r\n", 2), 2);
	ck_assert_int_eq(mailstream_flush(s), 0);
	got = mailstream_read_line_remove_eol(s, buf);
	ck_assert_ptr_nonnull(got);
	snprintf(want, sizeof(want), "echo: %s", line);
	ck_assert_str_eq(got, want);
	/* "bye" came in the same record: buffered, invisible to poll() */
	ck_assert_uint_gt(mx_net_pending(s), 0);
	mmap_string_truncate(buf, 0);
	got = mailstream_read_line_remove_eol(s, buf);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, "bye");
	ck_assert_uint_eq(mx_net_pending(s), 0);
	mmap_string_free(buf);
}

/* ---- tests -------------------------------------------------------- */

static const char *const echo_hosts[] = {"localhost", "127.0.0.1"};

START_TEST(test_tls_echo)
{
	const char *host = echo_hosts[_i];
	struct mx_net_opts o = opts_with(ca_path, 5);
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;

	server_start(&srv, server_ctx(&good, 0), play_echo);
	mx_error_clear(&err);
	ck_assert_msg(mx_net_connect(host, srv.port, true, &o, &s, &err) ==
		      MX_OK, "connect: %s", err.detail);
	ck_assert(mx_net_is_tls(s));
	ck_assert_int_ge(mx_net_fd(s), 0);
	ck_assert_uint_eq(mx_net_pending(s), 0);
	echo_roundtrip(s, "hello over TLS");
	mailstream_close(s);
	server_stop(&srv);
	ck_assert(srv.handshake_ok);
	ck_assert_str_eq(srv.got, "hello over TLS");
	/* SNI for names only, never for IP literals (RFC 6066) */
	ck_assert_str_eq(srv.sni, _i == 0 ? "localhost" : "");
}
END_TEST

START_TEST(test_wrong_ca)
{
	struct server srv;

	server_start(&srv, server_ctx(&good, 0), play_echo);
	expect_connect_error(&srv, "localhost", other_ca_path,
			     MX_ERR_TLS_VERIFY,
			     "certificate verify failed: unable to get local issuer certificate (host localhost)");
}
END_TEST

START_TEST(test_self_signed)
{
	struct mx_net_opts o = opts_with(ca_path, 5);
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;

	server_start(&srv, server_ctx(&self, 0), play_echo);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, true, &o, &s,
					&err), MX_ERR_TLS_VERIFY);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err.detail, "certificate verify failed: ") &&
		      (strstr(err.detail, "self-signed") ||
		       strstr(err.detail, "self signed")),
		      "detail: %s", err.detail);
	server_stop(&srv);
}
END_TEST

/* A certificate of our CA, but for DNS:other.test only. */
START_TEST(test_host_mismatch)
{
	const char *host = echo_hosts[_i];
	struct server srv;
	char want[128];

	snprintf(want, sizeof(want),
		 "host name mismatch: certificate is not valid for %s", host);
	server_start(&srv, server_ctx(&other, 0), play_echo);
	expect_connect_error(&srv, host, ca_path, MX_ERR_TLS_VERIFY, want);
}
END_TEST

START_TEST(test_old_tls_refused)
{
	struct server srv;

	server_start(&srv, server_ctx(&good, TLS1_1_VERSION), play_echo);
	/*
	 * The server answers our TLS 1.2+ hello with a protocol_version
	 * alert; "protocol version" also proves the server was really up
	 * on TLS 1.1 (a server without any protocol fails differently).
	 */
	expect_connect_error(&srv, "localhost", ca_path, MX_ERR_TLS,
			     "protocol version");
	ck_assert(srv.accepted);
	ck_assert(!srv.handshake_ok);
}
END_TEST

START_TEST(test_ca_file_unusable)
{
	struct mx_net_opts o = opts_with("/nonexistent/mx/ca.pem", 5);
	struct mx_error err;
	mailstream *s = NULL;

	/* Fails before any connection: port 1 is never contacted. */
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", 1, true, &o, &s, &err),
			 MX_ERR_CONFIG);
	ck_assert_str_eq(err.detail,
			 "CA file /nonexistent/mx/ca.pem: no such file or directory");
	o.ca_file = junk_path;
	ck_assert_int_eq(mx_net_connect("localhost", 1, true, &o, &s, &err),
			 MX_ERR_CONFIG);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err.detail, junk_path) != NULL, "detail: %s",
		      err.detail);
}
END_TEST

/*
 * Client contexts are shared per CA file; replacing the file on disk must
 * take effect at the next connection, not at the next restart.
 */
START_TEST(test_ca_file_replaced)
{
	struct mx_net_opts o;
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	char path[160], tmp[170];

	/* Fixed names, so that fixtures_teardown() removes them anyway. */
	snprintf(path, sizeof(path), "%s/rotating.pem", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s/rotating.pem.new", tmpdir);
	o = opts_with(path, 5);
	write_pem(path, ca.cert);
	for (int round = 0; round < 2; round++) {
		server_start(&srv, server_ctx(&good, 0), play_echo);
		mx_error_clear(&err);
		ck_assert_msg(mx_net_connect("localhost", srv.port, true, &o,
					     &s, &err) == MX_OK,
			      "round %d: %s", round, err.detail);
		echo_roundtrip(s, "rotate");
		mailstream_close(s);
		server_stop(&srv);
	}
	/* Trust only the unrelated CA from now on: same path, new file. */
	write_pem(tmp, other_ca.cert);
	ck_assert_int_eq(rename(tmp, path), 0);
	server_start(&srv, server_ctx(&good, 0), play_echo);
	expect_connect_error(&srv, "localhost", path, MX_ERR_TLS_VERIFY,
			     "certificate verify failed");
	unlink(path);
}
END_TEST

/* Plain connection; "STARTTLS" / "OK" in clear text, then TLS. */
START_TEST(test_starttls)
{
	struct mx_net_opts o = opts_with(ca_path, 5);
	MMAPString *buf = mmap_string_new("");
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	char *line;

	server_start(&srv, NULL, play_starttls);
	srv.tls_ctx = server_ctx(&good, 0);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, false, &o, &s,
					&err), MX_OK);
	ck_assert(!mx_net_is_tls(s));
	mailstream_write(s, "STARTTLS\r\n", 10);
	ck_assert_int_eq(mailstream_flush(s), 0);
	line = mailstream_read_line_remove_eol(s, buf);
	ck_assert_ptr_nonnull(line);
	ck_assert_str_eq(line, "OK");
	ck_assert_msg(mx_net_starttls(s, "localhost", &o, &err) == MX_OK,
		      "starttls: %s", err.detail);
	ck_assert(mx_net_is_tls(s));
	echo_roundtrip(s, "hello after STARTTLS");
	mailstream_close(s);
	mmap_string_free(buf);
	server_stop(&srv);
	ck_assert_str_eq(srv.got, "hello after STARTTLS");
	ck_assert_str_eq(srv.sni, "localhost");
}
END_TEST

START_TEST(test_starttls_injection)
{
	struct mx_net_opts o = opts_with(ca_path, 5);
	MMAPString *buf = mmap_string_new("");
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	char *line;

	server_start(&srv, NULL, play_inject);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("127.0.0.1", srv.port, false, &o, &s,
					&err), MX_OK);
	mailstream_write(s, "STARTTLS\r\n", 10);
	ck_assert_int_eq(mailstream_flush(s), 0);
	line = mailstream_read_line_remove_eol(s, buf);
	ck_assert_ptr_nonnull(line);
	ck_assert_str_eq(line, "OK");
	ck_assert_uint_gt(mx_net_pending(s), 0);
	ck_assert_int_eq(mx_net_starttls(s, "127.0.0.1", &o, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail,
			 "data received before TLS handshake (possible STARTTLS injection)");
	ck_assert(!mx_net_is_tls(s));
	mailstream_close(s);
	mmap_string_free(buf);
	server_stop(&srv);
}
END_TEST

START_TEST(test_refused)
{
	struct mx_net_opts o = opts_with(NULL, 5);
	struct mx_error err;
	mailstream *s = NULL;
	char want[128];
	uint16_t port;
	int fd;

	/* A port we bound but do not listen on: the kernel refuses it. */
	fd = listen_loopback(&port);
	snprintf(want, sizeof(want), "connect 127.0.0.1:%u: connection refused",
		 (unsigned)port);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("127.0.0.1", port, false, &o, &s, &err),
			 MX_ERR_NET);
	ck_assert_str_eq(err.detail, want);
	ck_assert_ptr_null(s);
	close(fd);
}
END_TEST

START_TEST(test_read_timeout)
{
	struct mx_net_opts o = opts_with(ca_path, 1);
	MMAPString *buf = mmap_string_new("");
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	uint64_t t0, ms;

	server_start(&srv, server_ctx(&good, 0), play_silent);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, true, &o, &s,
					&err), MX_OK);
	t0 = mx_now_ms();
	ck_assert_ptr_null(mailstream_read_line(s, buf));
	ms = mx_now_ms() - t0;
	ck_assert_int_eq(mx_net_stream_error(s, &err), MX_ERR_TIMEOUT);
	ck_assert_str_eq(err.detail, "timed out after 1 s");
	ck_assert_msg(ms >= 900 && ms < 3000, "took %llu ms",
		      (unsigned long long)ms);
	mailstream_close(s);
	mmap_string_free(buf);
	server_stop(&srv);
}
END_TEST

/* 0: TLS with close_notify, 1: TLS without (TCP FIN only), 2: plain. */
START_TEST(test_closed_midstream)
{
	struct mx_net_opts o = opts_with(ca_path, 5);
	MMAPString *buf = mmap_string_new("");
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;

	server_start(&srv, _i == 2 ? NULL : server_ctx(&good, 0),
		     play_close_midline);
	srv.no_close_notify = _i == 1;
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, _i != 2, &o, &s,
					&err), MX_OK);
	/* The partial line must not be handed out as a complete one. */
	ck_assert_ptr_null(mailstream_read_line(s, buf));
	ck_assert_int_eq(mx_net_stream_error(s, &err), MX_ERR_NET);
	ck_assert_str_eq(err.detail, "connection closed by server");
	mailstream_close(s);
	mmap_string_free(buf);
	server_stop(&srv);
}
END_TEST

START_TEST(test_cancel)
{
	struct mx_net_opts o = opts_with(ca_path, 5);
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	char c;

	server_start(&srv, server_ctx(&good, 0), play_silent);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, true, &o, &s,
					&err), MX_OK);
	mailstream_cancel(s);
	ck_assert_int_eq(mailstream_read(s, &c, 1), -1);
	ck_assert_int_eq(mx_net_stream_error(s, &err), MX_ERR_CANCELLED);
	mailstream_close(s);
	server_stop(&srv);
}
END_TEST

/*
 * Every byte arrives well within the 1 s timeout, so only the step
 * deadline (timeout + 1 s/KiB) stops the read: after about 10 bytes, not
 * after the whole 100 and the server's close.
 */
START_TEST(test_drip_deadline)
{
	struct mx_net_opts o = opts_with(NULL, 1);
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	size_t got = 0;
	char c;

	server_start(&srv, NULL, play_drip);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("127.0.0.1", srv.port, false, &o, &s,
					&err), MX_OK);
	while (mailstream_read(s, &c, 1) == 1)
		got++;
	ck_assert_int_eq(mx_net_stream_error(s, &err), MX_ERR_TIMEOUT);
	ck_assert_msg(strstr(err.detail, "server too slow") != NULL, "%s",
		      err.detail);
	ck_assert_msg(got > 0 && got < 50, "read %zu bytes", got);
	/* A timed-out connection is dead: nothing more goes out on it. */
	ck_assert_int_eq(mailstream_write(s, "a LOGOUT\r\n", 10), 10);
	ck_assert_int_eq(mailstream_flush(s), -1);
	mailstream_close(s);
	server_stop(&srv);
}
END_TEST

static void *interrupt_later(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	mx_net_interrupt();
	return NULL;
}

/* Sets the process-wide flag: relies on Check's fork mode (the default). */
START_TEST(test_interrupt)
{
	struct mx_net_opts o = opts_with(ca_path, 30);
	struct server srv;
	struct mx_error err;
	mailstream *s = NULL;
	pthread_t t;
	char c;

	server_start(&srv, server_ctx(&good, 0), play_silent);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, true, &o, &s,
					&err), MX_OK);
	ck_assert(mx_net_active());
	ck_assert_int_eq(pthread_create(&t, NULL, interrupt_later, NULL), 0);
	/* Blocked in poll() in this thread; woken by the other one. */
	ck_assert_int_eq(mailstream_read(s, &c, 1), -1);
	pthread_join(t, NULL);
	ck_assert_int_eq(mx_net_stream_error(s, &err), MX_ERR_CANCELLED);
	ck_assert_str_eq(err.detail, "interrupted");
	ck_assert(mx_net_interrupted());
	mailstream_close(s);
	ck_assert(!mx_net_active());
	/* And every later connection of the process. */
	s = NULL;
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, true, &o, &s,
					&err), MX_ERR_CANCELLED);
	ck_assert_ptr_null(s);
	server_stop(&srv);
}
END_TEST

/* libetpan's IMAP client on top of our stream; mailimap_free closes it. */
START_TEST(test_mailimap_connect)
{
	struct mx_net_opts o = opts_with(ca_path, 5);
	struct server srv;
	struct mx_error err;
	mailimap *imap;
	mailstream *s = NULL;
	uint64_t t0;

	server_start(&srv, server_ctx(&good, 0), play_greet);
	mx_error_clear(&err);
	ck_assert_int_eq(mx_net_connect("localhost", srv.port, true, &o, &s,
					&err), MX_OK);
	imap = mailimap_new(0, NULL);
	ck_assert_ptr_nonnull(imap);
	ck_assert_int_eq(mailimap_connect(imap, s),
			 MAILIMAP_NO_ERROR_NON_AUTHENTICATED);
	ck_assert(mx_net_is_tls(imap->imap_stream));
	t0 = mx_now_ms();
	mailimap_free(imap);
	server_stop(&srv);
	ck_assert_str_eq(srv.got + strcspn(srv.got, " "), " LOGOUT");
	ck_assert_uint_lt(mx_now_ms() - t0, 2000);
}
END_TEST

/* Streams that are not ours get neutral answers, not crashes. */
START_TEST(test_foreign_stream)
{
	struct mx_error err;
	mailstream *s;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s = mailstream_socket_open(sv[0]);
	ck_assert_ptr_nonnull(s);
	mx_error_clear(&err);
	ck_assert(!mx_net_is_tls(s));
	ck_assert_int_eq(mx_net_fd(s), sv[0]);
	ck_assert_uint_eq(mx_net_pending(s), 0);
	ck_assert_int_eq(mx_net_starttls(s, "localhost", NULL, &err),
			 MX_ERR_INVAL);
	ck_assert_int_eq(mx_net_stream_error(s, &err), MX_ERR_NET);
	ck_assert_str_eq(err.detail, "stream error");
	ck_assert(!mx_net_is_tls(NULL));
	ck_assert_int_eq(mx_net_fd(NULL), -1);
	ck_assert_uint_eq(mx_net_pending(NULL), 0);
	mailstream_close(s);
	close(sv[1]);
}
END_TEST

START_TEST(test_is_loopback)
{
	static const struct {
		const char *host;
		bool loopback;
	} cases[] = {
		{"localhost", true},
		{"LocalHost", true},
		{"localhost.", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"127.255.255.255", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:127.9.9.9", true},
		{"128.0.0.1", false},
		{"126.255.255.255", false},
		{"10.0.0.1", false},
		{"::2", false},
		{"::", false},
		{"::ffff:10.0.0.1", false},
		{"localhost.example.com", false},
		{"mylocalhost", false},
		{"127.0.0.1.example.com", false},
		{"", false},
	};

	for (size_t i = 0; i < MX_ARRAY_SIZE(cases); i++)
		ck_assert_msg(mx_net_is_loopback(cases[i].host) ==
			      cases[i].loopback, "%s", cases[i].host);
	ck_assert(!mx_net_is_loopback(NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net");
	TCase *tls = tcase_create("tls");
	TCase *sock = tcase_create("socket");
	TCase *misc = tcase_create("misc");
	SRunner *sr;
	int nf;

	/* Every mxsync program ignores SIGPIPE; so does this one. */
	signal(SIGPIPE, SIG_IGN);
	fixtures_setup();

	tcase_add_loop_test(tls, test_tls_echo, 0, 2);
	tcase_add_test(tls, test_wrong_ca);
	tcase_add_test(tls, test_self_signed);
	tcase_add_loop_test(tls, test_host_mismatch, 0, 2);
	tcase_add_test(tls, test_old_tls_refused);
	tcase_add_test(tls, test_ca_file_unusable);
	tcase_add_test(tls, test_ca_file_replaced);
	tcase_add_test(tls, test_starttls);
	tcase_add_test(tls, test_starttls_injection);
	tcase_add_test(tls, test_mailimap_connect);
	tcase_add_test(sock, test_refused);
	tcase_add_test(sock, test_read_timeout);
	tcase_add_loop_test(sock, test_closed_midstream, 0, 3);
	tcase_add_test(sock, test_cancel);
	tcase_add_test(sock, test_drip_deadline);
	tcase_add_test(sock, test_interrupt);
	tcase_add_test(misc, test_foreign_stream);
	tcase_add_test(misc, test_is_loopback);
	suite_add_tcase(s, tls);
	suite_add_tcase(s, sock);
	suite_add_tcase(s, misc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	fixtures_teardown();
	return nf == 0 ? 0 : 1;
}
