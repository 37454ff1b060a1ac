/* classify_audio.c: classify an audio file with a trained cnnkit model, using only the installed API.
 *   cc classify_audio.c $(pkg-config --cflags --libs cnnkit) -o classify_audio
 *   ./classify_audio MODEL.cnk CLIP.wav
 * Prints the predicted class, then every class with its probability, most probable first. */
#include <stdio.h>
#include <stdlib.h>

#include <cnnkit/cnnkit.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.cnk AUDIO_FILE\n", argv[0]);
        return 2;
    }
    cnk_ctx *ctx = cnk_context_create();
    if (!ctx) return 3;
    cnk_predictor *model = NULL;
    double *proba = NULL;
    int rc = cnk_predictor_load(ctx, argv[1], &model);
    if (rc == CNK_OK) {
        int n = cnk_predictor_n_classes(model);
        proba = malloc((size_t)n * sizeof *proba);
        rc = proba ? cnk_predictor_classify_file(ctx, model, argv[2], proba) : CNK_ERR_NOMEM;
        if (rc == CNK_OK) {
            int best = cnk_top_class(proba, n);
            printf("%s: %s (%.6f)\n", argv[2], cnk_predictor_class_name(model, best), proba[best]);
            /* Every class, most probable first (a selection sort on a copy is plenty for a few classes). */
            for (int shown = 0; shown < n; shown++) {
                int k = cnk_top_class(proba, n);
                printf("  %-20s %.6f\n", cnk_predictor_class_name(model, k), proba[k]);
                proba[k] = -1;
            }
        }
    }
    if (rc != CNK_OK) fprintf(stderr, "classify_audio: %s\n", cnk_context_error(ctx));
    free(proba);
    cnk_predictor_free(model);
    cnk_context_free(ctx);
    return rc == CNK_OK ? 0 : 3;
}
