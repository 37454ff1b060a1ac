#include "pipeline/cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"

#define TRAILER_MAGIC "CNKCACHE"
#define TRAILER_SIZE 16
#define MAX_ENTRY_BYTES ((size_t)1 << 32) /* a cached feature array larger than 4 GiB is not one we wrote */

/* ---- the hash ---- */

typedef struct hasher {
    uint64_t a, b;        /* two lanes with different constants, giving 128 bits */
    uint64_t length;
    unsigned char tail[8];
    size_t n_tail;
} hasher;

static uint64_t mix64(uint64_t x) /* splitmix64's finaliser: every input bit flips about half the output */
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void hasher_init(hasher *h)
{
    memset(h, 0, sizeof *h);
    h->a = 0x6A09E667F3BCC908ULL;
    h->b = 0xBB67AE8584CAA73BULL;
}

static void hasher_word(hasher *h, uint64_t w)
{
    h->a = rotl(h->a ^ mix64(w), 29) * 0x9E3779B97F4A7C15ULL;
    h->b = rotl(h->b + mix64(w ^ 0xD6E8FEB86659FD93ULL), 31) * 0xC2B2AE3D27D4EB4FULL;
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) w = w << 8 | p[i];
    return w;
}

static void hasher_update(hasher *h, const void *data, size_t size)
{
    const unsigned char *p = data;
    h->length += size;
    while (size && h->n_tail) { /* finish a word started by the previous call */
        h->tail[h->n_tail++] = *p++;
        size--;
        if (h->n_tail == 8) {
            hasher_word(h, load_le64(h->tail));
            h->n_tail = 0;
        }
    }
    for (; size >= 8; p += 8, size -= 8) hasher_word(h, load_le64(p));
    memcpy(h->tail, p, size);
    h->n_tail = size;
}

static void hasher_final(hasher *h, cnk_cache_key *key)
{
    unsigned char last[8] = {0};
    memcpy(last, h->tail, h->n_tail);
    hasher_word(h, load_le64(last) ^ ((uint64_t)h->n_tail << 56));
    hasher_word(h, h->length); /* inputs that differ only by trailing zero bytes still differ */
    key->hi = mix64(h->a ^ rotl(h->b, 17));
    key->lo = mix64(h->b + rotl(h->a, 41) * 0xFF51AFD7ED558CCDULL);
}

/* The parameters go first, length-prefixed, so (params, content) pairs cannot run into each other. */
/* Mixed into every key so features cached by an older cnnkit are never reused after the code that computes
 * them changes: bump CACHE_REVISION whenever decoding or a feature stage changes its output (a fix that
 * leaves the version number alone), and entries of other versions simply stop matching. */
#define CACHE_REVISION "features-r1"

static void hasher_start(hasher *h, const char *params)
{
    hasher_init(h);
    static const char revision[] = CNK_VERSION_STRING "/" CACHE_REVISION;
    hasher_update(h, revision, sizeof revision - 1);
    uint64_t n = params ? strlen(params) : 0;
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)(n >> (8 * i));
    hasher_update(h, prefix, 8);
    if (n) hasher_update(h, params, n);
}

void cnk_cache_key_bytes(const void *data, size_t size, const char *params, cnk_cache_key *key)
{
    hasher h;
    hasher_start(&h, params);
    hasher_update(&h, data, size);
    hasher_final(&h, key);
}

int cnk_cache_key_file(cnk_ctx *ctx, const char *path, const char *params, cnk_cache_key *key)
{
    /* Anything but a regular file is refused before opening: a named pipe would block fopen forever. */
    if (!cnk_is_file(path))
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open (no such file, or not a regular file)", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    hasher h;
    hasher_start(&h, params);
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0) hasher_update(&h, buf, got);
    int failed = ferror(fp);
    fclose(fp);
    if (failed) return cnk_fail(ctx, CNK_ERR_IO, "%s: read failed", path);
    hasher_final(&h, key);
    return CNK_OK;
}

void cnk_cache_key_hex(const cnk_cache_key *key, char *buf)
{
    snprintf(buf, 33, "%016llx%016llx", (unsigned long long)key->hi, (unsigned long long)key->lo);
}

/* ---- the folder ---- */

int cnk_cache_init(cnk_ctx *ctx, cnk_cache *cache, const char *dir)
{
    memset(cache, 0, sizeof *cache);
    int n;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (dir && *dir) n = snprintf(cache->dir, sizeof cache->dir, "%s", dir);
    else if (xdg && *xdg) n = snprintf(cache->dir, sizeof cache->dir, "%s/cnnkit", xdg);
    else if (home && *home) n = snprintf(cache->dir, sizeof cache->dir, "%s/.cache/cnnkit", home);
    else return cnk_fail(ctx, CNK_ERR_ARG, "no cache folder: neither HOME nor XDG_CACHE_HOME is set");
    if (n < 0 || (size_t)n >= sizeof cache->dir) return cnk_fail(ctx, CNK_ERR_ARG, "cache folder path too long");
    return cnk_mkdirs(ctx, cache->dir);
}

