/*
 * Unit tests: the OAuth2 client (src/lib/auth/oauth.c).
 *
 * The SASL strings are checked byte for byte against known answers (the
 * RFC 7628 example among them).  The HTTP parts run against
 * tests/integ/tools/fake_idp.py, which each test starts on 127.0.0.1 with
 * the knobs it needs and which logs every request (method, path,
 * grant_type, how the client authenticated) as JSON lines: the tests read
 * that log to see what went over the wire.  Without /usr/bin/python3 or
 * MX_TOP_SRCDIR those cases say so on stderr and pass.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "auth/oauth.h"

#define PYTHON "/usr/bin/python3"
#define HMAC_SECRET "oauth-test-hmac-secret-0123456789"

static char g_top[64];
static char g_secret_file[128];
static char g_log[128];
static pid_t g_idp = -1;
static int g_idp_fd = -1;
static int g_port;
static char g_url_token[96], g_url_device[96], g_url_auth[96];

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	FILE *f;

	strcpy(g_top, "/tmp/mx-test-oauth.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_secret_file, sizeof(g_secret_file), "%s/secret.raw", g_top);
	snprintf(g_log, sizeof(g_log), "%s/idp.log", g_top);
	f = fopen(g_secret_file, "w");
	ck_assert_ptr_nonnull(f);
	fputs(HMAC_SECRET, f);
	fclose(f);
	g_idp = -1;
	g_idp_fd = -1;
}

static void stop_idp(void)
{
	if (g_idp > 0) {
		kill(g_idp, SIGTERM);
		waitpid(g_idp, NULL, 0);
		g_idp = -1;
	}
	if (g_idp_fd >= 0) {
		close(g_idp_fd);
		g_idp_fd = -1;
	}
}

static void teardown(void)
{
	stop_idp();
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* True (and a note on stderr) when the fake IdP cannot run here. */
static bool idp_unavailable(const char *test)
{
	const char *top = getenv("MX_TOP_SRCDIR");

	if (access(PYTHON, X_OK) != 0) {
		fprintf(stderr, "SKIP %s: %s not found\n", test, PYTHON);
		return true;
	}
	if (top == NULL || *top == '\0') {
		fprintf(stderr, "SKIP %s: MX_TOP_SRCDIR not set\n", test);
		return true;
	}
	return false;
}

/* execv() wants char *const[]: a copy of the pointer without the cast. */
static char *unconst(const char *s)
{
	char *p;

	memcpy(&p, &s, sizeof(p));
	return p;
}

/* Starts fake_idp.py with EXTRA arguments (NULL-terminated list). */
static void start_idp(const char *const *extra)
{
	char script[512], line[32];
	char *argv[40];
	size_t n = 0, len = 0;
	int p[2];
	uint64_t end;

	snprintf(script, sizeof(script), "%s/tests/integ/tools/fake_idp.py",
		 getenv("MX_TOP_SRCDIR"));
	argv[n++] = unconst(PYTHON);
	argv[n++] = script;
	argv[n++] = unconst("--secret-file");
	argv[n++] = g_secret_file;
	argv[n++] = unconst("--log");
	argv[n++] = g_log;
	for (; extra && *extra && n < MX_ARRAY_SIZE(argv) - 1; extra++)
		argv[n++] = unconst(*extra);
	argv[n] = NULL;
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	g_idp = fork();
	ck_assert_int_ge(g_idp, 0);
	if (g_idp == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(PYTHON, argv);
		_exit(127);
	}
	close(p[1]);
	g_idp_fd = p[0];
	/* The first line is the port. */
	end = ms_now() + 10000;
	while (len == 0 || line[len - 1] != '\n') {
		struct pollfd pf = {.fd = g_idp_fd, .events = POLLIN};
		ssize_t r;

		ck_assert_msg(ms_now() < end, "fake_idp.py did not start");
		if (poll(&pf, 1, 100) <= 0)
			continue;
		r = read(g_idp_fd, line + len, sizeof(line) - 1 - len);
		ck_assert_msg(r > 0, "fake_idp.py exited at start");
		len += (size_t)r;
		line[len] = '\0';
		ck_assert_uint_lt(len, sizeof(line) - 1);
	}
	g_port = atoi(line);
	ck_assert_int_gt(g_port, 0);
	snprintf(g_url_token, sizeof(g_url_token), "http://127.0.0.1:%d/token",
		 g_port);
	snprintf(g_url_device, sizeof(g_url_device),
		 "http://127.0.0.1:%d/device", g_port);
	snprintf(g_url_auth, sizeof(g_url_auth),
		 "http://127.0.0.1:%d/authorize", g_port);
}

