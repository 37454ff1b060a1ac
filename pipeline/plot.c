#include "pipeline/plot.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <plplot/plplot.h>

#include "core/atomic_file.h"
#include "pipeline/report_buf.h"

/* PLplot keeps its streams in process-wide state and reports fatal errors through a handler without a
 * user pointer, so chart drawing is serialised and the handler finds its way back through this jump
 * target. This is the one piece of global state cnnkit keeps, forced on it by the library. */
static pthread_mutex_t plplot_lock = PTHREAD_MUTEX_INITIALIZER;
static jmp_buf *plplot_escape;
static char plplot_message[256];

#if defined(__SANITIZE_ADDRESS__)
/* PLplot's cairo device draws text through pango and fontconfig, whose font cache lives until exit and
 * shows up as leaks; they are not ours. The sanitizer runtime calls this hook. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\nleak:libpango\n"; }
/* ...and without the "Suppressions used" table, so stderr stays the contract's one line per problem. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
#endif

#define DPI 96.0

static void plot_text(const char *name, size_t max_chars, char *out, size_t cap);
#define MAX_LABEL_CHARS 28
#define MAX_CHART_CLASSES 4096 /* the metrics' own limit */ /* longer class names are shortened on charts (the HTML shows them whole) */

/* cmap0 indices. */
enum { COLOR_BG = 0, COLOR_TEXT = 1, COLOR_GRID = 2, COLOR_WHITE = 3, COLOR_MUTED = 4, COLOR_SERIES = 5 };
static const unsigned char series_rgb[][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                              {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                              {188, 189, 34},  {23, 190, 207}};
#define N_SERIES_COLORS (sizeof series_rgb / sizeof series_rgb[0])

/* PLplot calls this instead of returning on a fatal error; we leave through the jump so the library
 * never exits the process. */
static int on_plplot_exit(PLCHAR_VECTOR message)
{
    snprintf(plplot_message, sizeof plplot_message, "%s", message ? message : "PLplot error");
    if (plplot_escape) longjmp(*plplot_escape, 1);
    return 1;
}

/* Non-fatal PLplot complaints would go to stderr; keep the last one for a failure message instead. */
static void on_plplot_abort(PLCHAR_VECTOR message)
{
    snprintf(plplot_message, sizeof plplot_message, "%s", message ? message : "PLplot warning");
}

typedef struct canvas {
    cnk_afile file;
    PLINT previous_stream;
    int width, height;
    PLINT plplot_errcode;
    char plplot_errmsg[8192]; /* PLplot strcat's its messages here instead of printing them (our texts are short) */
} canvas;

static void set_palette(void)
{
    plscol0(COLOR_BG, 255, 255, 255);
    plscol0(COLOR_TEXT, 34, 34, 34);
    plscol0(COLOR_GRID, 221, 221, 221);
    plscol0(COLOR_WHITE, 255, 255, 255);
    plscol0(COLOR_MUTED, 110, 110, 110);
    for (size_t i = 0; i < N_SERIES_COLORS; i++)
        plscol0(COLOR_SERIES + (PLINT)i, series_rgb[i][0], series_rgb[i][1], series_rgb[i][2]);
    /* A white-to-navy ramp (like matplotlib's "Blues") for heatmaps. */
    PLFLT pos[] = {0.0, 0.35, 0.7, 1.0};
    PLFLT red[] = {0.97, 0.62, 0.19, 0.03}, green[] = {0.98, 0.79, 0.51, 0.19}, blue[] = {1.0, 0.88, 0.74, 0.42};
    plscmap1n(256);
    plscmap1l(1, 4, pos, red, green, blue, NULL);
}

/* Opens the temporary output and a fresh PLplot stream drawing into it. Called with the lock held and
 * the escape set. PLplot closes the FILE it is given, so it gets its own duplicate of the descriptor. */
static int canvas_begin(cnk_ctx *ctx, canvas *cv, const char *path, int width, int height)
{
    int rc = cnk_afile_open(ctx, &cv->file, path);
    if (rc) return rc;
    int fd = dup(fileno(cv->file.fp));
    FILE *plot_fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!plot_fp) {
        if (fd >= 0) close(fd);
        cnk_afile_abort(&cv->file);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open a second handle for the plot", path);
    }
    cv->width = width;
    cv->height = height;
    plgstrm(&cv->previous_stream);
    PLINT stream;
    plmkstrm(&stream);
    plsexit(on_plplot_exit);
    plsabort(on_plplot_abort);
    plsError(&cv->plplot_errcode, cv->plplot_errmsg);
    plsdev("pngcairo");
    plsfile(plot_fp);
    plspage(DPI, DPI, width, height, 0, 0);
    set_palette();
    plinit();
    pladv(0);
    plcol0(COLOR_TEXT);
    return CNK_OK;
}

