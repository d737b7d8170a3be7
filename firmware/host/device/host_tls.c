#include "host_tls.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* One process, one connection at a time: the last verification failure is process state. */
static int s_verify_error = X509_V_OK;

static int remember_verify_error(int preverify_ok, X509_STORE_CTX *store)
{
    if (!preverify_ok) {
        s_verify_error = X509_STORE_CTX_get_error(store);
    }
    return preverify_ok;
}

alink_cert_refusal_t host_tls_take_refusal(void)
{
    int error = s_verify_error;
    s_verify_error = X509_V_OK;
    switch (error) {
    case X509_V_OK:
        return ALINK_CERT_ACCEPTED;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return ALINK_CERT_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return ALINK_CERT_NOT_YET_VALID;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return ALINK_CERT_NAME_MISMATCH;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        return ALINK_CERT_UNTRUSTED;
    default:
        return ALINK_CERT_REJECTED;
    }
}

static int load_bundle(SSL_CTX *ctx, const char *pem, size_t pem_len)
{
    if (pem_len > (size_t)0x7fffffff) {
        return 0;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int loaded = 0;
    X509 *cert;
    while (bio != NULL && (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, cert) == 1) {
            loaded++;
        }
        X509_free(cert);
    }
    ERR_clear_error(); /* the read that ends the loop leaves "no start line" */
    BIO_free(bio);
    return loaded;
}

SSL_CTX *host_tls_context(const char *pem_bundle, size_t pem_len, const char *host, char *why, size_t why_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(why, why_size, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (load_bundle(ctx, pem_bundle, pem_len) == 0) {
        snprintf(why, why_size, "no certificate in the CA bundle");
        SSL_CTX_free(ctx);
        return NULL;
    }
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    unsigned char address[16];
    int is_ip = inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
    int named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (named != 1) {
        snprintf(why, why_size, "cannot set the expected server name");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, remember_verify_error);
    s_verify_error = X509_V_OK;
    return ctx;
}
