/* The temporal encoder's block passes as a command, for running them on another architecture
 * (under qemu-user):
 *
 *   temporal_driver errors LATENTS REFERENCE P C FRAME_STEPS LAST_STEPS COARSE ERRORS NONZERO
 *   temporal_driver sent LATENTS REFERENCE TARGET ROWS P C N STEPS BASE RESIDUAL LEFT
 *
 * reads P*C int8 latents, P*C int16 reference values, P*C int8 target values and N int64 rows (host
 * byte order) and writes what temporal_block_errors gives (the P*C int8 values on the frame's grid,
 * the latents themselves at FRAME_STEPS 0, P float64 errors and P int32 non-zero counts) or what
 * temporal_sent_blocks gives (N*C int16 bases, N*C int8 residuals, N float64 errors left; nothing
 * at STEPS 0). Exit status 0, or 1 with a message.
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

/* `size` bytes of `path`, which holds exactly that many, in a fresh buffer; NULL with a message. */
static void *read_exactly(const char *path, size_t size)
{
    FILE *f = fopen(path, "rb");
    void *data = malloc(size ? size : 1);
    const int ok = f && data && fread(data, 1, size, f) == size && fgetc(f) == EOF;
    if (f)
        fclose(f);
    if (!ok) {
        free(data);
        fail(path, "cannot read, or not the size given");
        return NULL;
    }
    return data;
}

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        return fail(path, "cannot write");
    return 0;
}

static size_t number(const char *text)
{
    return (size_t)strtoul(text, NULL, 10);
}

static int errors_pass(char **argv)
{
    const size_t positions = number(argv[2]), channels = number(argv[3]), n = positions * channels;
    int8_t *latents = read_exactly(argv[0], n);
    int16_t *reference = read_exactly(argv[1], n * sizeof *reference);
    int8_t *coarse = malloc(n + 1);
    double *errors = malloc(positions * sizeof *errors + 1);
    int32_t *nonzero = malloc(positions * sizeof *nonzero + 1);
    int status = 1;
    if (!latents || !reference || !coarse || !errors || !nonzero) {
        fail("errors", "no memory or no input");
    } else {
        memcpy(coarse, latents, n);
        if (temporal_block_errors(latents, reference, positions, channels, (unsigned)number(argv[4]),
                                  (unsigned)number(argv[5]), coarse, errors, nonzero) != TEMPORAL_OK)
            fail("errors", "steps exceed TEMPORAL_MAX_STEPS");
        else
            status = write_file(argv[6], coarse, n) || write_file(argv[7], errors, positions * sizeof *errors) ||
                     write_file(argv[8], nonzero, positions * sizeof *nonzero);
    }
    free(latents);
    free(reference);
    free(coarse);
    free(errors);
    free(nonzero);
    return status;
}

static int sent_pass(char **argv)
{
    const size_t positions = number(argv[4]), channels = number(argv[5]), count = number(argv[6]);
    const unsigned steps = (unsigned)number(argv[7]);
    const size_t n = positions * channels, m = count * channels;
    int8_t *latents = read_exactly(argv[0], n), *target = read_exactly(argv[2], n);
    int16_t *reference = read_exactly(argv[1], n * sizeof *reference);
    int64_t *rows = read_exactly(argv[3], count * sizeof *rows);
    int16_t *base = malloc(m * sizeof *base + 1);
    int8_t *residual = malloc(m + 1);
    double *left = malloc(count * sizeof *left + 1);
    int status = 1;
    if (!latents || !target || !reference || !rows || !base || !residual || !left) {
        fail("sent", "no memory or no input");
    } else if (temporal_sent_blocks(latents, reference, target, positions, channels, rows, count, steps, base,
                                    residual, left) != TEMPORAL_OK) {
        fail("sent", "steps exceed TEMPORAL_MAX_STEPS or a row is outside the positions");
    } else {
        status = write_file(argv[8], base, m * sizeof *base) || write_file(argv[9], residual, m) ||
                 write_file(argv[10], left, steps ? count * sizeof *left : 0);
    }
    free(latents);
    free(target);
    free(reference);
    free(rows);
    free(base);
    free(residual);
    free(left);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 11 && strcmp(argv[1], "errors") == 0)
        return errors_pass(argv + 2);
    if (argc == 13 && strcmp(argv[1], "sent") == 0)
        return sent_pass(argv + 2);
    return fail("usage", "temporal_driver errors LATENTS REFERENCE P C FRAME_STEPS LAST_STEPS COARSE ERRORS NONZERO | "
                         "sent LATENTS REFERENCE TARGET ROWS P C N STEPS BASE RESIDUAL LEFT");
}
