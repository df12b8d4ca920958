/* The arith core timed alone, built the way the board builds it (plain -O2, no -march):
 *
 *   arith_cpu_driver DIR RATES TIMED_RATE REPEATS
 *
 * DIR holds int8 NHWC latents named q<rate>_<index>_<H>x<W>x<C>.bin (bench/arith_cpu.py writes
 * them). Each frame is handed to the coder as (C, H, W) planes, the layout ONNX gives. For every
 * rate in RATES (e.g. "01234") it prints the payload bytes summed over the frames and an FNV-1a
 * hash of the payloads (equal hashes: the same bytes); for TIMED_RATE also the p50 over all frames
 * and REPEATS of the encode and decode time, in thread CPU time (the VM is shared: wall time
 * would count other jobs). Every round trip is checked. Exit status 0, or 1 with a message.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arith.h"
#include "latent_files.h"
#include "timing.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "arith_cpu_driver: %s: %s\n", what, detail);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return fail("usage", "arith_cpu_driver DIR RATES TIMED_RATE REPEATS");
    const char *dir = argv[1], *rates = argv[2];
    const int timed_rate = atoi(argv[3]), repeats = atoi(argv[4]);
    static double encode_ms[MAX_FRAMES * 64], decode_ms[MAX_FRAMES * 64];
    if (repeats < 1 || repeats > 64)
        return fail("REPEATS", "must be 1..64");
    for (const char *r = rates; *r; r++) {
        const int rate = *r - '0';
        static char names[MAX_FRAMES][MAX_NAME];
        const long frames = list_latents(dir, rate, names);
        if (frames < 0)
            return fail(dir, "cannot open");
        unsigned long long bytes = 0, hash = 1469598103934665603ull;
        size_t timed = 0;
        for (long f = 0; f < frames; f++) {
            int h, w, c;
            const char *why = NULL;
            int8_t *planes = read_planes(names[f], &h, &w, &c, &why);
            if (!planes)
                return fail(names[f], why);
            const size_t n = (size_t)h * w * c, capacity = 2 * n + 64;
            int8_t *decoded = malloc(n);
            uint8_t *payload = malloc(capacity);
            if (!decoded || !payload)
                return fail("memory", "out of memory");
            size_t written = 0;
            for (int i = 0; i < (rate == timed_rate ? repeats : 1); i++) {
                const double start = thread_ms();
                int status = arith_encode(planes, 1, (ptrdiff_t)h * w, h, w, c, payload, capacity, &written);
                const double encoded = thread_ms();
                if (status != ARITH_OK)
                    return fail("encode", arith_strerror(status));
                status = arith_decode(payload, written, h, w, c, decoded);
                const double end = thread_ms();
                if (status != ARITH_OK)
                    return fail("decode", arith_strerror(status));
                if (memcmp(decoded, planes, n) != 0)
                    return fail(names[f], "does not round-trip");
                if (rate == timed_rate) {
                    encode_ms[timed] = encoded - start;
                    decode_ms[timed++] = end - encoded;
                }
            }
            for (size_t i = 0; i < written; i++)
                hash = (hash ^ payload[i]) * 1099511628211ull;
            bytes += written;
            free(planes);
            free(decoded);
            free(payload);
        }
        printf("q%d frames %ld bytes %llu hash %016llx", rate, frames, bytes, hash);
        if (timed) {
            qsort(encode_ms, timed, sizeof encode_ms[0], by_value);
            qsort(decode_ms, timed, sizeof decode_ms[0], by_value);
            printf(" encode_p50_ms %.3f decode_p50_ms %.3f", encode_ms[timed / 2], decode_ms[timed / 2]);
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
