/*
 * Unit tests: secrets at rest (src/lib/secrets) and their use in the
 * store's account records (src/lib/store).
 *
 * Every test runs in its own mkdtemp() directory with MXSYNC_KEY and
 * MXSYNC_KEY_FILE unset (checked fixture: runs in the forked test process,
 * so setenv() in a test does not leak into the next).
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "secrets/secrets.h"
#include "store/store.h"

static char g_top[64];   /* mkdtemp() directory */
static char g_dir[128];  /* data directory inside it (not created) */
static char g_key[160];  /* g_dir/secret.key */

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
	strcpy(g_top, "/tmp/mx-test-secrets.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_dir, sizeof(g_dir), "%s/data", g_top);
	snprintf(g_key, sizeof(g_key), "%s/secret.key", g_dir);
	unsetenv("MXSYNC_KEY");
	unsetenv("MXSYNC_KEY_FILE");
}

static void teardown(void)
{
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---- */

static struct mx_secrets *open_ok(const char *dir, const char *key_file)
{
	struct mx_secrets *s = NULL;
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_msg(mx_secrets_open(dir, key_file, &s, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_ptr_nonnull(s);
	return s;
}

static char *seal_ok(struct mx_secrets *s, const char *aad, const void *p,
		     size_t len)
{
	struct mx_error e;
	char *out = NULL;

	mx_error_clear(&e);
	ck_assert_msg(mx_secret_seal(s, aad, p, len, &out, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_ptr_nonnull(out);
	return out;
}

/* Base64 of N bytes (malloc()ed). */
static char *b64(const unsigned char *p, size_t n)
{
	char *out = malloc((n + 2) / 3 * 4 + 1);

	ck_assert_ptr_nonnull(out);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* The raw bytes of a sealed value: nonce | ciphertext | tag. */
static unsigned char *sealed_raw(const char *sealed, size_t *len_r)
{
	size_t n = strlen(sealed + 3);
	unsigned char *raw = malloc(n / 4 * 3 + 1);
	int len;

	ck_assert_ptr_nonnull(raw);
	ck_assert(strncmp(sealed, "v1:", 3) == 0);
	len = EVP_DecodeBlock(raw, (const unsigned char *)sealed + 3, (int)n);
	ck_assert_int_ge(len, 0);
	/* EVP_DecodeBlock counts the padding as bytes. */
	if (n >= 1 && sealed[3 + n - 1] == '=')
		len--;
	if (n >= 2 && sealed[3 + n - 2] == '=')
		len--;
	*len_r = (size_t)len;
	return raw;
}

static char *sealed_from_raw(const unsigned char *raw, size_t n)
{
	char *e = b64(raw, n), *out = malloc(strlen(e) + 4);

	ck_assert_ptr_nonnull(out);
	strcpy(out, "v1:");
	strcat(out, e);
	free(e);
	return out;
}

static void write_file(const char *path, const void *p, size_t n,
		       mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static size_t read_file(const char *path, unsigned char *buf, size_t cap)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	ck_assert_ptr_nonnull(fp);
	n = fread(buf, 1, cap, fp);
	fclose(fp);
	return n;
}

static void set_env_key(const unsigned char key[32])
{
	char *e = b64(key, 32);

	setenv("MXSYNC_KEY", e, 1);
	free(e);
}

static void expect_unseal_fails(struct mx_secrets *s, const char *aad,
				const char *sealed, enum mx_err want)
{
	struct mx_error e;
	char *plain = (char *)"sentinel";
	size_t len = 99;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_secret_unseal(s, aad, sealed, &plain, &len, &e),
			 want);
	ck_assert_ptr_null(plain);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(e.code, want);
}

/* ---- seal / unseal ---- */

START_TEST(test_roundtrip)
{
	static const unsigned char bin[] = {0x00, 'a', 0x00, 0x00, 0xff,
					    0x80, '\n', 0x00};
	struct mx_secrets *s = open_ok(g_dir, NULL);
	struct mx_error e;
	char *sealed, *again, *plain = NULL;
	size_t len = 0;

	sealed = seal_ok(s, "account:7:password", "hunter2", 7);
	ck_assert(mx_secret_is_sealed(sealed));
	ck_assert(strncmp(sealed, "v1:", 3) == 0);
	ck_assert_ptr_null(strstr(sealed, "hunter2"));
	/* nonce 12 + 7 + tag 16 = 35 bytes = 48 base64 characters */
	ck_assert_uint_eq(strlen(sealed), 3 + 48);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_secret_unseal(s, "account:7:password", sealed,
					  &plain, &len, &e), MX_OK);
	ck_assert_uint_eq(len, 7);
	ck_assert_str_eq(plain, "hunter2");
	free(plain);
	/* a fresh random nonce each time */
	again = seal_ok(s, "account:7:password", "hunter2", 7);
	ck_assert_str_ne(again, sealed);
	free(again);
	free(sealed);

	/* binary with NUL bytes; LEN_R may be NULL */
	sealed = seal_ok(s, "bin", bin, sizeof(bin));
	ck_assert_int_eq(mx_secret_unseal(s, "bin", sealed, &plain, &len, &e),
			 MX_OK);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_int_eq(memcmp(plain, bin, sizeof(bin)), 0);
	ck_assert_int_eq(plain[len], '\0');
	free(plain);
	ck_assert_int_eq(mx_secret_unseal(s, "bin", sealed, &plain, NULL, &e),
			 MX_OK);
	free(plain);
	free(sealed);

	/* empty secret, empty and NULL AAD (the same: no AAD bytes) */
	sealed = seal_ok(s, NULL, "", 0);
	ck_assert_int_eq(mx_secret_unseal(s, "", sealed, &plain, &len, &e),
			 MX_OK);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(plain, "");
	free(plain);
	free(sealed);
	mx_secrets_close(&s);
	ck_assert_ptr_null(s);
	mx_secrets_close(&s); /* NULL-safe */
	mx_secrets_close(NULL);
}
END_TEST

START_TEST(test_wrong_aad)
{
	struct mx_secrets *s = open_ok(g_dir, NULL);
	char *sealed = seal_ok(s, "account:1:password", "pw", 2);

	expect_unseal_fails(s, "account:2:password", sealed, MX_ERR_CONFIG);
	expect_unseal_fails(s, "account:1:refresh_token", sealed,
			    MX_ERR_CONFIG);
	expect_unseal_fails(s, NULL, sealed, MX_ERR_CONFIG);
	expect_unseal_fails(s, "account:1:password ", sealed, MX_ERR_CONFIG);
	free(sealed);
	mx_secrets_close(&s);
}
END_TEST

START_TEST(test_tampered)
{
	struct mx_secrets *s = open_ok(g_dir, NULL);
	char *sealed = seal_ok(s, "aad", "a secret value", 14);
	size_t n, where[] = {0, 11, 12, 12 + 13, 12 + 14, 12 + 14 + 15};
	unsigned char *raw = sealed_raw(sealed, &n);
	struct mx_error e;

	ck_assert_uint_eq(n, 12 + 14 + 16);
	/* a flipped bit in the nonce, the ciphertext or the tag */
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char *bad;

		raw[where[i]] ^= 0x01;
		bad = sealed_from_raw(raw, n);
		raw[where[i]] ^= 0x01;
		expect_unseal_fails(s, "aad", bad, MX_ERR_CONFIG);
		free(bad);
	}
	/* truncated: tag cut short / one ciphertext byte missing */
	{
		char *bad = sealed_from_raw(raw, n - 1);

		expect_unseal_fails(s, "aad", bad, MX_ERR_CONFIG);
		free(bad);
		bad = sealed_from_raw(raw + 1, n - 1);
		expect_unseal_fails(s, "aad", bad, MX_ERR_CONFIG);
		free(bad);
	}
	/* the unchanged bytes still open */
	{
		char *good = sealed_from_raw(raw, n), *plain = NULL;

		ck_assert_int_eq(mx_secret_unseal(s, "aad", good, &plain, NULL,
						  &e), MX_OK);
		ck_assert_str_eq(plain, "a secret value");
		free(plain);
		free(good);
	}
	/* the message says what happened, not the secret */
	mx_error_clear(&e);
	{
		char *plain = NULL;

		raw[20] ^= 0x80;
		free(sealed);
		sealed = sealed_from_raw(raw, n);
		ck_assert_int_eq(mx_secret_unseal(s, "aad", sealed, &plain, NULL,
						  &e), MX_ERR_CONFIG);
		ck_assert_ptr_nonnull(strstr(e.detail, "wrong key or corrupted"));
	}
	free(raw);
	free(sealed);
	mx_secrets_close(&s);
}
END_TEST

START_TEST(test_wrong_key)
{
	char other[160];
	struct mx_secrets *s1 = open_ok(g_dir, NULL), *s2;
	char *sealed = seal_ok(s1, "x", "pw", 2);

	snprintf(other, sizeof(other), "%s/other.key", g_top);
	s2 = open_ok(NULL, other);
	expect_unseal_fails(s2, "x", sealed, MX_ERR_CONFIG);
	mx_secrets_close(&s2);
	mx_secrets_close(&s1);
	free(sealed);
}
END_TEST

START_TEST(test_not_sealed)
{
	static const char *const bad[] = {
		"hunter2", "", "v1", "V1:AAAA",
		"v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"v1:", "v1:!!!!", "v1:AAAA", /* 3 bytes: shorter than nonce+tag */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* not a multiple of 4 */
		"v1:AAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAA", /* space */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", /* stray bits */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=A=", /* '=' inside */
		"v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
	};
	struct mx_secrets *s = open_ok(g_dir, NULL);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_unseal_fails(s, "a", bad[i], MX_ERR_PARSE);
	ck_assert(!mx_secret_is_sealed(NULL));
	ck_assert(!mx_secret_is_sealed("hunter2"));
	ck_assert(!mx_secret_is_sealed("v1"));
	ck_assert(mx_secret_is_sealed("v1:"));
	/* well-formed, long enough, but not sealed with this key: CONFIG */
	expect_unseal_fails(s, "a",
			    "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			    MX_ERR_CONFIG);
	mx_secrets_close(&s);
}
END_TEST

/* ---- the key ---- */

START_TEST(test_key_file_created_and_reused)
{
	unsigned char k1[64], k2[64];
	struct mx_secrets *s;
	struct stat sb;
	char *sealed, *plain = NULL;
	struct mx_error e;

	ck_assert_int_ne(stat(g_dir, &sb), 0); /* created by open */
	s = open_ok(g_dir, NULL);
	ck_assert_int_eq(stat(g_dir, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0700);
	ck_assert_int_eq(stat(g_key, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	ck_assert_int_eq(sb.st_size, 32);
	ck_assert_uint_eq(read_file(g_key, k1, sizeof(k1)), 32);
	sealed = seal_ok(s, "r", "reuse me", 8);
	mx_secrets_close(&s);

	/* no temporary file left behind */
	{
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = secret.key",
			 g_dir);
		ck_assert_int_eq(system(cmd), 0);
	}
	s = open_ok(g_dir, NULL);
	ck_assert_uint_eq(read_file(g_key, k2, sizeof(k2)), 32);
	ck_assert_int_eq(memcmp(k1, k2, 32), 0);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_secret_unseal(s, "r", sealed, &plain, NULL, &e),
			 MX_OK);
	ck_assert_str_eq(plain, "reuse me");
	free(plain);
	free(sealed);
	mx_secrets_close(&s);

	/* an explicit key file path */
	{
		char kf[160];

		snprintf(kf, sizeof(kf), "%s/elsewhere.key", g_top);
		s = open_ok(g_dir, kf);
		ck_assert_int_eq(stat(kf, &sb), 0);
		ck_assert_uint_eq(sb.st_mode & 07777, 0600);
		ck_assert_uint_eq(read_file(kf, k2, sizeof(k2)), 32);
		ck_assert_int_ne(memcmp(k1, k2, 32), 0);
		mx_secrets_close(&s);
	}
}
END_TEST

START_TEST(test_key_file_too_open_refused)
{
	static const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0610};
	unsigned char key[32];
	struct mx_secrets *s = NULL;
	struct mx_error e;

	ck_assert_int_eq(mkdir(g_dir, 0700), 0);
	ck_assert_int_eq(RAND_bytes(key, 32), 1);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(g_key, key, 32, modes[i]);
		mx_error_clear(&e);
		ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e),
				 MX_ERR_CONFIG);
		ck_assert_ptr_null(s);
		ck_assert_msg(strstr(e.detail, g_key) != NULL, "%s", e.detail);
		ck_assert_msg(strstr(e.detail, "chmod 600") != NULL, "%s",
			      e.detail);
	}
	/* after the fix it opens */
	ck_assert_int_eq(chmod(g_key, 0600), 0);
	s = open_ok(g_dir, NULL);
	mx_secrets_close(&s);
	ck_assert_int_eq(chmod(g_key, 0400), 0);
	s = open_ok(g_dir, NULL);
	mx_secrets_close(&s);

	/* wrong size: never used as a key, never overwritten */
	write_file(g_key, key, 31, 0600);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.detail, "31 bytes"));
	write_file(g_key, key, 0, 0600);
	ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e), MX_ERR_CONFIG);
	{
		unsigned char big[40] = {0};

		write_file(g_key, big, sizeof(big), 0600);
		ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e),
				 MX_ERR_CONFIG);
		ck_assert_uint_eq(read_file(g_key, big, sizeof(big)), 40);
	}
	/* a directory in its place */
	unlink(g_key);
	ck_assert_int_eq(mkdir(g_key, 0700), 0);
	ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e), MX_ERR_CONFIG);
	ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_env_key)
{
	unsigned char key[33], other[32];
	struct mx_secrets *s, *s2;
	struct mx_error e;
	struct stat sb;
	char *sealed, *plain = NULL, *enc;

	ck_assert_int_eq(RAND_bytes(key, sizeof(key)), 1);
	ck_assert_int_eq(RAND_bytes(other, sizeof(other)), 1);
	set_env_key(key);
	s = open_ok(g_dir, NULL);
	ck_assert_int_ne(stat(g_key, &sb), 0); /* no key file made */
	sealed = seal_ok(s, "e", "from env", 8);
	mx_secrets_close(&s);
	/* the same $MXSYNC_KEY opens it; a key file is ignored */
	mkdir(g_dir, 0700);
	write_file(g_key, other, 32, 0600);
	s = open_ok(g_dir, NULL);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_secret_unseal(s, "e", sealed, &plain, NULL, &e),
			 MX_OK);
	ck_assert_str_eq(plain, "from env");
	free(plain);
	mx_secrets_close(&s);
	/* another key: refused, never garbage */
	set_env_key(other);
	s2 = open_ok(g_dir, NULL);
	expect_unseal_fails(s2, "e", sealed, MX_ERR_CONFIG);
	mx_secrets_close(&s2);
	/* unset: the key file is used, a different key */
	unsetenv("MXSYNC_KEY");
	s2 = open_ok(g_dir, NULL);
	expect_unseal_fails(s2, "e", sealed, MX_ERR_CONFIG);
	mx_secrets_close(&s2);
	/* empty = unset */
	setenv("MXSYNC_KEY", "", 1);
	s2 = open_ok(g_dir, NULL);
	mx_secrets_close(&s2);
	free(sealed);

	/* wrong lengths and not base64: MX_ERR_CONFIG, value not echoed */
	{
		const size_t lens[] = {31, 33, 16, 1};

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			enc = b64(key, lens[i]);
			setenv("MXSYNC_KEY", enc, 1);
			s = NULL;
			mx_error_clear(&e);
			ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e),
					 MX_ERR_CONFIG);
			ck_assert_ptr_null(s);
			ck_assert_ptr_nonnull(strstr(e.detail, "MXSYNC_KEY"));
			ck_assert_ptr_null(strstr(e.detail, enc));
			free(enc);
		}
	}
	{
		static const char *const bad[] = {
			"not base64 at all!",
			"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@=",
			"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			setenv("MXSYNC_KEY", bad[i], 1);
			mx_error_clear(&e);
			ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e),
					 MX_ERR_CONFIG);
			ck_assert_ptr_null(strstr(e.detail, bad[i]));
		}
		/* with a trailing newline (echo "$k" > ...): refused too,
		 * loudly rather than silently a different key */
		enc = b64(key, 32);
		{
			char withnl[64];

			snprintf(withnl, sizeof(withnl), "%s\n", enc);
			setenv("MXSYNC_KEY", withnl, 1);
			ck_assert_int_eq(mx_secrets_open(g_dir, NULL, &s, &e),
					 MX_ERR_CONFIG);
		}
		free(enc);
	}
}
END_TEST

