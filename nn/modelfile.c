/* modelfile.c: `.cnk` model files (layout in nn/modelfile.h): built in memory, written atomically, and read
 * back with every length, checksum and count checked before anything is trusted. */
#include "nn/modelfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/atomic_file.h"
#include "nn/cfg.h"

#define MAGIC "CNKMODEL"
#define HEADER_BYTES 20
#define SECTION_OVERHEAD 16 /* tag u32 + length u64 + crc u32 */
#define MAX_FILE_BYTES ((size_t)4 << 30)
#define MAX_CLASSES 1000000
#define N_SECTIONS 5

enum { TAG_ARCH = 0x48435241, TAG_CLAS = 0x53414c43, TAG_PREP = 0x50455250, TAG_PARM = 0x4d524150, TAG_BUFF = 0x46465542 };

static const uint32_t section_tags[N_SECTIONS] = {TAG_ARCH, TAG_CLAS, TAG_PREP, TAG_PARM, TAG_BUFF};
static const char *const section_names[N_SECTIONS] = {"architecture", "class names", "preprocessing", "parameters",
                                                      "buffers"};

void cnk_modelfile_init(cnk_modelfile *mf) { memset(mf, 0, sizeof *mf); }

void cnk_modelfile_release(cnk_modelfile *mf)
{
    free(mf->arch_text);
    if (mf->class_names)
        for (int i = 0; i < mf->n_classes; i++) free(mf->class_names[i]);
    free(mf->class_names);
    free(mf->preprocess);
    free(mf->params);
    free(mf->buffers);
    cnk_modelfile_init(mf);
}

static uint32_t crc(const unsigned char *data, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, data, chunk);
        data += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* ---- checks shared by writing and reading -------------------------------------------------------------- */

/* The arch text must parse, and the counts must fit it and the class names its main output. */
static int check_against_arch(cnk_ctx *ctx, const char *path, const cnk_modelfile *mf)
{
    cnk_arch arch;
    int rc = cnk_cfg_parse(ctx, mf->arch_text, path, &arch);
    if (rc) return rc; /* the message already names path and the line */
    if (mf->n_params != arch.n_params || mf->n_buffers != arch.n_buffers)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: %zu parameters and %zu buffer values, but the architecture needs %zu and %zu",
                      path, mf->n_params, mf->n_buffers, arch.n_params, arch.n_buffers);
    cnk_shape out = arch.layers[arch.outputs[0]].out;
    if (!rc && out.h == 1 && out.w == 1 && out.c != mf->n_classes)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: %d class names, but the network's output '%s' has %d", path,
                      mf->n_classes, arch.layers[arch.outputs[0]].name, out.c);
    cnk_arch_release(&arch);
    return rc;
}

static int check_class_names(cnk_ctx *ctx, const char *path, const cnk_modelfile *mf)
{
    if (mf->n_classes < 1 || mf->n_classes > MAX_CLASSES || !mf->class_names)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: a model needs 1..%d class names", path, MAX_CLASSES);
    for (int i = 0; i < mf->n_classes; i++) {
        const char *name = mf->class_names[i];
        if (!name || !*name || strchr(name, '\n') || strchr(name, '\r'))
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: class %d has an empty name or one with a line break", path, i);
    }
    return CNK_OK;
}

/* ---- writing -------------------------------------------------------------------------------------------- */

static unsigned char *put_section(unsigned char *p, uint32_t tag, const void *a, size_t a_len, const void *b,
                                  size_t b_len)
{
    unsigned char *start = p;
    put_u32(p, tag);
    put_u64(p + 4, (uint64_t)(a_len + b_len));
    p += 12;
    if (a_len) memcpy(p, a, a_len);
    p += a_len;
    if (b_len) memcpy(p, b, b_len);
    p += b_len;
    put_u32(p, crc(start, (size_t)(p - start)));
    return p + 4;
}

static char *join_class_names(const cnk_modelfile *mf, size_t *len)
{
    size_t n = 0;
    for (int i = 0; i < mf->n_classes; i++) n += strlen(mf->class_names[i]) + 1;
    char *text = malloc(n + 1);
    if (!text) return NULL;
    size_t pos = 0;
    for (int i = 0; i < mf->n_classes; i++) {
        size_t k = strlen(mf->class_names[i]);
        memcpy(text + pos, mf->class_names[i], k);
        pos += k;
        text[pos++] = '\n';
    }
    text[pos] = '\0';
    *len = pos;
    return text;
}

