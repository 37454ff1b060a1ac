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

/* Escapes &, <, >, " and ' for HTML text and attribute values; malformed UTF-8 becomes U+FFFD. */
void cnk_rbuf_html(cnk_rbuf *b, const char *text);
/* Appends a JSON string literal (quotes included; control characters as \u00XX; malformed UTF-8 as
 * \ufffd, so the file stays valid JSON whatever bytes a class name holds). */
void cnk_rbuf_json_string(cnk_rbuf *b, const char *text);
/* Appends a JSON number with round-trip precision, or null when not finite. */
void cnk_rbuf_json_number(cnk_rbuf *b, double value);
/* Appends base64 (RFC 4648, with padding) of n bytes. */
void cnk_rbuf_base64(cnk_rbuf *b, const unsigned char *data, size_t n);

/* Length of the well-formed UTF-8 sequence starting at p (1 to 4), or 0 if it is malformed (a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate, beyond U+10FFFF). */
size_t cnk_utf8_sequence(const unsigned char *p);

/* Number of Unicode code points in UTF-8 text (bytes that are not continuation bytes). */
size_t cnk_utf8_length(const char *text);

#endif