/* ---- the store's account records ---- */

static struct mx_store *store_open_ok(void)
{
	struct mx_store *st = NULL;
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_msg(mx_store_open(g_dir, &st, &e) == MX_OK, "%s", e.detail);
	return st;
}

static void put_account(struct mx_store *st, struct mx_account *a)
{
	struct mx_txn t;
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_txn_begin(st, true, &t, &e), MX_OK);
	ck_assert_msg(mx_store_account_put(&t, a, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
}

static int get_account(struct mx_store *st, const char *name,
		       struct mx_account *a, struct mx_error *e)
{
	struct mx_txn t;
	int rc;

	mx_error_clear(e);
	ck_assert_int_eq(mx_txn_begin(st, false, &t, e), MX_OK);
	rc = mx_store_account_get(&t, name, a, e);
	mx_txn_abort(&t);
	return rc;
}

static int list_accounts(struct mx_store *st, struct mx_error *e)
{
	struct mx_account *v = NULL;
	struct mx_txn t;
	size_t n = 0;
	int rc;

	mx_error_clear(e);
	ck_assert_int_eq(mx_txn_begin(st, false, &t, e), MX_OK);
	rc = mx_store_account_list(&t, &v, &n, e);
	mx_txn_abort(&t);
	for (size_t i = 0; i < n; i++)
		mx_account_free(&v[i]);
	free(v);
	return rc;
}

/* The raw LMDB value of account ID (malloc()ed, NUL-terminated). */
static char *raw_record(struct mx_store *st, uint32_t id)
{
	struct mx_txn t;
	struct mx_error e;
	uint8_t k[4];
	MDB_val v;
	char *out;

	mx_put_be32(k, id);
	ck_assert_int_eq(mx_txn_begin(st, false, &t, &e), MX_OK);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_ACCOUNTS, k, 4, &v, &e), MX_OK);
	out = malloc(v.mv_size + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	mx_txn_abort(&t);
	return out;
}

