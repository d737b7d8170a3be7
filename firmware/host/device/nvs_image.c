#include "nvs_image.h"

#include <string.h>

#include "mbedtls/aes.h"
#include "mbedtls/md.h"
#include "mbedtls/platform_util.h"

#define ENTRY_SIZE 32u
#define BITMAP_OFFSET 32u
#define FIRST_ENTRY_OFFSET 64u
#define ENTRIES_PER_PAGE 126u
#define PAGE_ACTIVE 0xFFFFFFFEu
#define PAGE_FULL 0xFFFFFFFCu
#define ENTRY_WRITTEN 0x2u
#define TYPE_U8 0x01u
#define TYPE_SZ 0x21u
#define NAMESPACE_INDEX_ROOT 0u
#define KEY_FIELD_SIZE 16u

/* zlib-compatible CRC32; NVS uses esp_rom_crc32_le(0xFFFFFFFF, ...), which equals zlib.crc32(data, 0xFFFFFFFF). */
static uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct {
    const nvs_image_t *image;
    mbedtls_aes_xts_context xts;
} reader_t;

static unsigned entry_state(const uint8_t *page, unsigned index)
{
    return (page[BITMAP_OFFSET + index / 4u] >> ((index % 4u) * 2u)) & 0x3u;
}

/* Copies entry `index` of page `page_no` into out, decrypted when the image is encrypted. */
static int read_entry(reader_t *r, size_t page_no, unsigned index, uint8_t out[ENTRY_SIZE])
{
    size_t offset = page_no * NVS_IMAGE_PAGE_SIZE + FIRST_ENTRY_OFFSET + (size_t)index * ENTRY_SIZE;
    const uint8_t *raw = r->image->data + offset;
    if (r->image->xts_key == NULL) {
        memcpy(out, raw, ENTRY_SIZE);
        return 0;
    }
    /* XTS sector number: the entry's address relative to the partition, u32 little-endian in 16 bytes */
    uint8_t sector[16] = {0};
    sector[0] = (uint8_t)offset;
    sector[1] = (uint8_t)(offset >> 8);
    sector[2] = (uint8_t)(offset >> 16);
    sector[3] = (uint8_t)(offset >> 24);
    return mbedtls_aes_crypt_xts(&r->xts, MBEDTLS_AES_DECRYPT, ENTRY_SIZE, sector, raw, out);
}

static int entry_crc_ok(const uint8_t entry[ENTRY_SIZE])
{
    uint32_t crc = crc32_update(0xFFFFFFFFu, entry, 4);
    crc = crc32_update(crc, entry + 8, ENTRY_SIZE - 8u);
    return crc == read_u32(entry + 4);
}

static int key_is(const uint8_t entry[ENTRY_SIZE], const char *key)
{
    size_t len = strlen(key);
    return len < KEY_FIELD_SIZE && memcmp(entry + 8, key, len) == 0 && entry[8 + len] == '\0';
}

typedef int (*entry_visitor_t)(reader_t *r, size_t page_no, unsigned index, const uint8_t entry[ENTRY_SIZE],
                               void *ctx);

/* Calls visit for every written entry with a good CRC in active or full pages, until it returns non-zero. */
static int for_each_entry(reader_t *r, entry_visitor_t visit, void *ctx)
{
    size_t pages = r->image->size / NVS_IMAGE_PAGE_SIZE;
    for (size_t p = 0; p < pages; p++) {
        const uint8_t *page = r->image->data + p * NVS_IMAGE_PAGE_SIZE;
        uint32_t state = read_u32(page);
        if (state != PAGE_ACTIVE && state != PAGE_FULL) {
            continue;
        }
        for (unsigned i = 0; i < ENTRIES_PER_PAGE; i++) {
            uint8_t entry[ENTRY_SIZE];
            if (entry_state(page, i) != ENTRY_WRITTEN) {
                continue;
            }
            if (read_entry(r, p, i, entry) != 0) {
                return -1;
            }
            int rc = entry_crc_ok(entry) ? visit(r, p, i, entry, ctx) : 0;
            unsigned span = entry[2];
            mbedtls_platform_zeroize(entry, sizeof entry);
            if (rc != 0) {
                return rc;
            }
            if (span > 1u) {
                i += span - 1u; /* the data entries of a string follow its header */
            }
        }
    }
    return 0;
}

typedef struct {
    const char *name;
    int index; /* -1 until found */
} namespace_search_t;

static int find_namespace(reader_t *r, size_t page_no, unsigned index, const uint8_t entry[ENTRY_SIZE], void *ctx)
{
    (void)r;
    (void)page_no;
    (void)index;
    namespace_search_t *search = ctx;
    if (entry[0] == NAMESPACE_INDEX_ROOT && entry[1] == TYPE_U8 && key_is(entry, search->name)) {
        search->index = entry[24];
        return 1;
    }
    return 0;
}

typedef struct {
    uint8_t namespace_index;
    const char *key;
    char *out;
    size_t out_size;
    nvs_image_status_t status;
} string_search_t;