int cnk_modelfile_write(cnk_ctx *ctx, const char *path, const cnk_modelfile *mf)
{
    if (!mf->arch_text) return cnk_fail(ctx, CNK_ERR_ARG, "%s: no architecture to save", path);
    if ((mf->n_params && !mf->params) || (mf->n_buffers && !mf->buffers))
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: parameter arrays missing", path);
    int rc = check_class_names(ctx, path, mf);
    if (!rc) rc = check_against_arch(ctx, path, mf);
    if (rc) return rc;
    size_t classes_len;
    char *classes = join_class_names(mf, &classes_len);
    if (!classes) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    const char *prep = mf->preprocess ? mf->preprocess : "";
    size_t arch_len = strlen(mf->arch_text), prep_len = strlen(prep);
    size_t params_bytes = mf->n_params * sizeof(float), buffers_bytes = mf->n_buffers * sizeof(float);
    size_t total = HEADER_BYTES + N_SECTIONS * SECTION_OVERHEAD + arch_len + classes_len + prep_len + 8 +
                   params_bytes + 8 + buffers_bytes;
    unsigned char *file = malloc(total);
    if (!file) {
        free(classes);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, total);
    }
    memcpy(file, MAGIC, 8);
    put_u32(file + 8, CNK_MODELFILE_VERSION);
    put_u32(file + 12, N_SECTIONS);
    put_u32(file + 16, crc(file, 16));
    unsigned char count[8], *p = file + HEADER_BYTES;
    p = put_section(p, TAG_ARCH, mf->arch_text, arch_len, NULL, 0);
    p = put_section(p, TAG_CLAS, classes, classes_len, NULL, 0);
    p = put_section(p, TAG_PREP, prep, prep_len, NULL, 0);
    put_u64(count, (uint64_t)mf->n_params);
    p = put_section(p, TAG_PARM, count, 8, mf->params, params_bytes);
    put_u64(count, (uint64_t)mf->n_buffers);
    p = put_section(p, TAG_BUFF, count, 8, mf->buffers, buffers_bytes);
    free(classes);
    rc = (size_t)(p - file) == total ? cnk_write_file_atomic(ctx, path, file, total)
                                     : cnk_fail(ctx, CNK_ERR_INTERNAL, "%s: model file size mismatch", path);
    free(file);
    return rc;
}

/* ---- reading -------------------------------------------------------------------------------------------- */

static int copy_text(cnk_ctx *ctx, const char *name, const char *what, const unsigned char *data, size_t len,
                     char **out)
{
    if (memchr(data, '\0', len))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: the %s section holds a NUL byte", name, what);
    *out = malloc(len + 1);
    if (!*out) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", name);
    memcpy(*out, data, len);
    (*out)[len] = '\0';
    return CNK_OK;
}

static int read_class_names(cnk_ctx *ctx, const char *name, const unsigned char *data, size_t len,
                            cnk_modelfile *mf)
{
    if (len == 0 || data[len - 1] != '\n')
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: the class names section is empty or malformed", name);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    if (lines > MAX_CLASSES) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: more than %d classes", name, MAX_CLASSES);
    mf->class_names = calloc(lines, sizeof *mf->class_names);
    if (!mf->class_names) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", name);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') continue;
        int rc = copy_text(ctx, name, "class names", data + start, i - start, &mf->class_names[mf->n_classes]);
        if (rc) return rc;
        mf->n_classes++;
        start = i + 1;
    }
    return CNK_OK;
}

static int read_floats(cnk_ctx *ctx, const char *name, const char *what, const unsigned char *data, size_t len,
                       float **out, size_t *count)
{
    if (len < 8) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: the %s section is too short", name, what);
    uint64_t n = get_u64(data);
    if (n != (len - 8) / sizeof(float) || (len - 8) % sizeof(float))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: the %s section says %llu values but holds %zu bytes", name, what,
                        (unsigned long long)n, len - 8);
    *count = (size_t)n;
    *out = malloc(n ? (size_t)n * sizeof(float) : 1);
    if (!*out) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %llu %s", name, (unsigned long long)n, what);
    if (n) memcpy(*out, data + 8, (size_t)n * sizeof(float));
    return CNK_OK;
}

static int read_section(cnk_ctx *ctx, const char *name, int index, const unsigned char *payload, size_t len,
                        cnk_modelfile *mf)
{
    switch (index) {
    case 0: return copy_text(ctx, name, section_names[0], payload, len, &mf->arch_text);
    case 1: return read_class_names(ctx, name, payload, len, mf);
    case 2: return copy_text(ctx, name, section_names[2], payload, len, &mf->preprocess);
    case 3: return read_floats(ctx, name, section_names[3], payload, len, &mf->params, &mf->n_params);
    default: return read_floats(ctx, name, section_names[4], payload, len, &mf->buffers, &mf->n_buffers);
    }
}