int cnk_cache_entry_path(cnk_ctx *ctx, const cnk_cache *cache, const cnk_cache_key *key, char *buf, size_t cap)
{
    char hex[33];
    cnk_cache_key_hex(key, hex);
    int n = snprintf(buf, cap, "%s/%.2s/%s.npy", cache->dir, hex, hex);
    if (n < 0 || (size_t)n >= cap) return cnk_fail(ctx, CNK_ERR_ARG, "%s: cache path too long", cache->dir);
    return CNK_OK;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc_of(const unsigned char *bytes, size_t size)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (size) { /* zlib takes uInt lengths */
        uInt chunk = size > (1u << 30) ? (1u << 30) : (uInt)size;
        crc = crc32(crc, bytes, chunk);
        bytes += chunk;
        size -= chunk;
    }
    return (uint32_t)crc;
}

/* 1 if bytes are a whole entry written for key: trailer present, CRC and key match. */
static int entry_is_sound(const unsigned char *bytes, size_t size, const cnk_cache_key *key)
{
    if (size < TRAILER_SIZE) return 0;
    const unsigned char *trailer = bytes + size - TRAILER_SIZE;
    return memcmp(trailer, TRAILER_MAGIC, 8) == 0 && get_le32(trailer + 8) == crc_of(bytes, size - TRAILER_SIZE) &&
           get_le32(trailer + 12) == (uint32_t)key->lo;
}

int cnk_cache_get(cnk_ctx *ctx, const cnk_cache *cache, const cnk_cache_key *key, cnk_array *out, int *found)
{
    memset(out, 0, sizeof *out);
    *found = 0;
    char path[4200];
    int rc = cnk_cache_entry_path(ctx, cache, key, path, sizeof path);
    if (rc) return rc;
    /* A missing or unreadable entry is a miss: the attempt runs on a scratch context so a miss leaves no
     * error message behind. */
    cnk_ctx scratch = *ctx;
    scratch.warn = NULL;
    unsigned char *bytes;
    size_t size;
    rc = cnk_read_file(&scratch, path, MAX_ENTRY_BYTES, &bytes, &size);
    if (rc == CNK_ERR_NOMEM) return cnk_fail(ctx, rc, "%s", scratch.message);
    if (rc) return CNK_OK;
    int sound = entry_is_sound(bytes, size, key);
    if (sound) rc = cnk_npy_parse(&scratch, path, bytes, size - TRAILER_SIZE, out);
    free(bytes);
    if (rc == CNK_ERR_NOMEM) return cnk_fail(ctx, rc, "%s", scratch.message);
    if (!sound || rc) {
        cnk_array_release(out);
        unlink(path); /* never trusted again; the caller recomputes and puts a good one */
        return CNK_OK;
    }
    *found = 1;
    return CNK_OK;
}

/* Appends the trailer to a freshly written .npy and renames it into place. */
static int seal_and_publish(cnk_ctx *ctx, const char *tmp, const char *path, const cnk_cache_key *key)
{
    unsigned char *bytes;
    size_t size;
    int rc = cnk_read_file(ctx, tmp, MAX_ENTRY_BYTES, &bytes, &size);
    if (rc) return rc;
    unsigned char trailer[TRAILER_SIZE];
    memcpy(trailer, TRAILER_MAGIC, 8);
    put_le32(trailer + 8, crc_of(bytes, size));
    put_le32(trailer + 12, (uint32_t)key->lo);
    free(bytes);
    FILE *fp = fopen(tmp, "ab");
    if (!fp) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot append: %s", tmp, strerror(errno));
    int failed = fwrite(trailer, 1, TRAILER_SIZE, fp) != TRAILER_SIZE || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    failed |= fclose(fp) != 0;
    if (failed) return cnk_fail(ctx, CNK_ERR_IO, "%s: write failed", tmp);
    if (rename(tmp, path) != 0)
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    return CNK_OK;
}

int cnk_cache_put(cnk_ctx *ctx, const cnk_cache *cache, const cnk_cache_key *key, const float *data, int ndim,
                  const size_t *shape)
{
    char path[4200], tmp[4300];
    int rc = cnk_cache_entry_path(ctx, cache, key, path, sizeof path);
    if (rc) return rc;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rc = cnk_mkdirs(ctx, path);
    *slash = '/';
    if (rc) return rc;
    /* A unique temporary name per writer: two processes caching one key never write the same file. */
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    close(fd);
    rc = cnk_npy_write(ctx, tmp, data, ndim, shape);
    if (!rc) rc = seal_and_publish(ctx, tmp, path, key);
    if (rc) unlink(tmp);
    return rc;
}
