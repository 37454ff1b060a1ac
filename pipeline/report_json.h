/* report_json.h: metrics.json, in the schema of ../shared/CLI.md (classes, per_class, accuracy, macro_avg,
 * weighted_avg, confusion_matrix) plus probability metrics and a comparison of several models. */
#ifndef CNK_REPORT_JSON_H
#define CNK_REPORT_JSON_H

#include "core/context.h"
#include "pipeline/metrics.h"
#include "pipeline/report.h"

/* metrics[m] are the computed metrics of input->models[m]. *json is malloc'd. */
int cnk_report_build_json(cnk_ctx *ctx, const cnk_report_input *input, const cnk_metrics *metrics, char **json);

#endif