static struct mx_oauth_cfg cfg_confidential(void)
{
	struct mx_oauth_cfg c = {
		.token_url = g_url_token,
		.device_url = g_url_device,
		.auth_url = g_url_auth,
		.client_id = "test-client",
		.client_secret = "test-secret",
		.scope = "mail offline_access",
		.timeout_s = 10,
	};
	return c;
}

static struct mx_oauth_cfg cfg_public(void)
{
	struct mx_oauth_cfg c = cfg_confidential();

	c.client_id = "public-client";
	c.client_secret = NULL;
	return c;
}

/* The IdP log as a JSON array (one object per request). */
static json_t *idp_log(void)
{
	json_t *arr = json_array();
	char buf[1024];
	FILE *f = fopen(g_log, "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(buf, sizeof(buf), f)) {
		json_t *j = json_loads(buf, 0, NULL);

		ck_assert_ptr_nonnull(j);
		json_array_append_new(arr, j);
	}
	fclose(f);
	return arr;
}

static const char *js(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Base64 (either alphabet, padding optional) into a malloc()ed buffer. */
static unsigned char *b64_decode(const char *in, size_t *len_r)
{
	size_t n = strlen(in), pad = (4 - n % 4) % 4;
	char *tmp = malloc(n + pad + 1);
	unsigned char *out = malloc(n + 4);
	int r;

	ck_assert_ptr_nonnull(tmp);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++)
		tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(tmp + n, '=', pad);
	tmp[n + pad] = '\0';
	r = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)(n + pad));
	ck_assert_int_ge(r, 0);
	/* EVP_DecodeBlock counts padding bytes as data. */
	for (size_t i = n + pad; i > 0 && tmp[i - 1] == '='; i--)
		r--;
	free(tmp);
	*len_r = (size_t)r;
	return out;
}

/* Checks that TOK is an HS256 JWT signed with our secret for USER and
 * valid for about LIFETIME seconds. */
static void check_jwt(const char *tok, const char *user, int lifetime)
{
	const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	unsigned char mac[32];
	size_t maclen = 0, siglen, plen;
	unsigned char *sig, *payload;
	char *b64p;
	json_t *claims;
	int64_t now = (int64_t)time(NULL);

	ck_assert_ptr_nonnull(d2);
	ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
					HMAC_SECRET, strlen(HMAC_SECRET),
					(const unsigned char *)tok,
					(size_t)(d2 - tok), mac, sizeof(mac),
					&maclen));
	sig = b64_decode(d2 + 1, &siglen);
	ck_assert_uint_eq(siglen, 32);
	ck_assert_mem_eq(sig, mac, 32);
	free(sig);
	b64p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
	payload = b64_decode(b64p, &plen);
	claims = json_loadb((const char *)payload, plen, 0, NULL);
	ck_assert_ptr_nonnull(claims);
	ck_assert_str_eq(js(claims, "sub"), user);
	ck_assert_str_eq(js(claims, "email"), user);
	ck_assert_int_le(json_integer_value(json_object_get(claims, "iat")),
			 now + 2);
	ck_assert_int_ge(json_integer_value(json_object_get(claims, "exp")),
			 now + lifetime - 5);
	json_decref(claims);
	free(payload);
	free(b64p);
}

/* ---- SASL ---- */

static void check_b64(const char *got, const char *want_b64,
		      const char *want, size_t want_len)
{
	unsigned char *raw;
	size_t len;

	ck_assert_ptr_nonnull(got);
	if (want_b64)
		ck_assert_str_eq(got, want_b64);
	raw = b64_decode(got, &len);
	ck_assert_uint_eq(len, want_len);
	ck_assert_mem_eq(raw, want, want_len);
	free(raw);
}

START_TEST(test_sasl_xoauth2)
{
	static const char want[] =
		"user=someuser@example.com\001auth=Bearer "
		"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001";
	char *s = mx_sasl_xoauth2("someuser@example.com",
				  "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");

	check_b64(s, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YT"
		     "I5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2"
		     "cBAQ==", want, sizeof(want) - 1);
	free(s);
	/* Lengths 0, 1, 2 mod 3 all pad right. */
	for (int i = 1; i <= 3; i++) {
		char tok[4] = "abc", buf[64];
		int n;

		tok[i] = '\0';
		s = mx_sasl_xoauth2("u", tok);
		n = snprintf(buf, sizeof(buf), "user=u\001auth=Bearer %s\001\001",
			     tok);
		check_b64(s, NULL, buf, (size_t)n);
		free(s);
	}
	ck_assert_ptr_null(mx_sasl_xoauth2(NULL, "t"));
	ck_assert_ptr_null(mx_sasl_xoauth2("u", NULL));
	/* A ^A would end the field early: refused, not sent. */
	ck_assert_ptr_null(mx_sasl_xoauth2("u\001auth=Bearer x", "t"));
	ck_assert_ptr_null(mx_sasl_xoauth2("u", "t\001"));
}
END_TEST

