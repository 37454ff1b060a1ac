/* report_html.h: report.html, one self-contained page (inline CSS, charts as base64 data URIs, no
 * external fetches) with the summary, per-class table, charts, mistakes, run parameters and comparison. */
#ifndef CNK_REPORT_HTML_H
#define CNK_REPORT_HTML_H

#include <stddef.h>

#include "core/context.h"
#include "pipeline/metrics.h"
#include "pipeline/report.h"

/* A PNG chart to embed. */
typedef struct cnk_report_image {
    const char *caption;
    const unsigned char *png;
    size_t size;
} cnk_report_image;

/* metrics[m] are the computed metrics of input->models[m]. *html is malloc'd. */
int cnk_report_build_html(cnk_ctx *ctx, const cnk_report_input *input, const cnk_metrics *metrics,
                          const cnk_report_image *images, size_t n_images, char **html);

#endif