static int canvas_end(cnk_ctx *ctx, canvas *cv)
{
    plend1(); /* writes the PNG and closes PLplot's FILE */
    plsstrm(cv->previous_stream);
    return cnk_afile_commit(ctx, &cv->file);
}

/* Font size in pixels (PLplot's character height unit). Also the unit of plmtex displacements. */
static void font_px(double px) { plschr(px * 25.4 / DPI, 1.0); }

/* Switches to whole-page coordinates in pixels, y measured from the top, for titles and legends. */
static void page_coordinates(const canvas *cv)
{
    plvpor(0, 1, 0, 1);
    plwind(0, cv->width, cv->height, 0);
}

/* A centred title near the top of the page. */
static void page_title(const canvas *cv, const char *title)
{
    char text[512];
    plot_text(title, 90, text, sizeof text);
    page_coordinates(cv);
    plcol0(COLOR_TEXT);
    font_px(17);
    plptex(cv->width / 2.0, 22, 1, 0, 0.5, text);
}

/* A row of coloured swatches with names, centred at y pixels from the top. */
static void page_legend(const canvas *cv, size_t n, const char *const *names, double y)
{
    char label[256];
    page_coordinates(cv);
    font_px(13);
    double slot = fmin(150.0, (cv->width - 40.0) / (double)n), x = (cv->width - slot * (double)n) / 2.0;
    for (size_t m = 0; m < n; m++, x += slot) {
        plcol0(COLOR_SERIES + (PLINT)(m % N_SERIES_COLORS));
        PLFLT xs[4] = {x, x + 14, x + 14, x}, ys[4] = {y - 7, y - 7, y + 7, y + 7};
        plfill(4, xs, ys);
        plcol0(COLOR_TEXT);
        plot_text(names[m], (size_t)(slot / 8), label, sizeof label);
        plptex(x + 20, y, 1, 0, 0, label);
    }
}

/* Text as PLplot draws it literally: '#' is PLplot's escape character, control characters are dropped,
 * malformed UTF-8 becomes '?', and text longer than max_chars is shortened. */
static void plot_text(const char *name, size_t max_chars, char *out, size_t cap)
{
    size_t o = 0, chars = 0;
    const unsigned char *p = (const unsigned char *)name;
    while (*p && o + 8 < cap) {
        if (++chars > max_chars) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        size_t len = cnk_utf8_sequence(p);
        if (len == 0) {
            out[o++] = '?';
            p++;
            continue;
        }
        if (*p == '#') out[o++] = '#';
        if (len > 1 || *p >= 0x20) {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    out[o] = '\0';
}

static void plot_label(const char *name, char *out, size_t cap) { plot_text(name, MAX_LABEL_CHARS, out, cap); }

static size_t label_chars(const char *name)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) n += (*p & 0xC0) != 0x80;
    return n < MAX_LABEL_CHARS ? n : MAX_LABEL_CHARS + 3;
}

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Runs draw(args) between canvas_begin and canvas_end with the PLplot lock and escape in place. */
typedef void (*draw_fn)(const void *args, const canvas *cv);