START_TEST(test_sasl_oauthbearer)
{
	/* RFC 7628 section 4.1. */
	static const char want[] =
		"n,a=user@example.com,\001host=server.example.com\001"
		"port=143\001auth=Bearer "
		"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001";
	static const char want2[] =
		"n,a=a=3Db=2Cc,\001host=h\001port=587\001auth=Bearer t\001\001";
	char *s = mx_sasl_oauthbearer("user@example.com", "server.example.com",
				      143,
				      "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");

	check_b64(s, "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbG"
		     "UuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52Yj"
		     "NSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB",
		  want, sizeof(want) - 1);
	free(s);
	/* RFC 5801 saslname: ',' and '=' escaped in the GS2 header. */
	s = mx_sasl_oauthbearer("a=b,c", "h", 587, "t");
	check_b64(s, NULL, want2, sizeof(want2) - 1);
	free(s);
	ck_assert_ptr_null(mx_sasl_oauthbearer(NULL, "h", 1, "t"));
	ck_assert_ptr_null(mx_sasl_oauthbearer("u", NULL, 1, "t"));
	ck_assert_ptr_null(mx_sasl_oauthbearer("u", "h", 1, NULL));
	ck_assert_ptr_null(mx_sasl_oauthbearer("u", "h\001x", 1, "t"));
}
END_TEST

/* ---- no network needed ---- */

START_TEST(test_config_checks)
{
	struct mx_oauth_cfg c = {
		.token_url = "http://idp.example.test/token",
		.client_id = "x",
	};
	struct mx_oauth_token t;
	struct mx_oauth_device d;
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_refresh(&c, "r", &t, &e), MX_ERR_INSECURE);
	c.token_url = "ftp://127.0.0.1/token";
	ck_assert_int_eq(mx_oauth_refresh(&c, "r", &t, &e), MX_ERR_CONFIG);
	c.token_url = "http://127.0.0.1:1/token";
	c.client_id = NULL;
	ck_assert_int_eq(mx_oauth_refresh(&c, "r", &t, &e), MX_ERR_CONFIG);
	c.client_id = "x";
	ck_assert_int_eq(mx_oauth_device_start(&c, &d, &e), MX_ERR_CONFIG);
	ck_assert_int_eq(mx_oauth_pkce(&c, NULL, NULL, 1, NULL, &t, &e),
			 MX_ERR_CONFIG);
	c.auth_url = "http://127.0.0.1:1/authorize";
	c.token_url = "http://mail.example.test/token";
	ck_assert_int_eq(mx_oauth_pkce(&c, NULL, NULL, 1, NULL, &t, &e),
			 MX_ERR_INSECURE);
}
END_TEST

/* A server that accepts and never answers: the request times out. */
START_TEST(test_refresh_timeout)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	char url[64];
	struct mx_oauth_cfg c = {.client_id = "x", .timeout_s = 1};
	struct mx_oauth_token t;
	struct mx_error e;
	uint64_t t0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/token",
		 ntohs(a.sin_port));
	c.token_url = url;
	mx_error_clear(&e);
	t0 = ms_now();
	ck_assert_int_eq(mx_oauth_refresh(&c, "r", &t, &e), MX_ERR_TIMEOUT);
	ck_assert_uint_lt(ms_now() - t0, 5000);
	ck_assert_int_eq(e.retry, MX_RETRY_TEMP);
	close(fd);
}
END_TEST

/* ---- refresh ---- */

