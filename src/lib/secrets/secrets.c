/*
 * Secrets at rest: AES-256-GCM with a per-value random nonce (OpenSSL EVP),
 * the key from $MXSYNC_KEY or a 0600 key file.  Format and contract:
 * secrets.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "secrets/secrets.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define SEALED_PREFIX "v1:"
#define SEALED_PREFIX_LEN 3

struct mx_secrets {
	unsigned char key[KEY_LEN];
};

/* ---- the key ---- */

static int key_from_env(const char *env, struct mx_secrets *s,
			struct mx_error *err)
{
	unsigned char buf[KEY_LEN + 3];
	size_t n = 0;
	int rc = MX_OK;

	/* The value itself is never echoed: it is the key. */
	if (mx_base64_decode(env, strlen(env), 0, buf, sizeof(buf), &n) < 0 ||
	    n != KEY_LEN)
		rc = mx_error_set(err, MX_ERR_CONFIG,
				  "MXSYNC_KEY must be the base64 of exactly %d "
				  "bytes (make one with 'openssl rand -base64 "
				  "32')", KEY_LEN);
	else
		memcpy(s->key, buf, KEY_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int read_all(int fd, unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* MX_ERR_NOTFOUND (no detail) if PATH does not exist. */
static int key_file_load(const char *path, struct mx_secrets *s,
			 struct mx_error *err)
{
	struct stat sb;
	int fd, rc = MX_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return MX_ERR_NOTFOUND;
		return mx_error_set(err, MX_ERR_IO, "key file %s: %s", path,
				    strerror(errno));
	}
	if (fstat(fd, &sb) != 0) {
		rc = mx_error_set(err, MX_ERR_IO, "key file %s: %s", path,
				  strerror(errno));
	} else if (!S_ISREG(sb.st_mode)) {
		rc = mx_error_set(err, MX_ERR_CONFIG,
				  "key file %s is not a regular file", path);
	} else if ((sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		rc = mx_error_set(err, MX_ERR_CONFIG,
				  "key file %s has mode %04o: it must not be "
				  "accessible by group or others; fix it with "
				  "'chmod 600 %s'",
				  path, (unsigned)(sb.st_mode & 07777), path);
	} else if (sb.st_size != KEY_LEN) {
		rc = mx_error_set(err, MX_ERR_CONFIG,
				  "key file %s has %lld bytes, expected %d: "
				  "not an mxsync key (restore it from a backup)",
				  path, (long long)sb.st_size, KEY_LEN);
	} else if (read_all(fd, s->key, KEY_LEN) < 0) {
		rc = mx_error_set(err, MX_ERR_IO, "key file %s: short read",
				  path);
	}
	close(fd);
	return rc;
}

static void fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	dir = slash ? mx_strndup(path, slash == path ? 1 : (size_t)(slash - path))
		    : mx_strdup(".");
	if (dir == NULL)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/*
 * Creates PATH with 32 random bytes, mode 0600.  The key is written to a
 * temporary file (O_CREAT|O_EXCL) and linked into place, so a concurrent
 * first use (daemon and CLI on a fresh data dir) never reads a partly
 * written key: the loser of the link() race loads the winner's key.
 */
static int key_file_create(const char *path, struct mx_secrets *s,
			   struct mx_error *err)
{
	unsigned char rnd[4];
	char tmp[4096], hex[9];
	int fd, rc = MX_OK;

	if (RAND_bytes(s->key, KEY_LEN) != 1 ||
	    RAND_bytes(rnd, sizeof(rnd)) != 1)
		return mx_error_set(err, MX_ERR_IO,
				    "cannot create key file %s: the random "
				    "generator failed", path);
	mx_hex(rnd, sizeof(rnd), hex);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%s.tmp", path, hex) >=
	    sizeof(tmp))
		return mx_error_set(err, MX_ERR_CONFIG, "key file path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return mx_error_set(err, MX_ERR_IO, "cannot create key file "
				    "%s: %s", tmp, strerror(errno));
	if (mx_write_all(fd, s->key, KEY_LEN) < 0 || fsync(fd) != 0) {
		rc = mx_error_set(err, MX_ERR_IO, "cannot write key file %s: "
				  "%s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) != 0) {
		rc = mx_error_set(err, MX_ERR_IO, "cannot write key file %s: "
				  "%s", tmp, strerror(errno));
		goto out;
	}
	if (link(tmp, path) == 0) {
		fsync_parent(path);
	} else if (errno == EEXIST) {
		OPENSSL_cleanse(s->key, KEY_LEN);
		rc = key_file_load(path, s, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = mx_error_set(err, MX_ERR_IO, "key file %s "
					  "vanished", path);
	} else {
		rc = mx_error_set(err, MX_ERR_IO, "cannot create key file "
				  "%s: %s", path, strerror(errno));
	}
out:
	unlink(tmp);
	return rc;
}

int mx_secrets_open(const char *data_dir, const char *key_file,
		    struct mx_secrets **s_r, struct mx_error *err)
{
	struct mx_secrets *s;
	const char *env = mx_secrets_env_key();
	char path[4096];
	int rc;

	*s_r = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (env && *env) {
		rc = key_from_env(env, s, err);
		goto out;
	}
	if (key_file == NULL) {
		if (data_dir == NULL) {
			rc = mx_error_set(err, MX_ERR_INVAL,
					  "no key file and no data directory");
			goto out;
		}
		rc = mx_mkdir_p(data_dir, 0700, err);
		if (rc)
			goto out;
		if ((size_t)snprintf(path, sizeof(path), "%s/secret.key",
				     data_dir) >= sizeof(path)) {
			rc = mx_error_set(err, MX_ERR_CONFIG,
					  "data directory path too long");
			goto out;
		}
		key_file = path;
	}
	rc = key_file_load(key_file, s, err);
	if (rc == MX_ERR_NOTFOUND) {
		rc = key_file_create(key_file, s, err);
		if (rc == MX_OK)
			mx_info("created key file %s (back it up: the stored "
				"passwords and tokens cannot be read without it)",
				key_file);
	}
out:
	if (rc) {
		mx_secrets_close(&s);
		return rc;
	}
	*s_r = s;
	return MX_OK;
}

void mx_secrets_close(struct mx_secrets **s)
{
	if (s == NULL || *s == NULL)
		return;
	OPENSSL_cleanse((*s)->key, KEY_LEN);
	free(*s);
	*s = NULL;
}

/* ---- sealing ---- */

int mx_secret_is_sealed(const char *s)
{
	return s != NULL && strncmp(s, SEALED_PREFIX, SEALED_PREFIX_LEN) == 0;
}

int mx_secret_seal(struct mx_secrets *s, const char *aad, const void *plain,
		   size_t len, char **sealed_r, struct mx_error *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *out = NULL;
	size_t rawlen = NONCE_LEN + len + TAG_LEN;
	size_t aadlen = aad ? strlen(aad) : 0;
	int n, rc = MX_OK;

	*sealed_r = NULL;
	if (len > INT_MAX / 2 || aadlen > INT_MAX)
		return mx_error_set(err, MX_ERR_INVAL, "secret too large");
	raw = malloc(rawlen);
	out = malloc(SEALED_PREFIX_LEN + (rawlen + 2) / 3 * 4 + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (raw == NULL || out == NULL || ctx == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	if (RAND_bytes(raw, NONCE_LEN) != 1) {
		rc = mx_error_set(err, MX_ERR_IO, "cannot seal secret: the "
				  "random generator failed");
		goto out;
	}
	/* GCM's default IV length is the 12 bytes used here. */
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->key, raw) != 1 ||
	    (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &n,
					      (const unsigned char *)aad,
					      (int)aadlen) != 1) ||
	    EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &n, plain, (int)len) != 1 ||
	    (size_t)n != len ||
	    EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + len, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				raw + NONCE_LEN + len) != 1) {
		rc = mx_error_set(err, MX_ERR_IO, "cannot seal secret: "
				  "OpenSSL AES-256-GCM failed");
		goto out;
	}
	memcpy(out, SEALED_PREFIX, SEALED_PREFIX_LEN);
	EVP_EncodeBlock((unsigned char *)out + SEALED_PREFIX_LEN, raw,
			(int)rawlen);
	*sealed_r = out;
	out = NULL;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (raw)
		OPENSSL_cleanse(raw, rawlen);
	free(raw);
	free(out);
	return rc;
}

int mx_secret_unseal(struct mx_secrets *s, const char *aad,
		     const char *sealed, char **plain_r, size_t *len_r,
		     struct mx_error *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL, *tagp;
	char *plain = NULL;
	size_t b64len, rawlen = 0, ctlen = 0;
	size_t aadlen = aad ? strlen(aad) : 0;
	int n, rc = MX_OK;

	*plain_r = NULL;
	if (len_r)
		*len_r = 0;
	if (!mx_secret_is_sealed(sealed))
		return mx_error_set(err, MX_ERR_PARSE, "not a sealed value");
	b64len = strlen(sealed + SEALED_PREFIX_LEN);
	if (b64len > INT_MAX / 2 || aadlen > INT_MAX)
		return mx_error_set(err, MX_ERR_PARSE, "sealed value too large");
	raw = malloc(b64len / 4 * 3 + 1);
	if (raw == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	/* Strict base64 (no blanks, no stray bits): a lenient decoder would
	 * let an edited value decode to the same bytes, which makes "is this
	 * value sealed?" and the tests of tampering ambiguous. */
	if (mx_base64_decode(sealed + SEALED_PREFIX_LEN, b64len, 0, raw,
			     b64len / 4 * 3 + 1, &rawlen) < 0 ||
	    rawlen < NONCE_LEN + TAG_LEN) {
		rc = mx_error_set(err, MX_ERR_PARSE, "not a sealed value "
				  "(malformed after \"%s\")", SEALED_PREFIX);
		goto out;
	}
	ctlen = rawlen - NONCE_LEN - TAG_LEN;
	tagp = raw + NONCE_LEN + ctlen;
	plain = malloc(ctlen + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (plain == NULL || ctx == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s->key, raw) != 1 ||
	    (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &n,
					      (const unsigned char *)aad,
					      (int)aadlen) != 1) ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n,
			      raw + NONCE_LEN, (int)ctlen) != 1 ||
	    (size_t)n != ctlen ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				tagp) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + ctlen, &n) != 1) {
		/* Nothing of the unauthenticated plaintext leaves. */
		rc = mx_error_set(err, MX_ERR_CONFIG, "cannot decrypt secret: "
				  "wrong key or corrupted value");
		goto out;
	}
	plain[ctlen] = '\0';
	*plain_r = plain;
	if (len_r)
		*len_r = ctlen;
	plain = NULL;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (plain) {
		OPENSSL_cleanse(plain, ctlen + 1);
		free(plain);
	}
	free(raw);
	return rc;
}