static int read_header(cnk_ctx *ctx, const char *name, const unsigned char *data, size_t size)
{
    if (size < 8 || memcmp(data, MAGIC, 8) != 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a cnnkit model file (.cnk)", name);
    if (size < HEADER_BYTES) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated model file header", name);
    if (crc(data, 16) != get_u32(data + 16))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: corrupted model file (header checksum mismatch)", name);
    uint32_t version = get_u32(data + 8);
    if (version > CNK_MODELFILE_VERSION)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED,
                        "%s: made by a newer cnnkit (model format version %u, this build reads up to %d)", name,
                        version, CNK_MODELFILE_VERSION);
    if (version == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: invalid model format version 0", name);
    if (get_u32(data + 12) != N_SECTIONS)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: expected %d sections, the header says %u", name, N_SECTIONS,
                        get_u32(data + 12));
    return CNK_OK;
}

static int read_all(cnk_ctx *ctx, const char *name, const unsigned char *data, size_t size, cnk_modelfile *mf)
{
    int rc = read_header(ctx, name, data, size);
    if (rc) return rc;
    size_t pos = HEADER_BYTES;
    for (int s = 0; s < N_SECTIONS; s++) {
        if (size - pos < SECTION_OVERHEAD)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated (the %s section is missing)", name, section_names[s]);
        uint32_t tag = get_u32(data + pos);
        uint64_t len = get_u64(data + pos + 4);
        if (len > size - pos - SECTION_OVERHEAD)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated or corrupted (the %s section runs past the end)", name,
                            section_names[s]);
        size_t end = pos + 12 + (size_t)len;
        if (crc(data + pos, end - pos) != get_u32(data + end))
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: corrupted model file (the %s section's checksum does not match)",
                            name, section_names[s]);
        if (tag != section_tags[s])
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: unexpected section where the %s should be", name,
                            section_names[s]);
        rc = read_section(ctx, name, s, data + pos + 12, (size_t)len, mf);
        if (rc) return rc;
        pos = end + 4;
    }
    if (pos != size) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %zu unexpected bytes after the last section", name, size - pos);
    rc = check_class_names(ctx, name, mf);
    if (!rc) rc = check_against_arch(ctx, name, mf);
    return rc;
}

int cnk_modelfile_read_mem(cnk_ctx *ctx, const char *name, const unsigned char *data, size_t size,
                           cnk_modelfile *mf)
{
    cnk_modelfile_init(mf);
    int rc = read_all(ctx, name, data, size, mf);
    if (rc) cnk_modelfile_release(mf);
    return rc;
}

int cnk_modelfile_read(cnk_ctx *ctx, const char *path, cnk_modelfile *mf)
{
    cnk_modelfile_init(mf);
    unsigned char *data;
    size_t size;
    int rc = cnk_read_file(ctx, path, MAX_FILE_BYTES, &data, &size);
    if (rc) return rc;
    rc = cnk_modelfile_read_mem(ctx, path, data, size, mf);
    free(data);
    return rc;
}

int cnk_modelfile_arch(cnk_ctx *ctx, const cnk_modelfile *mf, cnk_arch *arch)
{
    if (!mf->arch_text) {
        cnk_arch_init(arch);
        return cnk_fail(ctx, CNK_ERR_ARG, "model has no architecture");
    }
    return cnk_cfg_parse(ctx, mf->arch_text, "model architecture", arch);
}

int cnk_kv_get(cnk_ctx *ctx, const char *text, const char *key, char *out, size_t out_size)
{
    size_t key_len = strlen(key);
    const char *line = text ? text : "";
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len > key_len && strncmp(line, key, key_len) == 0 && line[key_len] == '=') {
            size_t value_len = len - key_len - 1;
            if (value_len >= out_size)
                return cnk_fail(ctx, CNK_ERR_INPUT, "preprocessing value of '%s' is too long", key);
            memcpy(out, line + key_len + 1, value_len);
            out[value_len] = '\0';
            return CNK_OK;
        }
        line = nl ? nl + 1 : line + len;
    }
    return cnk_fail(ctx, CNK_ERR_INPUT, "preprocessing parameter '%s' is missing", key);
}