static int render(cnk_ctx *ctx, const char *path, int width, int height, draw_fn draw, const void *args)
{
    /* The canvas lives on the heap: locals changed between setjmp and longjmp would be indeterminate. */
    canvas *cv = calloc(1, sizeof *cv);
    if (!cv) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    pthread_mutex_lock(&plplot_lock);
    jmp_buf escape;
    volatile int begun = 0;
    if (setjmp(escape) != 0) {
        plplot_escape = NULL;
        if (begun) {
            plsstrm(cv->previous_stream);
            cnk_afile_abort(&cv->file);
        }
        pthread_mutex_unlock(&plplot_lock);
        free(cv);
        return cnk_fail(ctx, CNK_ERR_INTERNAL, "%s: PLplot failed: %s", path, plplot_message);
    }
    plplot_escape = &escape;
    int rc = canvas_begin(ctx, cv, path, width, height);
    if (rc == CNK_OK) {
        begun = 1;
        draw(args, cv);
        rc = canvas_end(ctx, cv);
    }
    plplot_escape = NULL;
    pthread_mutex_unlock(&plplot_lock);
    free(cv);
    return rc;
}

/* ---- confusion matrix ---- */

typedef struct confusion_args {
    const char *title;
    size_t k;
    const char *const *names;
    const size_t *counts;
    const double *row_norm;
    double cell, name_px, count_px;
    int vertical_columns;
    int show_counts, show_names; /* off when cells get too small to hold them (hundreds of classes) */
    int left, right, top, bottom;
} confusion_args;

static void fill_cell(double x0, double y0, double x1, double y1)
{
    PLFLT xs[4] = {x0, x1, x1, x0}, ys[4] = {y0, y0, y1, y1};
    plfill(4, xs, ys);
}

static void draw_confusion(const void *p, const canvas *cv)
{
    const confusion_args *a = p;
    double k = (double)a->k;
    plvpor((double)a->left / cv->width, 1.0 - (double)a->right / cv->width, (double)a->bottom / cv->height,
           1.0 - (double)a->top / cv->height);
    plwind(0, k, 0, k);
    char label[256], count[32];
    if (!a->show_counts) { /* many classes: one background fill, then only the non-empty cells */
        plcol1(0);
        fill_cell(0, 0, k, k);
    }
    font_px(a->count_px);
    for (size_t i = 0; i < a->k; i++)
        for (size_t j = 0; j < a->k; j++) {
            double share = a->row_norm[i * a->k + j];
            double y_top = k - (double)i;
            if (!a->show_counts && a->counts[i * a->k + j] == 0) continue;
            plcol1(clamp(share, 0, 1));
            fill_cell((double)j, y_top - 1, (double)j + 1, y_top);
            if (!a->show_counts) continue;
            plcol0(share > 0.55 ? COLOR_WHITE : a->counts[i * a->k + j] ? COLOR_TEXT : COLOR_MUTED);
            snprintf(count, sizeof count, "%zu", a->counts[i * a->k + j]);
            /* plptex's reference point is the text's vertical middle. */
            plptex((double)j + 0.5, y_top - 0.5, 1, 0, 0.5, count);
        }
    if (a->show_counts) {
        plcol0(COLOR_WHITE);
        plwidth(a->cell > 30 ? 2.0 : 1.0);
        for (size_t j = 1; j < a->k; j++) {
            pljoin((double)j, 0, (double)j, k);
            pljoin(0, (double)j, k, (double)j);
        }
        plwidth(1.0);
    }
    plcol0(COLOR_MUTED);
    plbox("bc", 0, 0, "bc", 0, 0);
    plcol0(COLOR_TEXT);
    font_px(a->name_px);
    for (size_t i = 0; i < a->k && a->show_names; i++) {
        plot_label(a->names[i], label, sizeof label);
        double pos = ((double)i + 0.5) / k;
        plmtex("lv", 0.6, 1.0 - pos, 1.0, label);
        if (a->vertical_columns)
            plmtex("bv", 0.6, pos, 1.0, label);
        else
            plmtex("b", 1.4, pos, 0.5, label);
    }
    page_title(cv, a->title);
    /* Axis titles at fixed pixel positions, clear of the class names whatever their length. */
    double grid = a->cell * k;
    font_px(14);
    plptex(a->left + grid / 2, cv->height - 16.0, 1, 0, 0.5, "predicted class");
    plptex(18.0, a->top + grid / 2, 0, -1, 0.5, "true class");
}

