/* cnnkit/export.h: the marker on every public function. libcnnkit.so is built with hidden visibility, so only
 * functions declared with CNK_API are exported; with the static library the marker changes nothing. */
#ifndef CNNKIT_EXPORT_H
#define CNNKIT_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define CNK_API __attribute__((visibility("default")))
#else
#define CNK_API
#endif

#endif
