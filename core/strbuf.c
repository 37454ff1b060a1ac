#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cnk_strbuf_init(cnk_strbuf *b) { memset(b, 0, sizeof *b); }

void cnk_strbuf_release(cnk_strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int cnk_strbuf_failed(const cnk_strbuf *b) { return b->failed; }

char *cnk_strbuf_take(cnk_strbuf *b)
{
    if (b->failed) {
        cnk_strbuf_release(b);
        return NULL;
    }
    if (!b->data) cnk_strbuf_append(b, "", 0);
    char *text = b->data;
    memset(b, 0, sizeof *b);
    return text;
}

int cnk_strbuf_reserve(cnk_strbuf *b, size_t extra)
{
    if (b->failed) return 0;
    if (extra > ((size_t)1 << 40)) { /* no text cnnkit builds needs a terabyte: a size computation went wrong */
        b->failed = 1;
        return 0;
    }
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) {
        b->failed = 1;
        return 0;
    }
    b->data = data;
    b->cap = cap;
    return 1;
}

void cnk_strbuf_append(cnk_strbuf *b, const char *data, size_t n)
{
    if (!cnk_strbuf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cnk_strbuf_puts(cnk_strbuf *b, const char *text) { cnk_strbuf_append(b, text, strlen(text)); }

void cnk_strbuf_printf(cnk_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (!cnk_strbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cnk_strbuf_repeat(cnk_strbuf *b, char c, size_t n)
{
    if (!cnk_strbuf_reserve(b, n)) return;
    memset(b->data + b->len, c, n);
    b->len += n;
    b->data[b->len] = '\0';
}