static int find_string(reader_t *r, size_t page_no, unsigned index, const uint8_t entry[ENTRY_SIZE], void *ctx)
{
    string_search_t *search = ctx;
    if (entry[0] != search->namespace_index || entry[1] != TYPE_SZ || !key_is(entry, search->key)) {
        return 0;
    }
    size_t size = (size_t)entry[24] | (size_t)entry[25] << 8; /* NUL included */
    uint32_t data_crc = read_u32(entry + 28);
    unsigned span = entry[2];
    if (size == 0 || span < 2u || index + span > ENTRIES_PER_PAGE || size > (span - 1u) * ENTRY_SIZE) {
        search->status = NVS_IMAGE_ERR_CORRUPT;
        return 1;
    }
    if (size > search->out_size) {
        search->status = NVS_IMAGE_ERR_TOO_LONG;
        return 1;
    }
    size_t copied = 0;
    uint32_t crc = 0xFFFFFFFFu;
    for (unsigned d = 1; d < span && copied < size; d++) {
        uint8_t chunk[ENTRY_SIZE];
        if (read_entry(r, page_no, index + d, chunk) != 0) {
            search->status = NVS_IMAGE_ERR_CRYPTO;
            return 1;
        }
        size_t take = size - copied < ENTRY_SIZE ? size - copied : ENTRY_SIZE;
        memcpy(search->out + copied, chunk, take);
        crc = crc32_update(crc, chunk, take);
        copied += take;
        mbedtls_platform_zeroize(chunk, sizeof chunk);
    }
    if (crc != data_crc || search->out[size - 1] != '\0') {
        mbedtls_platform_zeroize(search->out, search->out_size);
        search->status = NVS_IMAGE_ERR_CORRUPT;
        return 1;
    }
    search->status = NVS_IMAGE_OK;
    return 1;
}

nvs_image_status_t nvs_image_get_str(const nvs_image_t *image, const char *namespace_name, const char *key,
                                     char *out, size_t out_size)
{
    if (image == NULL || image->data == NULL || namespace_name == NULL || key == NULL || out == NULL
        || out_size == 0 || image->size == 0 || image->size % NVS_IMAGE_PAGE_SIZE != 0) {
        return NVS_IMAGE_ERR_ARG;
    }
    out[0] = '\0';
    reader_t r = {.image = image};
    mbedtls_aes_xts_init(&r.xts);
    nvs_image_status_t status = NVS_IMAGE_ERR_NOT_FOUND;
    if (image->xts_key != NULL && mbedtls_aes_xts_setkey_dec(&r.xts, image->xts_key, NVS_IMAGE_XTS_KEY_SIZE * 8u) != 0) {
        status = NVS_IMAGE_ERR_CRYPTO;
    } else {
        namespace_search_t ns = {.name = namespace_name, .index = -1};
        if (for_each_entry(&r, find_namespace, &ns) < 0) {
            status = NVS_IMAGE_ERR_CRYPTO;
        } else if (ns.index >= 0) {
            string_search_t search = {(uint8_t)ns.index, key, out, out_size, NVS_IMAGE_ERR_NOT_FOUND};
            status = for_each_entry(&r, find_string, &search) < 0 ? NVS_IMAGE_ERR_CRYPTO : search.status;
        }
    }
    mbedtls_aes_xts_free(&r.xts);
    return status;
}

nvs_image_status_t nvs_image_keys_from_partition(const uint8_t *partition, size_t size,
                                                 uint8_t key[NVS_IMAGE_XTS_KEY_SIZE])
{
    if (partition == NULL || key == NULL) {
        return NVS_IMAGE_ERR_ARG;
    }
    if (size != NVS_IMAGE_KEYS_PARTITION_SIZE
        || crc32_update(0xFFFFFFFFu, partition, NVS_IMAGE_XTS_KEY_SIZE) != read_u32(partition + NVS_IMAGE_XTS_KEY_SIZE)) {
        return NVS_IMAGE_ERR_KEYS;
    }
    memcpy(key, partition, NVS_IMAGE_XTS_KEY_SIZE);
    return NVS_IMAGE_OK;
}

nvs_image_status_t nvs_image_keys_from_hmac(const uint8_t hmac_key[NVS_IMAGE_HMAC_KEY_SIZE],
                                            uint8_t key[NVS_IMAGE_XTS_KEY_SIZE])
{
    /* eight little-endian u32 seeds: 0xAEBE5A5A for the XTS key, 0xCEDEA5A5 for the tweak key */
    static const uint32_t seeds[2] = {0xAEBE5A5Au, 0xCEDEA5A5u};
    const mbedtls_md_info_t *sha256 = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (hmac_key == NULL || key == NULL || sha256 == NULL) {
        return NVS_IMAGE_ERR_ARG;
    }
    for (int half = 0; half < 2; half++) {
        uint8_t seed[32];
        for (int w = 0; w < 8; w++) {
            seed[w * 4] = (uint8_t)seeds[half];
            seed[w * 4 + 1] = (uint8_t)(seeds[half] >> 8);
            seed[w * 4 + 2] = (uint8_t)(seeds[half] >> 16);
            seed[w * 4 + 3] = (uint8_t)(seeds[half] >> 24);
        }
        if (mbedtls_md_hmac(sha256, hmac_key, NVS_IMAGE_HMAC_KEY_SIZE, seed, sizeof seed, key + half * 32) != 0) {
            mbedtls_platform_zeroize(key, NVS_IMAGE_XTS_KEY_SIZE);
            return NVS_IMAGE_ERR_CRYPTO;
        }
    }
    return NVS_IMAGE_OK;
}

const char *nvs_image_strerror(nvs_image_status_t status)
{
    switch (status) {
    case NVS_IMAGE_OK:
        return "ok";
    case NVS_IMAGE_ERR_ARG:
        return "not an NVS image (size is not a whole number of 4096-byte pages)";
    case NVS_IMAGE_ERR_NOT_FOUND:
        return "not found";
    case NVS_IMAGE_ERR_TOO_LONG:
        return "value too long";
    case NVS_IMAGE_ERR_CORRUPT:
        return "corrupt value (data CRC mismatch)";
    case NVS_IMAGE_ERR_KEYS:
        return "not an nvs_keys partition (size or CRC wrong)";
    case NVS_IMAGE_ERR_CRYPTO:
        return "decryption failed";
    }
    return "unknown status";
}
