/* The temporal encoder's block pass as a command, for running it on another architecture (under
 * qemu-user):
 *
 *   temporal_driver LATENTS REFERENCE P C FRAME_STEPS LAST_STEPS COARSE ERRORS NONZERO
 *
 * reads P*C int8 latents and P*C int16 reference values (host byte order) and writes what
 * temporal_block_errors gives: the P*C int8 values on the frame's grid (only written below the
 * model's grid: at FRAME_STEPS 0 the latents), P float64 errors and P int32 non-zero counts. Exit
 * status 0, or 1 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporal.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "temporal_driver: %s: %s\n", what, detail);
    return 1;
}

static int read_exactly(const char *path, void *data, size_t size)
{
    FILE *f = fopen(path, "rb");
    const int ok = f && fread(data, 1, size, f) == size && fgetc(f) == EOF;
    if (f)
        fclose(f);
    return ok ? 0 : fail(path, "cannot read, or not the size given");
}

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        return fail(path, "cannot write");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 10)
        return fail("usage", "temporal_driver LATENTS REFERENCE P C FRAME_STEPS LAST_STEPS COARSE ERRORS NONZERO");
    const size_t positions = strtoul(argv[3], NULL, 10), channels = strtoul(argv[4], NULL, 10);
    const unsigned frame_steps = (unsigned)strtoul(argv[5], NULL, 10), last_steps = (unsigned)strtoul(argv[6], NULL, 10);
    int8_t *latents = malloc(positions * channels), *coarse = malloc(positions * channels);
    int16_t *reference = malloc(positions * channels * sizeof *reference);
    double *errors = malloc(positions * sizeof *errors);
    int32_t *nonzero = malloc(positions * sizeof *nonzero);
    if (!latents || !coarse || !reference || !errors || !nonzero)
        return fail("memory", "out of memory");
    if (read_exactly(argv[1], latents, positions * channels) ||
        read_exactly(argv[2], reference, positions * channels * sizeof *reference))
        return 1;
    memcpy(coarse, latents, positions * channels);
    if (temporal_block_errors(latents, reference, positions, channels, frame_steps, last_steps, coarse, errors,
                              nonzero) != TEMPORAL_OK)
        return fail("steps", "exceed TEMPORAL_MAX_STEPS");
    if (write_file(argv[7], coarse, positions * channels) || write_file(argv[8], errors, positions * sizeof *errors) ||
        write_file(argv[9], nonzero, positions * sizeof *nonzero))
        return 1;
    free(latents);
    free(coarse);
    free(reference);
    free(errors);
    free(nonzero);
    return 0;
}