/* Writes a record as an earlier build did (clear-text secrets). */
static void put_raw_record(struct mx_store *st, uint32_t id, const char *name,
			   const char *json)
{
	struct mx_txn t;
	struct mx_error e;
	uint8_t k[4];

	mx_put_be32(k, id);
	ck_assert_int_eq(mx_txn_begin(st, true, &t, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_ACCOUNTS, k, 4, json, strlen(json),
				   0, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_ACCOUNT_NAMES, name, strlen(name),
				   k, 4, 0, &e), MX_OK);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
}

static void fill_account(struct mx_account *a, const char *name)
{
	memset(a, 0, sizeof(*a));
	a->name = strdup(name);
	a->host = strdup("imap.example.test");
	a->user = strdup("u@example.test");
	a->port = 993;
	a->password = strdup("Pa55-w0rd-Zebra-\xc3\xa9");
	a->refresh_token = strdup("1//refresh-Tok3n-Quokka");
	a->access_token = strdup("ya29.access-Tok3n-Narwhal");
	a->client_secret = strdup("GOCSPX-client-Secr3t-Okapi");
}

START_TEST(test_store_sealed_roundtrip)
{
	struct mx_store *st = store_open_ok();
	struct mx_account a, g, *v = NULL;
	struct mx_error e;
	struct mx_txn t;
	struct stat sb;
	size_t n = 0;
	char *raw;

	/* opening the store creates no key: only a secret does */
	ck_assert_int_ne(stat(g_key, &sb), 0);
	fill_account(&a, "sealed");
	put_account(st, &a);
	ck_assert_int_eq(stat(g_key, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);

	raw = raw_record(st, a.id);
	ck_assert_ptr_null(strstr(raw, "Pa55-w0rd-Zebra"));
	ck_assert_ptr_null(strstr(raw, "Quokka"));
	ck_assert_ptr_null(strstr(raw, "Narwhal"));
	ck_assert_ptr_null(strstr(raw, "Okapi"));
	ck_assert_ptr_nonnull(strstr(raw, "\"password\":\"v1:"));
	ck_assert_ptr_nonnull(strstr(raw, "\"refresh_token\":\"v1:"));
	ck_assert_ptr_nonnull(strstr(raw, "\"access_token\":\"v1:"));
	ck_assert_ptr_nonnull(strstr(raw, "\"client_secret\":\"v1:"));
	ck_assert_ptr_nonnull(strstr(raw, "u@example.test")); /* not secret */
	free(raw);

	ck_assert_msg(get_account(st, "sealed", &g, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_str_eq(g.password, a.password);
	ck_assert_str_eq(g.refresh_token, a.refresh_token);
	ck_assert_str_eq(g.access_token, a.access_token);
	ck_assert_str_eq(g.client_secret, a.client_secret);
	ck_assert_str_eq(g.user, "u@example.test");
	mx_account_free(&g);
	ck_assert_ptr_null(g.password); /* freed and zeroed */

	ck_assert_int_eq(mx_txn_begin(st, false, &t, &e), MX_OK);
	ck_assert_int_eq(mx_store_account_list(&t, &v, &n, &e), MX_OK);
	mx_txn_abort(&t);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].password, a.password);
	ck_assert_str_eq(v[0].client_secret, a.client_secret);
	mx_account_free(&v[0]);
	free(v);

	/* the store reopened (a new process) reads them with the key file */
	mx_store_close(&st);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "sealed", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, a.password);
	mx_account_free(&g);

	/* an account without secrets: nothing sealed, nothing needed */
	{
		struct mx_account b = {0};

		b.name = strdup("nosecret");
		b.password_file = strdup("/some/file");
		put_account(st, &b);
		raw = raw_record(st, b.id);
		ck_assert_ptr_null(strstr(raw, "v1:"));
		free(raw);
		mx_account_free(&b);
		ck_assert_int_eq(get_account(st, "nosecret", &g, &e), MX_OK);
		ck_assert_ptr_null(g.password);
		ck_assert_str_eq(g.password_file, "/some/file");
		mx_account_free(&g);
	}
	mx_account_free(&a);
	mx_store_close(&st);
}
END_TEST

