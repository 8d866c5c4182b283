/*
 * Secrets at rest: passwords, OAuth2 refresh/access tokens and client
 * secrets are stored in LMDB sealed with AES-256-GCM (OpenSSL).
 *
 * The 32-byte key comes from $MXSYNC_KEY (base64 of 32 bytes) if set, else
 * from a key file (default DATA_DIR/secret.key), created on first use with
 * 32 random bytes and mode 0600.  A key file with looser permissions is
 * refused.  A wrong or missing key gives a clear error, never garbage.
 *
 * Sealed format (text, safe in JSON): "v1:" base64(nonce[12] | ciphertext |
 * tag[16]).  The caller's AAD (e.g. "account:7:password") binds a sealed
 * value to its slot, so it cannot be moved to another field or account.
 */
#ifndef MX_SECRETS_H
#define MX_SECRETS_H

#include <stddef.h>

#include "util/util.h"

struct mx_secrets;

/* KEY_FILE NULL = DATA_DIR/secret.key.  Errors: MX_ERR_CONFIG (bad
 * $MXSYNC_KEY, key file of the wrong size or too open), MX_ERR_IO. */
int mx_secrets_open(const char *data_dir, const char *key_file,
		    struct mx_secrets **s_r, struct mx_error *err);
void mx_secrets_close(struct mx_secrets **s);

/* Seals LEN bytes of PLAIN; *SEALED_R is a malloc()ed NUL-terminated
 * string. */
int mx_secret_seal(struct mx_secrets *s, const char *aad, const void *plain,
		   size_t len, char **sealed_r, struct mx_error *err);

/* Opens a sealed value; *PLAIN_R malloc()ed and NUL-terminated (LEN_R may
 * be NULL).  Errors: MX_ERR_PARSE (not a sealed value), MX_ERR_CONFIG
 * ("cannot decrypt ...: wrong key or corrupted value"). */
int mx_secret_unseal(struct mx_secrets *s, const char *aad,
		     const char *sealed, char **plain_r, size_t *len_r,
		     struct mx_error *err);

/* True if S looks like a sealed value ("v1:..."). */
int mx_secret_is_sealed(const char *s);

/* Overwrites the NUL-terminated secret S (a clear password or token) with
 * zeros in a way the compiler cannot drop; mx_secret_free() also frees it
 * (use it for what mx_secret_unseal() returns).  NULL is a no-op. */
void mx_secret_wipe(char *s);
void mx_secret_free(char *s);

/* Keeps the process's memory (the key, clear passwords and tokens) out of
 * core dumps and away from other processes of the same user: RLIMIT_CORE
 * 0 (soft and hard) and, on Linux, PR_SET_DUMPABLE 0, which also makes
 * /proc/PID/{mem,environ,maps,fd,...} root-owned and refuses ptrace
 * without CAP_SYS_PTRACE.  It also moves $MXSYNC_KEY out of the
 * environment (children and /proc/PID/environ would show it) into a
 * private copy that mx_secrets_env_key() returns.  mxsyncd and mxsync call
 * it first thing, before any thread.  -1 (errno set) if a step failed; the
 * others are still done. */
int mx_secrets_protect_process(void);

/* $MXSYNC_KEY: the copy mx_secrets_protect_process() took, else the
 * environment's value; NULL if unset. */
const char *mx_secrets_env_key(void);

#endif