START_TEST(test_refresh_ok)
{
	static const char *const args[] = {"--rotate", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;
	int64_t now;

	if (idp_unavailable("refresh_ok"))
		return;
	start_idp(args);
	c = cfg_confidential();
	mx_error_clear(&e);
	now = (int64_t)time(NULL);
	ck_assert_msg(mx_oauth_refresh(&c, "refresh-alice", &t, &e) == MX_OK,
		      "%s", e.detail);
	check_jwt(t.access_token, "alice@example.test", 3600);
	ck_assert_int_ge(t.expires_at, now + 3600);
	ck_assert_int_le(t.expires_at, now + 3600 + 5);
	ck_assert_ptr_nonnull(t.refresh_token);
	ck_assert_str_ne(t.refresh_token, "refresh-alice");
	ck_assert_str_eq(t.scope, "mail");
	/* The rotated token works, the old one is gone. */
	{
		struct mx_oauth_token t2;
		char *rt = strdup(t.refresh_token);

		ck_assert_msg(mx_oauth_refresh(&c, rt, &t2, &e) == MX_OK, "%s",
			      e.detail);
		mx_oauth_token_free(&t2);
		ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t2, &e),
				 MX_ERR_AUTH);
		free(rt);
	}
	mx_oauth_token_free(&t);
	ck_assert_ptr_null(t.access_token);
}
END_TEST

START_TEST(test_refresh_client_auth)
{
	static const char *const args[] = {
		"--client", "test-client:test-secret",
		"--client", "public-client:",
		"--client", "odd-client:p@ss:w+rd %x&y=z",
		NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;
	json_t *log;

	if (idp_unavailable("refresh_client_auth"))
		return;
	start_idp(args);
	mx_error_clear(&e);
	c = cfg_confidential();
	ck_assert_msg(mx_oauth_refresh(&c, "refresh-alice", &t, &e) == MX_OK,
		      "%s", e.detail);
	mx_oauth_token_free(&t);
	c = cfg_public();
	ck_assert_msg(mx_oauth_refresh(&c, "refresh-bob", &t, &e) == MX_OK,
		      "%s", e.detail);
	check_jwt(t.access_token, "bob@example.test", 3600);
	mx_oauth_token_free(&t);
	/* RFC 6749 2.3.1: urlencoded before base64, so ':' and '+' in the
	 * secret survive. */
	c = cfg_confidential();
	c.client_id = "odd-client";
	c.client_secret = "p@ss:w+rd %x&y=z";
	ck_assert_msg(mx_oauth_refresh(&c, "refresh-alice", &t, &e) == MX_OK,
		      "%s", e.detail);
	mx_oauth_token_free(&t);
	/* A wrong secret: invalid_client, final, and no secret in sight. */
	c.client_secret = "wrong-secret";
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_AUTH);
	ck_assert_int_eq(e.retry, MX_RETRY_FINAL);
	ck_assert_msg(strncmp(e.detail, "token endpoint: invalid_client",
			      30) == 0, "%s", e.detail);
	ck_assert_ptr_null(strstr(e.detail, "wrong-secret"));
	ck_assert_ptr_null(strstr(e.detail, "refresh-alice"));

	log = idp_log();
	ck_assert_uint_eq(json_array_size(log), 4);
	ck_assert_str_eq(js(json_array_get(log, 0), "client_auth"), "basic");
	ck_assert_str_eq(js(json_array_get(log, 0), "client_id"),
			 "test-client");
	ck_assert_str_eq(js(json_array_get(log, 0), "grant_type"),
			 "refresh_token");
	ck_assert_str_eq(js(json_array_get(log, 1), "client_auth"), "none");
	ck_assert_str_eq(js(json_array_get(log, 1), "client_id"),
			 "public-client");
	ck_assert_str_eq(js(json_array_get(log, 2), "client_auth"), "basic");
	ck_assert_str_eq(js(json_array_get(log, 2), "client_id"),
			 "odd-client");
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(log, 3), "status")), 401);
	json_decref(log);
}
END_TEST

START_TEST(test_refresh_invalid_grant)
{
	static const char *const args[] = {"--revoke", "refresh-alice", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;

	if (idp_unavailable("refresh_invalid_grant"))
		return;
	start_idp(args);
	c = cfg_confidential();
	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_AUTH);
	ck_assert_str_eq(e.detail, "token endpoint: invalid_grant: refresh "
				   "token revoked or expired");
	ck_assert_int_eq(e.retry, MX_RETRY_FINAL);
	ck_assert_ptr_null(t.access_token);
	/* An unknown token: the same. */
	ck_assert_int_eq(mx_oauth_refresh(&c, "no-such-token", &t, &e),
			 MX_ERR_AUTH);
	ck_assert_ptr_null(strstr(e.detail, "no-such-token"));
}
END_TEST