START_TEST(test_store_legacy_clear_text)
{
	struct mx_store *st = store_open_ok();
	struct mx_account g;
	struct mx_error e;
	struct stat sb;
	char *raw;

	put_raw_record(st, 1, "old",
		       "{\"id\":1,\"name\":\"old\",\"host\":\"h\",\"port\":993,"
		       "\"tls\":0,\"user\":\"u\",\"password\":\"legacy-Clear-pw\","
		       "\"insecure_plaintext\":false,\"timeout_s\":0,"
		       "\"created\":1}");
	/* a clear-text password that merely starts like a sealed one */
	put_raw_record(st, 2, "odd",
		       "{\"id\":2,\"name\":\"odd\",\"password\":\"v1:not sealed\"}");
	ck_assert_int_eq(get_account(st, "old", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, "legacy-Clear-pw");
	ck_assert_int_ne(stat(g_key, &sb), 0); /* reading needed no key */
	ck_assert_int_eq(list_accounts(st, &e), MX_OK);

	/* the next put seals it */
	put_account(st, &g);
	raw = raw_record(st, 1);
	ck_assert_ptr_null(strstr(raw, "legacy-Clear-pw"));
	ck_assert_ptr_nonnull(strstr(raw, "\"password\":\"v1:"));
	free(raw);
	mx_account_free(&g);
	ck_assert_int_eq(get_account(st, "old", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, "legacy-Clear-pw");
	mx_account_free(&g);

	ck_assert_int_eq(get_account(st, "odd", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, "v1:not sealed");
	put_account(st, &g);
	mx_account_free(&g);
	ck_assert_int_eq(get_account(st, "odd", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, "v1:not sealed");
	mx_account_free(&g);
	raw = raw_record(st, 2);
	ck_assert_ptr_null(strstr(raw, "not sealed"));
	free(raw);
	mx_store_close(&st);
}
END_TEST

START_TEST(test_store_wrong_key)
{
	struct mx_store *st = store_open_ok();
	struct mx_account a, g;
	struct mx_error e;
	unsigned char saved[32], other[32];
	char want[512], path[200];
	struct stat sb;

	fill_account(&a, "acme");
	put_account(st, &a);
	mx_store_close(&st);
	ck_assert_uint_eq(read_file(g_key, saved, sizeof(saved)), 32);

	/* another key in the key file */
	ck_assert_int_eq(RAND_bytes(other, 32), 1);
	write_file(g_key, other, 32, 0600);
	st = store_open_ok();
	snprintf(want, sizeof(want), "cannot decrypt account acme's secrets: "
		 "wrong key (MXSYNC_KEY / %s)", g_key);
	g.password = NULL;
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_ERR_CONFIG);
	ck_assert_str_eq(e.detail, want);
	ck_assert_ptr_null(g.password); /* nothing half-opened */
	ck_assert_ptr_null(g.name);
	ck_assert_int_eq(list_accounts(st, &e), MX_ERR_CONFIG);
	ck_assert_str_eq(e.detail, want);
	mx_store_close(&st);

	/* the key in $MXSYNC_KEY, a wrong one */
	set_env_key(other);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_ERR_CONFIG);
	ck_assert_str_eq(e.detail, want);
	mx_store_close(&st);
	/* ... and the right one */
	set_env_key(saved);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, a.password);
	mx_account_free(&g);
	mx_store_close(&st);
	unsetenv("MXSYNC_KEY");

	/* key file missing: an error, and no new key replaces the lost one */
	unlink(g_key);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.detail, "acme"));
	ck_assert_ptr_nonnull(strstr(e.detail, g_key));
	ck_assert_ptr_nonnull(strstr(e.detail, "missing"));
	ck_assert_int_ne(stat(g_key, &sb), 0);
	mx_store_close(&st);

	/* restored: works again */
	write_file(g_key, saved, 32, 0600);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_OK);
	ck_assert_str_eq(g.refresh_token, a.refresh_token);
	mx_account_free(&g);
	mx_store_close(&st);

	/* key file too open: refused with the fix */
	ck_assert_int_eq(chmod(g_key, 0644), 0);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.detail, "chmod 600"));
	mx_store_close(&st);
	ck_assert_int_eq(chmod(g_key, 0600), 0);

	/* $MXSYNC_KEY_FILE points elsewhere: a missing file is reported
	 * under that name */
	snprintf(path, sizeof(path), "%s/elsewhere.key", g_top);
	setenv("MXSYNC_KEY_FILE", path, 1);
	st = store_open_ok();
	ck_assert_int_eq(get_account(st, "acme", &g, &e), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.detail, path));
	mx_store_close(&st);
	mx_account_free(&a);
}
END_TEST

