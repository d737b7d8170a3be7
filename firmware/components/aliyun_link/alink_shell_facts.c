/* Certificate refusals and the MAC client id; the contract is in alink_shell_facts.h. */
#include "alink_shell_facts.h"

const char *alink_cert_refusal_text(alink_cert_refusal_t refusal)
{
    switch (refusal) {
    case ALINK_CERT_ACCEPTED:
        return "accepted";
    case ALINK_CERT_UNTRUSTED:
        return "unknown CA";
    case ALINK_CERT_EXPIRED:
        return "expired";
    case ALINK_CERT_NOT_YET_VALID:
        return "not yet valid";
    case ALINK_CERT_NAME_MISMATCH:
        return "name does not match the host";
    case ALINK_CERT_REJECTED:
        break;
    }
    return "verification failed";
}

alink_cert_refusal_t alink_cert_refusal_from_mbedtls(int stack_error, uint32_t verify_flags)
{
    /* Expiry first: an expired certificate from a known CA may carry other flags too, and "expired" is
     * what an operator can act on. */
    if (verify_flags & ALINK_MBEDTLS_BADCERT_EXPIRED) {
        return ALINK_CERT_EXPIRED;
    }
    if (verify_flags & ALINK_MBEDTLS_BADCERT_FUTURE) {
        return ALINK_CERT_NOT_YET_VALID;
    }
    if (verify_flags & ALINK_MBEDTLS_BADCERT_NOT_TRUSTED) {
        return ALINK_CERT_UNTRUSTED;
    }
    if (verify_flags & ALINK_MBEDTLS_BADCERT_CN_MISMATCH) {
        return ALINK_CERT_NAME_MISMATCH;
    }
    if (verify_flags != 0 || stack_error == ALINK_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        return ALINK_CERT_REJECTED;
    }
    return ALINK_CERT_ACCEPTED;
}

bool alink_client_id_from_mac(const uint8_t mac[6], char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    if (out != NULL && out_size > 0) {
        out[0] = '\0';
    }
    if (mac == NULL || out == NULL || out_size < 13) {
        return false;
    }
    bool all_zero = true;
    bool all_ones = true;
    for (int i = 0; i < 6; i++) {
        all_zero = all_zero && mac[i] == 0x00;
        all_ones = all_ones && mac[i] == 0xFF;
    }
    if (all_zero || all_ones) {
        return false;
    }
    for (int i = 0; i < 6; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0x0Fu];
    }
    out[12] = '\0';
    return true;
}