START_TEST(test_refresh_server_error)
{
	static const char *const args[] = {"--fail", "2", "--fail-status",
					   "500", NULL};
	static const char *const a429[] = {"--fail", "1", "--fail-status",
					   "429", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;

	if (idp_unavailable("refresh_server_error"))
		return;
	start_idp(args);
	c = cfg_confidential();
	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_SERVER);
	ck_assert_int_ne(e.retry, MX_RETRY_FINAL);
	ck_assert_msg(strstr(e.detail, "HTTP 500") != NULL, "%s", e.detail);
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_SERVER);
	/* The outage is over. */
	ck_assert_msg(mx_oauth_refresh(&c, "refresh-alice", &t, &e) == MX_OK,
		      "%s", e.detail);
	mx_oauth_token_free(&t);
	/* Rate limited: temporary too. */
	stop_idp();
	start_idp(a429);
	c = cfg_confidential();
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_SERVER);
	ck_assert_int_ne(e.retry, MX_RETRY_FINAL);
	ck_assert_msg(strstr(e.detail, "HTTP 429") != NULL, "%s", e.detail);
}
END_TEST

START_TEST(test_refresh_idp_down)
{
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;

	if (idp_unavailable("refresh_idp_down"))
		return;
	start_idp(NULL);
	stop_idp();
	c = cfg_confidential();
	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_NET);
	ck_assert_int_eq(e.retry, MX_RETRY_TEMP);
	ck_assert_ptr_null(strstr(e.detail, "secret"));
}
END_TEST

START_TEST(test_refresh_malformed)
{
	static const char *const a1[] = {"--malformed", NULL};
	static const char *const a2[] = {"--no-access-token", NULL};
	static const char *const a3[] = {"--huge", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;

	if (idp_unavailable("refresh_malformed"))
		return;
	start_idp(a1);
	c = cfg_confidential();
	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.detail, "JSON") != NULL, "%s", e.detail);
	stop_idp();
	start_idp(a2);
	c = cfg_confidential();
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.detail, "access_token") != NULL, "%s",
		      e.detail);
	stop_idp();
	/* Answers are capped (64 KiB). */
	start_idp(a3);
	c = cfg_confidential();
	ck_assert_int_eq(mx_oauth_refresh(&c, "refresh-alice", &t, &e),
			 MX_ERR_PROTOCOL);
	ck_assert_msg(strstr(e.detail, "larger than") != NULL, "%s", e.detail);
}
END_TEST

/* ---- device grant ---- */