START_TEST(test_store_key_file_env)
{
	struct mx_store *st;
	struct mx_account a, g;
	struct mx_error e;
	char path[200];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/custom.key", g_top);
	setenv("MXSYNC_KEY_FILE", path, 1);
	st = store_open_ok();
	fill_account(&a, "k");
	put_account(st, &a);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0600);
	ck_assert_int_ne(stat(g_key, &sb), 0);
	ck_assert_int_eq(get_account(st, "k", &g, &e), MX_OK);
	ck_assert_str_eq(g.password, a.password);
	mx_account_free(&g);
	mx_store_close(&st);
	mx_account_free(&a);
}
END_TEST

/* A sealed value moved to another field or account does not open. */
START_TEST(test_store_sealed_bound_to_slot)
{
	struct mx_store *st = store_open_ok();
	struct mx_account a, b, g;
	struct mx_error e;
	json_t *ra, *rb;
	char *raw, *out;

	fill_account(&a, "one");
	fill_account(&b, "two");
	put_account(st, &a);
	put_account(st, &b);
	raw = raw_record(st, a.id);
	ra = json_loads(raw, 0, NULL);
	free(raw);
	raw = raw_record(st, b.id);
	rb = json_loads(raw, 0, NULL);
	free(raw);
	ck_assert_ptr_nonnull(ra);
	ck_assert_ptr_nonnull(rb);

	/* one's password in two's record */
	json_object_set(rb, "password", json_object_get(ra, "password"));
	out = json_dumps(rb, JSON_COMPACT);
	put_raw_record(st, b.id, "two", out);
	free(out);
	ck_assert_int_eq(get_account(st, "two", &g, &e), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.detail, "wrong key"));

	/* one's password as its own access token */
	json_object_set(ra, "access_token", json_object_get(ra, "password"));
	out = json_dumps(ra, JSON_COMPACT);
	put_raw_record(st, a.id, "one", out);
	free(out);
	ck_assert_int_eq(get_account(st, "one", &g, &e), MX_ERR_CONFIG);
	json_decref(ra);
	json_decref(rb);
	mx_account_free(&a);
	mx_account_free(&b);
	mx_store_close(&st);
}
END_TEST

