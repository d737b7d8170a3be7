/* RFC 2104 over a one-shot digest; the contract is in aliyun_hash_hmac.h. */
#include "aliyun_hash_hmac.h"

#include <string.h>

/* MD5, SHA-1 and SHA-256 all hash 64-byte blocks (RFC 1321, FIPS 180-4): one block size B. */
#define BLOCK 64u

int aliyun_hash_hmac(aliyun_hash_digest_fn digest, aliyun_sign_method_t method, const unsigned char *key,
                     size_t key_len, const unsigned char *msg, size_t msg_len, unsigned char *mac)
{
    static const unsigned char sizes[] = {16, 20, 32};
    unsigned char k[BLOCK];                   /* K' */
    unsigned char buf[BLOCK + ALIYUN_HASH_MSG_MAX]; /* (K' ^ pad) || msg, then (K' ^ opad) || inner */
    int rc = -1;
    if ((unsigned)method > 2u || msg_len > ALIYUN_HASH_MSG_MAX) {
        return rc;
    }
    size_t n = sizes[method];
    memset(k, 0, sizeof k);
    /* RFC 2104 section 2: K' is the key zero-padded to B bytes, or H(key) when longer than B. */
    rc = key_len > BLOCK ? digest(method, key, key_len, k) : (memcpy(k, key, key_len), 0);
    for (size_t i = 0; i < BLOCK; i++) {
        buf[i] = (unsigned char)(k[i] ^ 0x36u);
    }
    memcpy(buf + BLOCK, msg, msg_len);
    rc |= digest(method, buf, BLOCK + msg_len, buf + BLOCK); /* the inner digest replaces msg */
    for (size_t i = 0; i < BLOCK; i++) {
        buf[i] = (unsigned char)(k[i] ^ 0x5cu);
    }
    rc |= digest(method, buf, BLOCK + n, mac);
    /* K' and the inner digest are secret-derived (volatile: the stores are not dropped as dead) */
    for (volatile unsigned char *v = k; v < k + sizeof k; v++) {
        *v = 0;
    }
    for (volatile unsigned char *v = buf; v < buf + sizeof buf; v++) {
        *v = 0;
    }
    return rc ? -1 : 0;
}