START_TEST(test_device_slow_down)
{
	static const char *const args[] = {"--pending", "2", "--slow-down",
					   "1", "--interval", "1", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_device d;
	struct mx_oauth_token t;
	struct mx_error e;
	volatile int cancel = 0;
	double ts[8];
	size_t npoll = 0, i;
	json_t *log, *ent;

	if (idp_unavailable("device_slow_down"))
		return;
	start_idp(args);
	c = cfg_public();
	mx_error_clear(&e);
	ck_assert_msg(mx_oauth_device_start(&c, &d, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_str_eq(d.user_code, "WDJB-MJHT");
	ck_assert_ptr_nonnull(strstr(d.verification_uri, "/activate"));
	ck_assert_ptr_nonnull(d.verification_uri_complete);
	ck_assert_int_eq(d.interval_s, 1);
	ck_assert_int_gt(d.expires_at, (int64_t)time(NULL) + 500);
	ck_assert_msg(mx_oauth_device_poll(&c, &d, &cancel, &t, &e) == MX_OK,
		      "%s", e.detail);
	check_jwt(t.access_token, "alice@example.test", 3600);
	ck_assert_ptr_nonnull(t.refresh_token);
	mx_oauth_token_free(&t);
	mx_oauth_device_free(&d);

	log = idp_log();
	ck_assert_str_eq(js(json_array_get(log, 0), "path"), "/device");
	json_array_foreach(log, i, ent) {
		const char *gt = js(ent, "grant_type");

		if (gt && strcmp(gt, "urn:ietf:params:oauth:grant-type:"
				     "device_code") == 0 && npoll < 8)
			ts[npoll++] = json_real_value(json_object_get(ent, "t"));
	}
	json_decref(log);
	/* pending, pending, slow_down, success */
	ck_assert_uint_eq(npoll, 4);
	/* 1 s between the first polls; after slow_down 1 + 5 s. */
	ck_assert_msg(ts[1] - ts[0] >= 0.9 && ts[1] - ts[0] < 2.5, "%f",
		      ts[1] - ts[0]);
	ck_assert_msg(ts[2] - ts[1] >= 0.9 && ts[2] - ts[1] < 2.5, "%f",
		      ts[2] - ts[1]);
	ck_assert_msg(ts[3] - ts[2] >= 5.9, "waited only %f s after slow_down",
		      ts[3] - ts[2]);
	ck_assert_msg(ts[3] - ts[2] >= (ts[2] - ts[1]) + 4.5, "%f vs %f",
		      ts[3] - ts[2], ts[2] - ts[1]);
}
END_TEST

START_TEST(test_device_denied)
{
	static const char *const args[] = {"--deny", "--pending", "1",
					   "--interval", "1", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_device d;
	struct mx_oauth_token t;
	struct mx_error e;
	volatile int cancel = 0;

	if (idp_unavailable("device_denied"))
		return;
	start_idp(args);
	c = cfg_confidential();
	mx_error_clear(&e);
	ck_assert_msg(mx_oauth_device_start(&c, &d, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(mx_oauth_device_poll(&c, &d, &cancel, &t, &e),
			 MX_ERR_AUTH);
	ck_assert_msg(strstr(e.detail, "access_denied") != NULL, "%s",
		      e.detail);
	ck_assert_int_eq(e.retry, MX_RETRY_FINAL);
	ck_assert_ptr_null(t.access_token);
	mx_oauth_device_free(&d);
}
END_TEST

struct canceller {
	volatile int *flag;
	unsigned delay_ms;
	uint64_t set_at;
};

static void *cancel_main(void *arg)
{
	struct canceller *c = arg;

	usleep(c->delay_ms * 1000);
	c->set_at = ms_now();
	*c->flag = 1;
	return NULL;
}

START_TEST(test_device_cancel)
{
	static const char *const args[] = {"--pending", "1000", "--interval",
					   "1", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_device d;
	struct mx_oauth_token t;
	struct mx_error e;
	volatile int cancel = 0;
	struct canceller cc = {&cancel, 1500, 0};
	pthread_t th;
	uint64_t done;

	if (idp_unavailable("device_cancel"))
		return;
	start_idp(args);
	c = cfg_public();
	mx_error_clear(&e);
	ck_assert_msg(mx_oauth_device_start(&c, &d, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_main, &cc), 0);
	ck_assert_int_eq(mx_oauth_device_poll(&c, &d, &cancel, &t, &e),
			 MX_ERR_CANCELLED);
	done = ms_now();
	pthread_join(th, NULL);
	ck_assert_uint_lt(done - cc.set_at, 400);
	mx_oauth_device_free(&d);
}
END_TEST

/* A poll stuck on a silent server still ends soon after the cancel. */
START_TEST(test_device_cancel_inflight)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	char url[64];
	struct mx_oauth_cfg c = {.client_id = "x", .timeout_s = 30};
	struct mx_oauth_device d = {.device_code = unconst("dc"),
				    .interval_s = 1};
	struct mx_oauth_token t;
	struct mx_error e;
	volatile int cancel = 0;
	struct canceller cc = {&cancel, 2000, 0};
	pthread_t th;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/token",
		 ntohs(a.sin_port));
	c.token_url = url;
	mx_error_clear(&e);
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_main, &cc), 0);
	ck_assert_int_eq(mx_oauth_device_poll(&c, &d, &cancel, &t, &e),
			 MX_ERR_CANCELLED);
	ck_assert_uint_lt(ms_now() - cc.set_at, 400);
	pthread_join(th, NULL);
	close(fd);
}
END_TEST

/* ---- PKCE ---- */

/* The test plays the browser: GET the authorization URL, follow the
 * IdP's 302 to the client's loopback listener. */
struct browser {
	char *url;
	pthread_t th;
	bool started;
	long status;     /* of the last response (the loopback page) */
	char page[1024];
	size_t page_len;
	char *final_url;
};

static size_t browser_body(char *p, size_t size, size_t n, void *ctx)
{
	struct browser *b = ctx;
	size_t len = size * n, room = sizeof(b->page) - 1 - b->page_len;

	if (room > len)
		room = len;
	memcpy(b->page + b->page_len, p, room);
	b->page_len += room;
	b->page[b->page_len] = '\0';
	return len;
}

static void *browser_main(void *arg)
{
	struct browser *b = arg;
	CURL *c = curl_easy_init();
	char *eff = NULL;

	if (c == NULL)
		return NULL;
	curl_easy_setopt(c, CURLOPT_URL, b->url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, browser_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &b->status);
		curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
		b->final_url = eff ? strdup(eff) : NULL;
	}
	curl_easy_cleanup(c);
	return NULL;
}

static void show_url(const char *url, void *ctx)
{
	struct browser *b = ctx;

	b->url = strdup(url);
	if (pthread_create(&b->th, NULL, browser_main, b) == 0)
		b->started = true;
}

static void browser_join(struct browser *b)
{
	if (b->started)
		pthread_join(b->th, NULL);
	b->started = false;
}

static void browser_free(struct browser *b)
{
	browser_join(b);
	free(b->url);
	free(b->final_url);
	memset(b, 0, sizeof(*b));
}

START_TEST(test_pkce_ok)
{
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;
	struct browser b = {0};
	volatile int cancel = 0;
	json_t *log;
	const char *q;

	if (idp_unavailable("pkce_ok"))
		return;
	start_idp(NULL);
	c = cfg_public();
	mx_error_clear(&e);
	ck_assert_msg(mx_oauth_pkce(&c, show_url, &b, 10, &cancel, &t, &e) ==
			      MX_OK, "%s", e.detail);
	browser_join(&b);
	check_jwt(t.access_token, "alice@example.test", 3600);
	ck_assert_ptr_nonnull(t.refresh_token);
	mx_oauth_token_free(&t);
	/* The URL carries what RFC 7636 and RFC 8252 ask for. */
	ck_assert_ptr_nonnull(b.url);
	ck_assert_int_eq(strncmp(b.url, g_url_auth, strlen(g_url_auth)), 0);
	q = b.url + strlen(g_url_auth);
	ck_assert_ptr_nonnull(strstr(q, "response_type=code"));
	ck_assert_ptr_nonnull(strstr(q, "client_id=public-client"));
	ck_assert_ptr_nonnull(strstr(q, "code_challenge_method=S256"));
	ck_assert_ptr_nonnull(strstr(q, "redirect_uri=http%3A%2F%2F127.0.0.1%3A"));
	ck_assert_ptr_nonnull(strstr(q, "scope=mail%20offline_access"));
	ck_assert_ptr_nonnull(strstr(q, "state="));
	/* The browser ended on the loopback page. */
	ck_assert_int_eq(b.status, 200);
	ck_assert_ptr_nonnull(strstr(b.page, "Authorization complete"));
	ck_assert_ptr_nonnull(b.final_url);
	ck_assert_ptr_nonnull(strstr(b.final_url, "http://127.0.0.1:"));

	log = idp_log();
	ck_assert_uint_eq(json_array_size(log), 2);
	ck_assert_str_eq(js(json_array_get(log, 0), "path"), "/authorize");
	ck_assert_str_eq(js(json_array_get(log, 1), "grant_type"),
			 "authorization_code");
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(log, 1), "status")), 200);
	json_decref(log);

	browser_free(&b);

	/* A confidential client: Basic auth on the code exchange. */
	c = cfg_confidential();
	ck_assert_msg(mx_oauth_pkce(&c, show_url, &b, 10, &cancel, &t, &e) ==
			      MX_OK, "%s", e.detail);
	browser_join(&b);
	mx_oauth_token_free(&t);
	log = idp_log();
	ck_assert_str_eq(js(json_array_get(log, 3), "client_auth"), "basic");
	json_decref(log);
	browser_free(&b);
}
END_TEST