/* In a child of its own: the limits and the dumpable flag are per process
 * and must not leak into the other tests. */
START_TEST(test_protect_process)
{
	pid_t pid = fork();
	int status = 0;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};

		/* As a shell with `ulimit -c unlimited` would start us. */
		setrlimit(RLIMIT_CORE, &rl);
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1)
			_exit(10);
		if (mx_secrets_protect_process() != 0)
			_exit(11);
		if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 ||
		    rl.rlim_max != 0)
			_exit(12);
		if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
			_exit(13);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	/* 10: not dumpable to begin with; 11: failed; 12: core limit not
	 * 0/0; 13: still dumpable */
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_secret_wipe)
{
	char buf[] = "hunter2-token\0tail";
	char zeros[13] = {0};

	mx_secret_wipe(buf);
	ck_assert(memcmp(buf, zeros, sizeof(zeros)) == 0);
	/* Up to the NUL only: what follows is not the secret's. */
	ck_assert_str_eq(buf + 14, "tail");
	mx_secret_wipe(NULL);
	mx_secret_free(NULL);
	mx_secret_free(strdup("freed-after-wipe"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("secrets");
	TCase *tc = tcase_create("seal");
	TCase *ts = tcase_create("store");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_wrong_aad);
	tcase_add_test(tc, test_tampered);
	tcase_add_test(tc, test_wrong_key);
	tcase_add_test(tc, test_not_sealed);
	tcase_add_test(tc, test_key_file_created_and_reused);
	tcase_add_test(tc, test_key_file_too_open_refused);
	tcase_add_test(tc, test_env_key);
	tcase_add_test(tc, test_protect_process);
	tcase_add_test(tc, test_secret_wipe);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ts, setup, teardown);
	tcase_add_test(ts, test_store_sealed_roundtrip);
	tcase_add_test(ts, test_store_legacy_clear_text);
	tcase_add_test(ts, test_store_wrong_key);
	tcase_add_test(ts, test_store_key_file_env);
	tcase_add_test(ts, test_store_sealed_bound_to_slot);
	suite_add_tcase(s, ts);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
