/* cache.h: features computed once. An on-disk cache of float arrays keyed by a 128-bit hash of the input
 * file's bytes and the feature parameters, so a second run over the same data skips decoding. */
#ifndef CNK_CACHE_H
#define CNK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "core/npy.h"

/* Entries live in <dir>/<2 hex>/<32 hex>.npy: a standard .npy file (numpy loads it) followed by a 16-byte
 * trailer ("CNKCACHE", CRC-32 of the .npy bytes, the key's low 32 bits) that proves it was written whole by
 * cnnkit for this key. A missing trailer, a CRC mismatch or a bad .npy means the entry is corrupt: it is
 * removed and reported as a miss, so the caller recomputes and never trusts it. Writes go to a unique
 * temporary file renamed into place, so concurrent writers of one key are safe (the last rename wins and
 * both wrote the same value). */
typedef struct cnk_cache {
    char dir[4000];
} cnk_cache;

/* A 128-bit key. The hash is cnnkit's own (two 64-bit multiply-xorshift lanes over 8-byte words, the
 * length and a splitmix64 finaliser): not cryptographic, so a deliberately crafted collision is possible,
 * but two different real inputs collide with probability around 2^-128 per pair. */
typedef struct cnk_cache_key {
    uint64_t hi, lo;
} cnk_cache_key;

/* Opens (creating) a cache folder; dir NULL or "" = $XDG_CACHE_HOME/cnnkit, else $HOME/.cache/cnnkit. */
int cnk_cache_init(cnk_ctx *ctx, cnk_cache *cache, const char *dir);

/* Key of (the bytes of the file at path, params): params is the feature parameter text (kind, sr, n_fft,
 * ...), so changing any parameter changes the key. The file is read in chunks. */
int cnk_cache_key_file(cnk_ctx *ctx, const char *path, const char *params, cnk_cache_key *key);
/* Key of (an in-memory buffer, params). */
void cnk_cache_key_bytes(const void *data, size_t size, const char *params, cnk_cache_key *key);
/* "<32 lowercase hex digits>" into buf (>= 33 bytes). */
void cnk_cache_key_hex(const cnk_cache_key *key, char *buf);

/* Looks a key up: *found = 1 and out filled (caller releases) on a hit; *found = 0 on a miss or a corrupt
 * entry (removed). Fails only on errors other than a missing or bad entry (e.g. out of memory). */
int cnk_cache_get(cnk_ctx *ctx, const cnk_cache *cache, const cnk_cache_key *key, cnk_array *out, int *found);
/* Stores an array (ndim 1..8, float32) under key, atomically. */
int cnk_cache_put(cnk_ctx *ctx, const cnk_cache *cache, const cnk_cache_key *key, const float *data, int ndim,
                  const size_t *shape);
/* The entry's file name (whether or not it exists). */
int cnk_cache_entry_path(cnk_ctx *ctx, const cnk_cache *cache, const cnk_cache_key *key, char *buf, size_t cap);

#endif
