/* RFC 2104 HMAC over a one-shot digest, shared by the providers of aliyun_auth_hash (aliyun_auth.h):
 * neither the Mbed TLS 2.28/3.x one-shots nor psa_hash_compute() allocate, so neither does this
 * (mbedtls_md_hmac() would: mbedtls_md_setup() calloc()s its contexts). */
#ifndef ALIYUN_HASH_HMAC_H
#define ALIYUN_HASH_HMAC_H

#include <stddef.h>

#include "aliyun_auth.h"

/* The one-shot digest of the method's hash (16, 20 or 32 bytes into out); 0 on success. */
typedef int (*aliyun_hash_digest_fn)(aliyun_sign_method_t method, const unsigned char *in, size_t len,
                                     unsigned char *out);

/* The longest message aliyun_hash_hmac() takes (aliyun_auth signs at most about 220 bytes). */
#define ALIYUN_HASH_MSG_MAX 256u

/* HMAC-H(key, msg) into mac (which may overlap msg: msg is copied first); -1 for an unknown method or a
 * message over ALIYUN_HASH_MSG_MAX. */
int aliyun_hash_hmac(aliyun_hash_digest_fn digest, aliyun_sign_method_t method, const unsigned char *key,
                     size_t key_len, const unsigned char *msg, size_t msg_len, unsigned char *mac);

#endif