int cnk_plot_confusion(cnk_ctx *ctx, const char *path, const char *title, size_t n_classes,
                       const char *const *class_names, const size_t *counts, const double *row_norm)
{
    if (n_classes == 0 || n_classes > MAX_CHART_CLASSES)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: cannot draw a confusion matrix of %zu classes (at most %d)", path,
                        n_classes, MAX_CHART_CLASSES);
    confusion_args a = {title ? title : "Confusion matrix", n_classes, class_names, counts, row_norm, 0, 0, 0, 0, 1, 1,
                        0, 0, 0, 0};
    /* Up to 100 classes every cell holds its count (>= 20 px); beyond, the grid stays about 2400 px wide. */
    a.cell = n_classes <= 100 ? clamp(640.0 / (double)n_classes, 20, 110) : 2400.0 / (double)n_classes;
    a.show_counts = a.cell >= 16;
    a.show_names = a.cell >= 8;
    a.name_px = clamp(a.cell * 0.55, 10, 15);
    size_t longest = 1, widest_count = 1;
    for (size_t c = 0; c < n_classes; c++)
        if (label_chars(class_names[c]) > longest) longest = label_chars(class_names[c]);
    for (size_t i = 0; i < n_classes * n_classes; i++) {
        char digits[32];
        size_t len = (size_t)snprintf(digits, sizeof digits, "%zu", counts[i]);
        if (len > widest_count) widest_count = len;
    }
    a.count_px = clamp(fmin(a.cell * 0.42, a.cell * 0.85 / (0.62 * (double)widest_count)), 7, 22);
    double label_px = a.show_names ? (double)longest * a.name_px * 0.62 + 8 : 0;
    a.vertical_columns = label_px > a.cell * 0.95;
    a.left = (int)(label_px + 40);
    a.bottom = (int)((a.vertical_columns ? label_px : a.name_px * 1.5) + 48);
    a.top = 50;
    a.right = 24;
    double grid = a.cell * (double)n_classes;
    int width = (int)(a.left + grid + a.right), height = (int)(a.top + grid + a.bottom);
    if (width < 520) { /* leave room for the title; keep the grid centred */
        a.left += (520 - width) / 2;
        a.right += 520 - width - (520 - width) / 2;
        width = 520;
    }
    return render(ctx, path, width, height, draw_confusion, &a);
}

/* ---- per-class bars ---- */

typedef struct bars_args {
    const char *title, *value_name;
    size_t k, n_models;
    const char *const *names;
    const char *const *model_names;
    const double *values;
    double row, bar, name_px;
    int show_names;
    int left, right, top, bottom;
} bars_args;

static void draw_bars(const void *p, const canvas *cv)
{
    const bars_args *a = p;
    double k = (double)a->k;
    plvpor((double)a->left / cv->width, 1.0 - (double)a->right / cv->width, (double)a->bottom / cv->height,
           1.0 - (double)a->top / cv->height);
    plwind(0, 1.0, 0, k);
    plcol0(COLOR_GRID);
    plbox("g", 0.1, 0, "", 0, 0);
    double bar_units = a->bar / a->row, group = bar_units * (double)a->n_models;
    char label[256], value[32];
    for (size_t c = 0; c < a->k; c++) {
        double y_top = k - (double)c - (1.0 - group) / 2;
        for (size_t m = 0; m < a->n_models; m++) {
            double v = a->values[m * a->k + c];
            double y0 = y_top - bar_units * (double)(m + 1), y1 = y0 + bar_units * 0.9;
            if (!isfinite(v)) continue;
            plcol0(COLOR_SERIES + (PLINT)(m % N_SERIES_COLORS));
            if (v > 0) fill_cell(0, y0, clamp(v, 0, 1), y1);
            if (a->bar >= 9) {
                font_px(clamp(a->bar * 0.85, 9, 13));
                plcol0(COLOR_TEXT);
                snprintf(value, sizeof value, "%.2f", v);
                plptex(clamp(v, 0, 1) + 0.01, (y0 + y1) / 2, 1, 0, 0, value);
            }
        }
        if (!a->show_names) continue;
        font_px(a->name_px);
        plcol0(COLOR_TEXT);
        plot_label(a->names[c], label, sizeof label);
        plmtex("lv", 0.6, 1.0 - ((double)c + 0.5) / k, 1.0, label);
    }
    plcol0(COLOR_MUTED);
    font_px(12);
    plbox("bcnst", 0.1, 2, "bc", 0, 0);
    plcol0(COLOR_TEXT);
    font_px(14);
    plmtex("b", 3.0, 0.5, 0.5, a->value_name);
    page_title(cv, a->title);
    if (a->n_models > 1) page_legend(cv, a->n_models, a->model_names, 54);
}

