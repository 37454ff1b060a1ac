/* report_buf.h: what the report writers add to core/strbuf.h: padding by Unicode width and the escaping
 * each format needs (HTML, JSON, base64). */
#ifndef CNK_REPORT_BUF_H
#define CNK_REPORT_BUF_H

#include <stddef.h>

#include "core/strbuf.h"

/* Appends text right-aligned in width characters (Unicode code points, as Python's format counts). */
void cnk_rbuf_pad_left(cnk_strbuf *b, const char *text, size_t width);

/* Escapes &, <, >, " and ' for HTML text and attribute values; malformed UTF-8 becomes U+FFFD. */
void cnk_rbuf_html(cnk_strbuf *b, const char *text);
/* Appends a JSON string literal (quotes included; control characters as \u00XX; malformed UTF-8 as
 * \ufffd, so the file stays valid JSON whatever bytes a class name holds). */
void cnk_rbuf_json_string(cnk_strbuf *b, const char *text);
/* Appends a JSON number with round-trip precision, or null when not finite. */
void cnk_rbuf_json_number(cnk_strbuf *b, double value);
/* Appends base64 (RFC 4648, with padding) of n bytes. */
void cnk_rbuf_base64(cnk_strbuf *b, const unsigned char *data, size_t n);

/* Length of the well-formed UTF-8 sequence starting at p (1 to 4), or 0 if it is malformed (a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate, beyond U+10FFFF). */
size_t cnk_utf8_sequence(const unsigned char *p);

/* Number of Unicode code points in UTF-8 text (bytes that are not continuation bytes). */
size_t cnk_utf8_length(const char *text);

#endif
