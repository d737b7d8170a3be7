/* aliyun_auth's digests over PSA Crypto, the hashing interface Mbed TLS 4 keeps (ESP-IDF v6): the legacy
 * md5.h/sha1.h/sha256.h one-shots are gone there. psa_hash_compute() works on a stack operation; PSA
 * must be initialised (psa_crypto_init() is idempotent, so it is asked for here). */
#include <stdint.h>

#include "aliyun_auth.h"
#include "aliyun_hash_hmac.h"
#include "psa/crypto.h"

static int digest(aliyun_sign_method_t method, const unsigned char *in, size_t len, unsigned char *out)
{
    static const psa_algorithm_t algorithms[] = {PSA_ALG_MD5, PSA_ALG_SHA_1, PSA_ALG_SHA_256};
    static const uint8_t sizes[] = {16, 20, 32};
    size_t written = 0;
    if ((unsigned)method > 2u || psa_crypto_init() != PSA_SUCCESS) {
        return -1;
    }
    psa_status_t st = psa_hash_compute(algorithms[method], in, len, out, sizes[method], &written);
    return st == PSA_SUCCESS && written == sizes[method] ? 0 : -1;
}

static int hmac(aliyun_sign_method_t method, const unsigned char *key, size_t key_len, const unsigned char *msg,
                size_t msg_len, unsigned char *mac)
{
    return aliyun_hash_hmac(digest, method, key, key_len, msg, msg_len, mac);
}

const aliyun_auth_hash_t aliyun_auth_hash = {hmac};
