/*
 * What a shell hands the core besides plain events: why a TLS handshake refused the server, and the
 * bare client id from the chip's MAC. Pure C99: no TLS library or ESP-IDF include (the mbedtls verify
 * flags below are numbers; tests/firmware/test_alink_shell_facts.c holds them to mbedtls' headers).
 */
#ifndef ALINK_SHELL_FACTS_H
#define ALINK_SHELL_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Carried by ALINK_EV_MQTT_DISCONNECTED: the core logs "aliyun: server certificate rejected: <text>". */
typedef enum {
    ALINK_CERT_ACCEPTED = 0,   /* no certificate problem (or not a TLS failure) */
    ALINK_CERT_UNTRUSTED,      /* not issued by a CA of the bundle */
    ALINK_CERT_EXPIRED,        /* past its notAfter */
    ALINK_CERT_NOT_YET_VALID,  /* before its notBefore (often: the device clock) */
    ALINK_CERT_NAME_MISMATCH,  /* valid, but not for the host the device connects to */
    ALINK_CERT_REJECTED,       /* verification failed for another or an unknown reason */
} alink_cert_refusal_t;

/* The text of a refusal ("unknown CA", "expired", ...); "accepted" for ALINK_CERT_ACCEPTED. */
const char *alink_cert_refusal_text(alink_cert_refusal_t refusal);

/* mbedtls' X.509 verify flags (mbedtls/x509.h, the same in Mbed TLS 2.28, 3.6 and 4.0), as esp-tls hands
 * them over in esp_mqtt_error_codes_t.esp_tls_cert_verify_flags. */
#define ALINK_MBEDTLS_BADCERT_EXPIRED 0x01u
#define ALINK_MBEDTLS_BADCERT_CN_MISMATCH 0x04u
#define ALINK_MBEDTLS_BADCERT_NOT_TRUSTED 0x08u
#define ALINK_MBEDTLS_BADCERT_FUTURE 0x0200u
/* mbedtls_ssl_handshake()'s result when the peer's certificate failed verification. */
#define ALINK_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED (-0x2700)

/* The refusal an mbedtls handshake failure means: its stack error and verify flags (either may be 0).
 * ALINK_CERT_ACCEPTED when neither names a certificate problem (a plain network or protocol error). */
alink_cert_refusal_t alink_cert_refusal_from_mbedtls(int stack_error, uint32_t verify_flags);

/* The line a shell prints when the MAC cannot serve as client id (same text on every platform). */
#define ALINK_LOG_BLANK_MAC "aliyun: MAC address is blank: client id is the DeviceName"

/* The MAC as 12 uppercase hex digits in out (13 bytes or more). False, with out left empty, for a
 * blank MAC (all 0x00, as Espressif's QEMU reports, or all 0xFF, erased eFuse) or a short buffer:
 * the shell then uses the DeviceName and prints ALINK_LOG_BLANK_MAC. */
bool alink_client_id_from_mac(const uint8_t mac[6], char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif /* ALINK_SHELL_FACTS_H */