int cnk_plot_class_bars(cnk_ctx *ctx, const char *path, const char *title, const char *value_name, size_t n_classes,
                        const char *const *class_names, size_t n_models, const char *const *model_names,
                        const double *values)
{
    if (n_classes == 0 || n_classes > MAX_CHART_CLASSES || n_models == 0 || n_models > 64)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: cannot draw bars for %zu classes of %zu models", path, n_classes,
                        n_models);
    bars_args a = {title, value_name, n_classes, n_models, class_names, model_names, values, 0, 0, 0, 0, 0, 0, 0, 0};
    a.bar = clamp((n_classes <= 10 ? 36.0 : 22.0) / (double)n_models, 5, 18);
    if (n_classes > 30) a.bar = clamp(a.bar * 0.7, 4, 14);
    a.row = a.bar * (double)n_models + (n_classes > 30 ? 5 : 10);
    if (n_classes > 150) { /* keep the chart about 3000 px tall: thin bars, no names or values */
        a.row = 3000.0 / (double)n_classes;
        a.bar = a.row / (double)n_models;
    }
    a.show_names = a.row >= 9;
    a.name_px = clamp(a.row * 0.6, 10, 14);
    size_t longest = 1;
    for (size_t c = 0; c < n_classes; c++)
        if (label_chars(class_names[c]) > longest) longest = label_chars(class_names[c]);
    a.left = a.show_names ? (int)((double)longest * a.name_px * 0.62 + 24) : 40;
    a.right = 56;
    a.top = n_models > 1 ? 76 : 48;
    a.bottom = 58;
    int width = a.left + 560 + a.right, height = (int)(a.top + a.row * (double)n_classes + a.bottom);
    return render(ctx, path, width, height, draw_bars, &a);
}

/* ---- training curves ---- */

typedef struct curves_args {
    const char *title;
    size_t n;
    const cnk_plot_series *series;
} curves_args;

/* Draws the finite stretches of a series as connected lines (markers when there are few epochs). */
static void draw_series(const double *values, size_t n_epochs, int color, int dashed)
{
    if (!values) return;
    plcol0(color);
    pllsty(dashed ? 2 : 1);
    plwidth(2.0);
    for (size_t e = 0; e + 1 < n_epochs; e++)
        if (isfinite(values[e]) && isfinite(values[e + 1]))
            pljoin((double)e + 1, values[e], (double)e + 2, values[e + 1]);
    pllsty(1);
    plwidth(1.0);
    if (n_epochs <= 40)
        for (size_t e = 0; e < n_epochs; e++)
            if (isfinite(values[e])) {
                PLFLT x = (double)e + 1, y = values[e];
                plssym(0, dashed ? 0.8 : 1.0);
                plpoin(1, &x, &y, dashed ? 4 : 17);
            }
}

static void series_range(const double *v, size_t n, double *lo, double *hi)
{
    if (!v) return;
    for (size_t e = 0; e < n; e++)
        if (isfinite(v[e])) {
            if (v[e] < *lo) *lo = v[e];
            if (v[e] > *hi) *hi = v[e];
        }
}

