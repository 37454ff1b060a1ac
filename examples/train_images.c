/* train_images.c: train a small image classifier from a folder with one subfolder per class, then evaluate
 * it and write the report, using only the installed cnnkit API.
 *   cc train_images.c $(pkg-config --cflags --libs cnnkit) -o train_images
 *   ./train_images IMAGES_DIR MODEL.cnk [REPORT_DIR [EPOCHS [THREADS]]]
 * Prints one line per epoch, the held-out test accuracy, and the macro F1 over the whole folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cnnkit/cnnkit.h>

static void print_epoch(void *user, int epoch, int epochs, double train_loss, double train_acc, double val_loss,
                        double val_acc)
{
    (void)user;
    printf("epoch %d/%d: train loss %.4f acc %.3f", epoch, epochs, train_loss, train_acc);
    if (!isnan(val_loss)) printf(", val loss %.4f acc %.3f", val_loss, val_acc);
    printf("\n");
}

static void print_skipped(void *user, const char *message)
{
    (void)user;
    fprintf(stderr, "skipped: %s\n", message);
}

/* Trains on data, writes model_path; the options are `cnnkit train`'s. */
static int train(cnk_ctx *ctx, const char *data, const char *model_path, const char *epochs)
{
    cnk_training *t = cnk_training_create(data, model_path);
    if (!t) return CNK_ERR_NOMEM;
    int rc = cnk_training_set(ctx, t, "input", "image");
    if (rc == CNK_OK) rc = cnk_training_set(ctx, t, "image-size", "32x32");
    if (rc == CNK_OK) rc = cnk_training_set(ctx, t, "epochs", epochs);
    cnk_training_on_epoch(t, print_epoch, NULL);
    if (rc == CNK_OK) rc = cnk_training_run(ctx, t);
    if (rc == CNK_OK)
        printf("trained %d epochs on %zu images; test accuracy %.4f on %zu images\n", cnk_training_epochs_run(t),
               cnk_training_count(t, "train"), cnk_training_test_accuracy(t), cnk_training_count(t, "test"));
    cnk_training_free(t);
    return rc;
}

/* Classifies the whole folder with the new model; prints accuracy and macro F1, writes the report. */
static int evaluate(cnk_ctx *ctx, const char *data, const char *model_path, const char *report_dir)
{
    cnk_predictor *model = NULL;
    cnk_evaluation *ev = NULL;
    double accuracy = 0, macro_f1 = 0;
    int rc = cnk_predictor_load(ctx, model_path, &model);
    if (rc == CNK_OK) rc = cnk_predictor_evaluate(ctx, model, data, NULL, &ev);
    if (rc == CNK_OK) rc = cnk_evaluation_accuracy(ctx, ev, &accuracy);
    if (rc == CNK_OK) rc = cnk_evaluation_scores(ctx, ev, "macro avg", NULL, NULL, &macro_f1, NULL);
    if (rc == CNK_OK)
        printf("whole folder: %zu images, accuracy %.4f, macro F1 %.4f\n", cnk_evaluation_count(ev), accuracy,
               macro_f1);
    if (rc == CNK_OK && report_dir) {
        rc = cnk_evaluation_write_report(ctx, ev, report_dir, "train_images example");
        if (rc == CNK_OK) printf("report: %s/report.html\n", report_dir);
    }
    cnk_evaluation_free(ev);
    cnk_predictor_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: %s IMAGES_DIR MODEL.cnk [REPORT_DIR [EPOCHS [THREADS]]]\n", argv[0]);
        return 2;
    }
    printf("cnnkit %s (headers %s)\n", cnk_version(), CNNKIT_VERSION);
    cnk_ctx *ctx = cnk_context_create();
    if (!ctx) return 3;
    cnk_context_set_seed(ctx, 7);
    int rc = cnk_context_set_threads(ctx, argc > 5 ? atoi(argv[5]) : 0); /* 0 = all cores */
    cnk_context_set_callbacks(ctx, NULL, print_skipped, NULL);
    if (rc == CNK_OK) rc = train(ctx, argv[1], argv[2], argc > 4 ? argv[4] : "20");
    if (rc == CNK_OK) rc = evaluate(ctx, argv[1], argv[2], argc > 3 ? argv[3] : NULL);
    if (rc != CNK_OK) fprintf(stderr, "train_images: %s\n", cnk_context_error(ctx));
    cnk_context_free(ctx);
    return rc == CNK_OK ? 0 : 3;
}