void mx_secret_wipe(char *s)
{
	/* OPENSSL_cleanse, not memset: the compiler drops a memset() of
	 * memory that is freed or goes out of scope right after (gcc -O2
	 * does, for both). */
	if (s)
		OPENSSL_cleanse(s, strlen(s));
}

void mx_secret_free(char *s)
{
	mx_secret_wipe(s);
	free(s);
}

/* ---- the process ---- */

/* $MXSYNC_KEY as it was when mx_secrets_protect_process() took it out of
 * the environment (NULL: not taken; then getenv() is asked). */
static char *env_key;
static bool env_key_taken;

const char *mx_secrets_env_key(void)
{
	return env_key_taken ? env_key : getenv("MXSYNC_KEY");
}

/* Moves $MXSYNC_KEY out of the environment into a private copy: the
 * environment is copied into every child and shown by /proc/PID/environ
 * for as long as the process lives.  Before any thread exists
 * (setenv/unsetenv are not thread-safe). */
static void take_env_key(void)
{
	char *v = getenv("MXSYNC_KEY");

	if (env_key_taken)
		return;
	env_key_taken = true;
	if (v == NULL)
		return;
	env_key = strdup(v); /* NULL on ENOMEM: as if unset, a clear error */
	/* Wipe the bytes too: unsetenv() only unlinks them, and the
	 * initial environment lives on the stack of main(). */
	OPENSSL_cleanse(v, strlen(v));
	unsetenv("MXSYNC_KEY");
}

int mx_secrets_protect_process(void)
{
	struct rlimit rl = {0, 0};
	int rc = 0, saved = 0;

	take_env_key();

	/* Hard limit 0 too, so nothing later in the process (or a child)
	 * can raise it again. */
	if (setrlimit(RLIMIT_CORE, &rl) != 0) {
		saved = errno;
		rc = -1;
	}
#ifdef __linux__
	/* Both, because neither is enough alone: with a core_pattern pipe
	 * ("|/usr/lib/...") the kernel hands the core to the helper whatever
	 * RLIMIT_CORE says, and with fs.suid_dumpable 2 a non-dumpable
	 * process is still dumped (root-owned).  Not dumpable also keeps
	 * same-user processes out of /proc/PID/mem and ptrace. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		saved = errno;
		rc = -1;
	}
#endif
	if (rc)
		errno = saved;
	return rc;
}