static void draw_panel(const curves_args *a, const canvas *cv, int accuracy, double x0, double x1)
{
    size_t max_epochs = 1;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t s = 0; s < a->n; s++) {
        const cnk_plot_series *sr = &a->series[s];
        if (sr->n_epochs > max_epochs) max_epochs = sr->n_epochs;
        series_range(accuracy ? sr->train_acc : sr->train_loss, sr->n_epochs, &lo, &hi);
        series_range(accuracy ? sr->val_acc : sr->val_loss, sr->n_epochs, &lo, &hi);
    }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (accuracy) {
        lo = fmin(lo, 1.0) > 0.5 ? floor(lo * 10) / 10 : 0;
        hi = 1.0;
    } else {
        lo = lo > 0 ? 0 : lo;
        hi = hi > lo ? hi * 1.05 : lo + 1;
    }
    plvpor(x0, x1, 110.0 / cv->height, 1.0 - 60.0 / cv->height);
    plwind(0.5, (double)max_epochs + 0.5, lo, hi);
    plcol0(COLOR_GRID);
    plbox("g", 0, 0, "g", 0, 0);
    for (size_t s = 0; s < a->n; s++) {
        const cnk_plot_series *sr = &a->series[s];
        int train_color = COLOR_SERIES + (int)(s % N_SERIES_COLORS);
        int val_color = a->n == 1 ? COLOR_SERIES + 1 : train_color;
        draw_series(accuracy ? sr->train_acc : sr->train_loss, sr->n_epochs, train_color, 0);
        draw_series(accuracy ? sr->val_acc : sr->val_loss, sr->n_epochs, val_color, a->n > 1);
    }
    plcol0(COLOR_MUTED);
    font_px(12);
    plbox("bcnst", 0, 0, "bcnstv", 0, 0);
    plcol0(COLOR_TEXT);
    font_px(13);
    plmtex("b", 3.2, 0.5, 0.5, "epoch");
    font_px(15);
    plmtex("t", 1.0, 0.5, 0.5, accuracy ? "accuracy" : "loss");
}

static void draw_curves_legend(const curves_args *a, const canvas *cv)
{
    plvpor(0.06, 0.98, 8.0 / cv->height, 52.0 / cv->height);
    plwind(0, 1, -1, 1);
    char label[300];
    font_px(12);
    double x = 0;
    for (size_t s = 0; s < a->n; s++)
        for (int val = 0; val < 2; val++) {
            int color = COLOR_SERIES + (int)(a->n == 1 ? (size_t)val : s % N_SERIES_COLORS);
            int dashed = val && a->n > 1;
            plcol0(color);
            pllsty(dashed ? 2 : 1);
            plwidth(2.0);
            pljoin(x, 0, x + 0.04, 0);
            pllsty(1);
            plwidth(1.0);
            plcol0(COLOR_TEXT);
            char name[256];
            plot_label(a->series[s].name ? a->series[s].name : "model", name, sizeof name);
            if (a->n == 1)
                snprintf(label, sizeof label, "%s", val ? "validation" : "train");
            else
                snprintf(label, sizeof label, "%s %s", name, val ? "validation" : "train");
            plptex(x + 0.05, 0, 1, 0, 0, label);
            x += a->n == 1 ? 0.16 : 0.98 / (double)(2 * a->n);
        }
}

static void draw_curves(const void *p, const canvas *cv)
{
    const curves_args *a = p;
    draw_panel(a, cv, 0, 0.07, 0.47);
    draw_panel(a, cv, 1, 0.57, 0.97);
    page_title(cv, a->title);
    draw_curves_legend(a, cv);
}

int cnk_plot_curves(cnk_ctx *ctx, const char *path, const char *title, size_t n_series, const cnk_plot_series *series)
{
    if (n_series == 0 || n_series > 64) return cnk_fail(ctx, CNK_ERR_ARG, "%s: %zu curve sets", path, n_series);
    curves_args a = {title ? title : "Training curves", n_series, series};
    return render(ctx, path, 1100, 500, draw_curves, &a);
}
