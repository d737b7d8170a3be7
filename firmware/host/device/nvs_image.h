/*
 * A read-only reader of ESP-IDF NVS partition images (what `provision gen-nvs` writes), standing in for
 * nvs_flash on the host: plain images, and images encrypted with AES-256-XTS (flash-encryption scheme:
 * keys from the nvs_keys partition; HMAC scheme: keys derived from the eFuse HMAC key).
 * Format facts and their ESP-IDF sources: provision/nvs_format.py.
 */
#ifndef NVS_IMAGE_H
#define NVS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define NVS_IMAGE_PAGE_SIZE 4096u
#define NVS_IMAGE_XTS_KEY_SIZE 64u /* XTS key || tweak key */
#define NVS_IMAGE_KEYS_PARTITION_SIZE 4096u
#define NVS_IMAGE_HMAC_KEY_SIZE 32u

typedef enum {
    NVS_IMAGE_OK = 0,
    NVS_IMAGE_ERR_ARG,           /* NULL pointer or a size that is not a whole number of pages */
    NVS_IMAGE_ERR_NOT_FOUND,     /* no such namespace or key (also what wrong keys look like) */
    NVS_IMAGE_ERR_TOO_LONG,      /* the string does not fit the output buffer */
    NVS_IMAGE_ERR_CORRUPT,       /* a string whose data CRC does not match */
    NVS_IMAGE_ERR_KEYS,          /* an nvs_keys partition of the wrong size or with a bad CRC */
    NVS_IMAGE_ERR_CRYPTO,        /* an mbedtls call failed */
} nvs_image_status_t;

typedef struct {
    const uint8_t *data;
    size_t size;                                  /* a multiple of NVS_IMAGE_PAGE_SIZE */
    const uint8_t *xts_key;                       /* NVS_IMAGE_XTS_KEY_SIZE bytes, or NULL: plain image */
} nvs_image_t;

/* Reads a string (type SZ) into out (NUL included). Entries whose CRC fails are skipped, as nvs_flash does. */
nvs_image_status_t nvs_image_get_str(const nvs_image_t *image, const char *namespace_name, const char *key,
                                     char *out, size_t out_size);

/* The XTS key in a 4096-byte nvs_keys partition (XTS key, tweak key, CRC32 of both). */
nvs_image_status_t nvs_image_keys_from_partition(const uint8_t *partition, size_t size,
                                                 uint8_t key[NVS_IMAGE_XTS_KEY_SIZE]);

/* The XTS key the chip derives from an eFuse HMAC key (nvs_sec_provider.c, compute_nvs_keys_with_hmac). */
nvs_image_status_t nvs_image_keys_from_hmac(const uint8_t hmac_key[NVS_IMAGE_HMAC_KEY_SIZE],
                                            uint8_t key[NVS_IMAGE_XTS_KEY_SIZE]);

const char *nvs_image_strerror(nvs_image_status_t status);

#endif