START_TEST(test_pkce_wrong_state)
{
	static const char *const args[] = {"--wrong-state", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;
	struct browser b = {0};
	volatile int cancel = 0;
	json_t *log;

	if (idp_unavailable("pkce_wrong_state"))
		return;
	start_idp(args);
	c = cfg_public();
	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_pkce(&c, show_url, &b, 10, &cancel, &t, &e),
			 MX_ERR_PROTOCOL);
	browser_join(&b);
	ck_assert_msg(strstr(e.detail, "state mismatch") != NULL, "%s",
		      e.detail);
	ck_assert_ptr_null(t.access_token);
	ck_assert_int_eq(b.status, 400);
	/* The code was never exchanged. */
	log = idp_log();
	ck_assert_uint_eq(json_array_size(log), 1);
	json_decref(log);
	browser_free(&b);
}
END_TEST

START_TEST(test_pkce_denied)
{
	static const char *const args[] = {"--deny", NULL};
	struct mx_oauth_cfg c;
	struct mx_oauth_token t;
	struct mx_error e;
	struct browser b = {0};

	if (idp_unavailable("pkce_denied"))
		return;
	start_idp(args);
	c = cfg_public();
	mx_error_clear(&e);
	ck_assert_int_eq(mx_oauth_pkce(&c, show_url, &b, 10, NULL, &t, &e),
			 MX_ERR_AUTH);
	browser_join(&b);
	ck_assert_msg(strstr(e.detail, "access_denied") != NULL, "%s",
		      e.detail);
	ck_assert_int_eq(b.status, 400);
	browser_free(&b);
}
END_TEST

