/* Inter-frame payload bytes under two changes to the arith coder that bench/inter_coder.py patches
 * into a copy of arith.c (the variant flags below):
 *
 *   inter_coder_driver DIR RATE KEYFRAME_INTERVAL
 *
 * DIR holds the tensors the temporal encoder handed its codec, frame by frame (bench/latent_files.h
 * names; frame i is a keyframe when i % KEYFRAME_INTERVAL == 0). For every variant it codes them
 * all in order, checks each round trip, and prints the bytes of the inter frames. Exit 0, or 1. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arith.h"
#include "latent_files.h"

/* Set in the patched arith.c: bit 0, a payload's models start where the previous payload's left
 * them (until inter_variant_reset); bit 1, a block's DC is predicted as 0. */
extern int inter_variant;
void inter_variant_reset(void);

static const char *const variants[] = {"today", "models carried", "DC predicted as 0", "both"};

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: inter_coder_driver DIR RATE KEYFRAME_INTERVAL\n");
        return 1;
    }
    const int rate = atoi(argv[2]), interval = atoi(argv[3]);
    static char names[MAX_FRAMES][MAX_NAME];
    const long frames = list_latents(argv[1], rate, names);
    if (frames < 1 || interval < 1) {
        fprintf(stderr, "inter_coder_driver: no latents of rate %d in %s\n", rate, argv[1]);
        return 1;
    }
    for (int variant = 0; variant < 4; variant++) {
        unsigned long long inter_bytes = 0;
        for (long f = 0; f < frames; f++) {
            int h, w, c;
            const char *why = NULL;
            int8_t *planes = read_planes(names[f], &h, &w, &c, &why);
            if (!planes) {
                fprintf(stderr, "inter_coder_driver: %s: %s\n", names[f], why);
                return 1;
            }
            const int keyframe = f % interval == 0;
            if (keyframe)
                inter_variant_reset();
            inter_variant = keyframe ? variant & 1 : variant; /* a keyframe's DC keeps its prediction */
            const size_t n = (size_t)h * w * c, capacity = 2 * n + 64;
            int8_t *decoded = malloc(n);
            uint8_t *payload = malloc(capacity);
            size_t written = 0;
            int status = decoded && payload ? arith_encode(planes, 1, (ptrdiff_t)h * w, h, w, c, payload, capacity, &written)
                                            : ARITH_NO_MEMORY;
            if (status == ARITH_OK)
                status = arith_decode(payload, written, h, w, c, decoded);
            if (status != ARITH_OK || memcmp(decoded, planes, n) != 0) {
                fprintf(stderr, "inter_coder_driver: %s: %s\n", names[f],
                        status != ARITH_OK ? arith_strerror(status) : "does not round-trip");
                return 1;
            }
            if (!keyframe)
                inter_bytes += written;
            free(planes);
            free(decoded);
            free(payload);
        }
        printf("%s\t%llu\n", variants[variant], inter_bytes);
    }
    return 0;
}
