#include "pipeline/report_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t cnk_utf8_sequence(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    size_t len = p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : p[0] >= 0xE0 && p[0] <= 0xEF ? 3 : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (len > 1 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) || (p[0] == 0xF0 && p[1] < 0x90) ||
                    (p[0] == 0xF4 && p[1] > 0x8F)))
        return 0;
    return len;
}

size_t cnk_utf8_length(const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

void cnk_rbuf_pad_left(cnk_strbuf *b, const char *text, size_t width)
{
    size_t len = cnk_utf8_length(text);
    if (len < width) cnk_strbuf_repeat(b, ' ', width - len);
    cnk_strbuf_puts(b, text);
}

void cnk_rbuf_html(cnk_strbuf *b, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t len = cnk_utf8_sequence(p);
        switch (len ? *p : 0) {
        case 0: cnk_strbuf_puts(b, "&#xFFFD;"); break;
        case '&': cnk_strbuf_puts(b, "&amp;"); break;
        case '<': cnk_strbuf_puts(b, "&lt;"); break;
        case '>': cnk_strbuf_puts(b, "&gt;"); break;
        case '"': cnk_strbuf_puts(b, "&quot;"); break;
        case '\'': cnk_strbuf_puts(b, "&#39;"); break;
        default: cnk_strbuf_append(b, (const char *)p, len);
        }
        p += len ? len : 1;
    }
}

void cnk_rbuf_json_string(cnk_strbuf *b, const char *text)
{
    cnk_strbuf_puts(b, "\"");
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t len = cnk_utf8_sequence(p);
        if (len == 0) {
            cnk_strbuf_puts(b, "\\ufffd");
            p++;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            cnk_strbuf_append(b, esc, 2);
        } else if (*p < 0x20) {
            cnk_strbuf_printf(b, "\\u%04x", *p);
        } else {
            cnk_strbuf_append(b, (const char *)p, len);
        }
        p += len;
    }
    cnk_strbuf_puts(b, "\"");
}

void cnk_rbuf_json_number(cnk_strbuf *b, double value)
{
    if (!isfinite(value)) {
        cnk_strbuf_puts(b, "null");
        return;
    }
    /* The shortest of %.15g..%.17g that reads back exactly keeps files tidy and lossless. */
    char text[64];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, value);
        if (strtod(text, NULL) == value) break;
    }
    cnk_strbuf_puts(b, text);
}

void cnk_rbuf_base64(cnk_strbuf *b, const unsigned char *data, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!cnk_strbuf_reserve(b, (n + 2) / 3 * 4)) return;
    char *out = b->data + b->len;
    size_t i = 0, o = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < n ? (unsigned)data[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    b->len += o;
    b->data[b->len] = '\0';
}