static void no_browser(const char *url, void *ctx)
{
	*(int *)ctx = url != NULL;
}

START_TEST(test_pkce_timeout_cancel)
{
	struct mx_oauth_cfg c = {
		.token_url = "http://127.0.0.1:1/token",
		.auth_url = "http://127.0.0.1:1/authorize",
		.client_id = "x",
	};
	struct mx_oauth_token t;
	struct mx_error e;
	volatile int cancel = 0;
	struct canceller cc = {&cancel, 300, 0};
	pthread_t th;
	uint64_t t0;
	int shown = 0;

	mx_error_clear(&e);
	t0 = ms_now();
	ck_assert_int_eq(mx_oauth_pkce(&c, no_browser, &shown, 1, &cancel, &t,
				       &e), MX_ERR_TIMEOUT);
	ck_assert_int_eq(shown, 1);
	ck_assert_uint_ge(ms_now() - t0, 900);
	ck_assert_uint_lt(ms_now() - t0, 3000);
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_main, &cc), 0);
	ck_assert_int_eq(mx_oauth_pkce(&c, no_browser, &shown, 30, &cancel, &t,
				       &e), MX_ERR_CANCELLED);
	pthread_join(th, NULL);
	ck_assert_uint_lt(ms_now() - cc.set_at, 400);
}
END_TEST

/* RFC 7636 4.1/4.2: a fresh 86-character verifier each time, and the
 * challenge is BASE64URL(SHA256(verifier)) without padding (computed
 * here with EVP_Digest and EVP_EncodeBlock). */
START_TEST(test_pkce_pair)
{
	char v1[MX_PKCE_VERIFIER_CAP], c1[MX_PKCE_CHALLENGE_CAP];
	char v2[MX_PKCE_VERIFIER_CAP], c2[MX_PKCE_CHALLENGE_CAP];
	unsigned char md[32], b64[64];
	unsigned int mdlen = 0;

	ck_assert(mx_oauth_pkce_pair(v1, c1));
	ck_assert(mx_oauth_pkce_pair(v2, c2));
	ck_assert_uint_eq(strlen(v1), 86);
	ck_assert_uint_eq(strspn(v1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				     "qrstuvwxyz0123456789-_"), 86);
	ck_assert_str_ne(v1, v2);
	ck_assert_str_ne(c1, c2);
	ck_assert_int_eq(EVP_Digest(v1, strlen(v1), md, &mdlen, EVP_sha256(),
				    NULL), 1);
	ck_assert_int_eq(EVP_EncodeBlock(b64, md, 32), 44);
	b64[43] = '\0'; /* the '=' */
	for (unsigned char *p = b64; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	ck_assert_str_eq(c1, (char *)b64);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("oauth");
	TCase *ts = tcase_create("sasl");
	TCase *th = tcase_create("http");
	SRunner *sr;
	int nf;

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_add_test(ts, test_sasl_xoauth2);
	tcase_add_test(ts, test_sasl_oauthbearer);
	tcase_add_test(ts, test_config_checks);
	tcase_add_test(ts, test_pkce_pair);
	suite_add_tcase(s, ts);
	tcase_add_checked_fixture(th, setup, teardown);
	tcase_set_timeout(th, 60);
	tcase_add_test(th, test_refresh_timeout);
	tcase_add_test(th, test_refresh_ok);
	tcase_add_test(th, test_refresh_client_auth);
	tcase_add_test(th, test_refresh_invalid_grant);
	tcase_add_test(th, test_refresh_server_error);
	tcase_add_test(th, test_refresh_idp_down);
	tcase_add_test(th, test_refresh_malformed);
	tcase_add_test(th, test_device_slow_down);
	tcase_add_test(th, test_device_denied);
	tcase_add_test(th, test_device_cancel);
	tcase_add_test(th, test_device_cancel_inflight);
	tcase_add_test(th, test_pkce_ok);
	tcase_add_test(th, test_pkce_wrong_state);
	tcase_add_test(th, test_pkce_denied);
	tcase_add_test(th, test_pkce_timeout_cancel);
	suite_add_tcase(s, th);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return nf == 0 ? 0 : 1;
}
