#include "features/colormap.h"

#include <string.h>

void cnk_colormap_rgb(cnk_colormap map, int level, unsigned char rgb[3])
{
    if (level < 0) level = 0;
    if (level > 255) level = 255;
    const unsigned char *entry = NULL;
    if (map == CNK_COLORMAP_VIRIDIS) entry = cnk_colormap_viridis[level];
    if (map == CNK_COLORMAP_MAGMA) entry = cnk_colormap_magma[level];
    for (int c = 0; c < 3; c++)
        rgb[c] = entry ? entry[c] : (unsigned char)level;
}

int cnk_colormap_parse(const char *name, cnk_colormap *out)
{
    if (strcmp(name, "grey") == 0 || strcmp(name, "gray") == 0)
        *out = CNK_COLORMAP_GREY;
    else if (strcmp(name, "viridis") == 0)
        *out = CNK_COLORMAP_VIRIDIS;
    else if (strcmp(name, "magma") == 0)
        *out = CNK_COLORMAP_MAGMA;
    else
        return -1;
    return 0;
}
