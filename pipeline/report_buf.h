/* report_buf.h: a growable text buffer for building report files (text tables, JSON, HTML), with the
 * escaping each format needs. Out-of-memory is sticky: check cnk_rbuf_failed once at the end. */
#ifndef CNK_REPORT_BUF_H
#define CNK_REPORT_BUF_H

#include <stddef.h>

typedef struct cnk_rbuf {
    char *data; /* NUL-terminated */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed; further appends are ignored */
} cnk_rbuf;

void cnk_rbuf_init(cnk_rbuf *b);
void cnk_rbuf_release(cnk_rbuf *b);
/* Hands the text to the caller (malloc'd, never NULL unless failed) and empties the buffer. */
char *cnk_rbuf_take(cnk_rbuf *b);
int cnk_rbuf_failed(const cnk_rbuf *b);

void cnk_rbuf_append(cnk_rbuf *b, const char *data, size_t n);
void cnk_rbuf_puts(cnk_rbuf *b, const char *text);
void cnk_rbuf_printf(cnk_rbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends n copies of c. */
void cnk_rbuf_repeat(cnk_rbuf *b, char c, size_t n);
/* Appends text right-aligned in width characters (Unicode code points, as Python's format counts). */
void cnk_rbuf_pad_left(cnk_rbuf *b, const char *text, size_t width);

/* Escapes &, <, >, " and ' for HTML text and attribute values. */
void cnk_rbuf_html(cnk_rbuf *b, const char *text);
/* Appends a JSON string literal (quotes included; control characters as \u00XX). */
void cnk_rbuf_json_string(cnk_rbuf *b, const char *text);
/* Appends a JSON number with round-trip precision, or null when not finite. */
void cnk_rbuf_json_number(cnk_rbuf *b, double value);
/* Appends base64 (RFC 4648, with padding) of n bytes. */
void cnk_rbuf_base64(cnk_rbuf *b, const unsigned char *data, size_t n);

/* Number of Unicode code points in UTF-8 text (bytes that are not continuation bytes). */
size_t cnk_utf8_length(const char *text);

#endif
