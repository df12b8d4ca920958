/* The arith core as a command, for running it on another architecture (under qemu-user):
 *
 *   arith_driver LATENTS H W C PAYLOAD PLANES
 *
 * reads H*W*C int8 latents in NHWC order from LATENTS, writes their payload to PAYLOAD, decodes
 * that payload and writes the (C, H, W) planes to PLANES. Exit status 0, or 1 with a message.
 */
#include <stdio.h>
#include <stdlib.h>

#include "arith.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "arith_driver: %s: %s\n", what, detail);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 7)
        return fail("usage", "arith_driver LATENTS H W C PAYLOAD PLANES");
    const size_t height = strtoul(argv[2], NULL, 10), width = strtoul(argv[3], NULL, 10);
    const size_t channels = strtoul(argv[4], NULL, 10), count = height * width * channels;
    int8_t *latents = malloc(count), *planes = malloc(count);
    size_t capacity = 2 * count + 64, written = 0;
    uint8_t *payload = malloc(capacity);
    if (!latents || !planes || !payload)
        return fail("memory", "out of memory");
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(latents, 1, count, f) != count)
        return fail(argv[1], "cannot read H*W*C bytes");
    fclose(f);
    int status = arith_encode(latents, (ptrdiff_t)channels, 1, height, width, channels, payload, capacity, &written);
    if (status != ARITH_OK)
        return fail("encode", arith_strerror(status));
    status = arith_decode(payload, written, height, width, channels, planes);
    if (status != ARITH_OK)
        return fail("decode", arith_strerror(status));
    f = fopen(argv[5], "wb");
    if (!f || fwrite(payload, 1, written, f) != written || fclose(f) != 0)
        return fail(argv[5], "cannot write");
    f = fopen(argv[6], "wb");
    if (!f || fwrite(planes, 1, count, f) != count || fclose(f) != 0)
        return fail(argv[6], "cannot write");
    free(latents);
    free(planes);
    free(payload);
    return 0;
}
