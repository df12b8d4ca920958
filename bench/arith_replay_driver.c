/* The floor of the arith encoder with every context known in advance:
 *
 *   arith_replay_driver DIR RATE REPEATS
 *
 * Built by bench/arith_replay.py with a copy of the C core whose encoder also records each
 * decision it codes (the models it mixes and updates, the bit) and which gains arith_replay():
 * that codes the recorded decisions again from fresh models, a loop that only looks up, mixes,
 * codes and updates, in the encoder's order. This is what is left of encoding when all context
 * work is precomputed (issue 17's plan). DIR holds the latents bench/arith_cpu.py writes
 * (q<rate>_<index>_<H>x<W>x<C>.bin, NHWC), handed over as (C, H, W) planes. For each frame and
 * repeat it times arith_encode and arith_replay (thread CPU time), checks that the replay wrote
 * the encoder's bytes, and prints decisions per frame and both p50 times. Exit status 0, or 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arith.h"
#include "latent_files.h"
#include "timing.h"

size_t arith_recorded(void);
size_t arith_replay(uint8_t *out, size_t capacity);

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "arith_replay_driver: %s: %s\n", what, detail);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fail("usage", "arith_replay_driver DIR RATE REPEATS");
    const char *dir = argv[1];
    const int repeats = atoi(argv[3]);
    static double encode_ms[MAX_FRAMES * 64], replay_ms[MAX_FRAMES * 64];
    static char names[MAX_FRAMES][MAX_NAME];
    if (repeats < 1 || repeats > 64)
        return fail("REPEATS", "must be 1..64");
    const long frames = list_latents(dir, atoi(argv[2]), names);
    if (frames < 0)
        return fail(dir, "cannot open");
    if (!frames)
        return fail(dir, "no latents of that rate");
    size_t timed = 0, decisions = 0;
    for (long f = 0; f < frames; f++) {
        int h, w, c;
        const char *why = NULL;
        int8_t *planes = read_planes(names[f], &h, &w, &c, &why);
        if (!planes)
            return fail(names[f], why);
        const size_t capacity = 2 * (size_t)h * w * c + 64;
        uint8_t *payload = malloc(capacity), *replayed = malloc(capacity);
        if (!payload || !replayed)
            return fail("memory", "out of memory");
        for (int i = 0; i < repeats; i++) {
            size_t written = 0;
            const double start = thread_ms();
            const int status = arith_encode(planes, 1, (ptrdiff_t)h * w, h, w, c, payload, capacity, &written);
            const double encoded = thread_ms();
            if (status != ARITH_OK)
                return fail("encode", arith_strerror(status));
            const size_t size = arith_replay(replayed, capacity);
            const double end = thread_ms();
            /* The replay writes no header: the coded bytes after it must be the encoder's. */
            if (size != written || memcmp(payload + ARITH_HEADER_BYTES, replayed + ARITH_HEADER_BYTES,
                                          written - ARITH_HEADER_BYTES) != 0)
                return fail(names[f], "the replay's bytes differ from the encoder's");
            encode_ms[timed] = encoded - start;
            replay_ms[timed++] = end - encoded;
        }
        decisions += arith_recorded();
        free(planes);
        free(payload);
        free(replayed);
    }
    qsort(encode_ms, timed, sizeof encode_ms[0], by_value);
    qsort(replay_ms, timed, sizeof replay_ms[0], by_value);
    printf("frames %ld decisions_per_frame %zu encode_p50_ms %.3f replay_p50_ms %.3f\n", frames, decisions / (size_t)frames,
           encode_ms[timed / 2], replay_ms[timed / 2]);
    return 0;
}
