/* What the bench drivers share to read the latents bench/arith_cpu.py writes: int8 NHWC files
 * named q<rate>_<index>_<H>x<W>x<C>.bin, handed to the coder as (C, H, W) planes, the layout
 * ONNX gives. */
#ifndef CAED_BENCH_LATENT_FILES_H
#define CAED_BENCH_LATENT_FILES_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 256
#define MAX_NAME 512

/* The paths of DIR's latents of `rate`, sorted, into names; their number, or -1 if DIR cannot be opened. */
static long list_latents(const char *dir, int rate, char names[][MAX_NAME])
{
    char prefix[16];
    snprintf(prefix, sizeof prefix, "q%d_", rate);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long frames = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && frames < MAX_FRAMES &&
            strlen(dir) + strlen(e->d_name) + 2 <= MAX_NAME)
            snprintf(names[frames++], MAX_NAME, "%s/%s", dir, e->d_name);
    closedir(d);
    qsort(names, (size_t)frames, MAX_NAME, (int (*)(const void *, const void *))strcmp);
    return frames;
}

/* The file's latents as (C, H, W) planes (malloc'ed; its shape from its name), or NULL with *why set. */
static int8_t *read_planes(const char *name, int *h, int *w, int *c, const char **why)
{
    const char *shape = strrchr(name, '_');
    if (!shape || sscanf(shape + 1, "%dx%dx%d", h, w, c) != 3 || *h < 1 || *w < 1 || *c < 1) {
        *why = "no HxWxC in the name";
        return NULL;
    }
    const size_t positions = (size_t)*h * (size_t)*w, n = positions * (size_t)*c;
    int8_t *nhwc = malloc(n), *planes = malloc(n);
    FILE *file = fopen(name, "rb");
    const int read = nhwc && planes && file && fread(nhwc, 1, n, file) == n;
    if (file)
        fclose(file);
    if (read)
        for (size_t p = 0; p < positions; p++)
            for (size_t ch = 0; ch < (size_t)*c; ch++)
                planes[ch * positions + p] = nhwc[p * (size_t)*c + ch];
    free(nhwc);
    if (!read) {
        free(planes);
        *why = "cannot read H*W*C bytes";
        return NULL;
    }
    return planes;
}

#endif
