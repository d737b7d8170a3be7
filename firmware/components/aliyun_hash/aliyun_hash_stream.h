/* A multi-part MD5 or SHA-256 digest in lower-case hex: the OTA image's, hashed chunk by chunk as it is
 * written to flash (main/ota_update.c). One implementation for every build: PSA Crypto's multi-part hash
 * (psa_hash_setup/update/finish/abort) is in Mbed TLS 2.28 (the host build), 3.6 (ESP-IDF v5.5) and 4.x
 * (ESP-IDF v6.0, which removed the legacy mbedtls_md5_starts()/mbedtls_sha256_starts() family). */
#ifndef ALIYUN_HASH_STREAM_H
#define ALIYUN_HASH_STREAM_H

#include <stddef.h>

#include "psa/crypto.h"

typedef enum {
    ALIYUN_HASH_STREAM_MD5,    /* 16 bytes, 32 hex digits */
    ALIYUN_HASH_STREAM_SHA256, /* 32 bytes, 64 hex digits */
} aliyun_hash_stream_alg_t;

/* The hex digits of the longest digest (SHA-256), without the NUL. */
#define ALIYUN_HASH_STREAM_HEX_MAX 64u

/* Zero-initialised (static storage, or = {0}) it is idle: PSA_HASH_OPERATION_INIT is all zeroes in every
 * Mbed TLS that has PSA, and aborting an idle operation is safe and does nothing (PSA Certified Crypto API 1.1, psa_hash_abort). */
typedef struct {
    psa_hash_operation_t op;
} aliyun_hash_stream_t;

/* Starts a digest from nothing, dropping one still running; 0 on success, -1 when PSA Crypto cannot start
 * (psa_crypto_init) or lacks the algorithm. */
int aliyun_hash_stream_start(aliyun_hash_stream_t *s, aliyun_hash_stream_alg_t alg);

/* Hashes len more bytes; 0 on success. On failure the digest is dropped (the stream is idle). */
int aliyun_hash_stream_update(aliyun_hash_stream_t *s, const void *data, size_t len);

/* Ends the digest and writes it as lower-case hex with a NUL into hex (hex_size at least twice the digest
 * length plus one; ALIYUN_HASH_STREAM_HEX_MAX + 1 always is); 0 on success. The stream is idle afterwards,
 * whatever the result; on failure hex is the empty string (when hex_size > 0). */
int aliyun_hash_stream_finish_hex(aliyun_hash_stream_t *s, char *hex, size_t hex_size);

/* Drops a running digest; harmless on an idle stream. */
void aliyun_hash_stream_abort(aliyun_hash_stream_t *s);

#endif
