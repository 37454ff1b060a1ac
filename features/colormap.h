/* colormap.h: the colour maps spectrogram images use: grey, and matplotlib's viridis and magma (256-entry
 * tables generated from matplotlib by tests/ref/gen_colormaps.py into colormap_tables.c). */
#ifndef CNK_COLORMAP_H
#define CNK_COLORMAP_H

typedef enum cnk_colormap { CNK_COLORMAP_GREY = 0, CNK_COLORMAP_VIRIDIS = 1, CNK_COLORMAP_MAGMA = 2 } cnk_colormap;

extern const unsigned char cnk_colormap_viridis[256][3];
extern const unsigned char cnk_colormap_magma[256][3];

/* RGB of level 0..255 (grey gives level, level, level). */
void cnk_colormap_rgb(cnk_colormap map, int level, unsigned char rgb[3]);
/* Parses "grey"/"gray"/"viridis"/"magma"; returns -1 for anything else. */
int cnk_colormap_parse(const char *name, cnk_colormap *out);

#endif
