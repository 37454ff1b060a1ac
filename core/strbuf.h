/* strbuf.h: a growable NUL-terminated text buffer for building files and messages (cfg text, summaries,
 * reports). Out-of-memory is sticky: append freely, then check cnk_strbuf_failed once at the end. */
#ifndef CNK_STRBUF_H
#define CNK_STRBUF_H

#include <stddef.h>

typedef struct cnk_strbuf {
    char *data; /* NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed; further appends are ignored */
} cnk_strbuf;

void cnk_strbuf_init(cnk_strbuf *b);
void cnk_strbuf_release(cnk_strbuf *b);
/* Hands the text to the caller (malloc'd; "" if nothing was appended; NULL only if failed) and empties b. */
char *cnk_strbuf_take(cnk_strbuf *b);
int cnk_strbuf_failed(const cnk_strbuf *b);

void cnk_strbuf_append(cnk_strbuf *b, const char *data, size_t n);
void cnk_strbuf_puts(cnk_strbuf *b, const char *text);
void cnk_strbuf_printf(cnk_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Makes room for extra more bytes (plus the NUL) so a caller can write into data + len directly; 0 if
 * that failed (the buffer is then marked failed). */
int cnk_strbuf_reserve(cnk_strbuf *b, size_t extra);
/* Appends n copies of c. */
void cnk_strbuf_repeat(cnk_strbuf *b, char c, size_t n);

#endif
