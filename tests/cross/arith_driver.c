/* The arith core as a command, for running it on another architecture (under qemu-user):
 *
 *   arith_driver LATENTS H W C PAYLOAD PLANES INTER
 *
 * reads H*W*C int8 latents in NHWC order from LATENTS, writes their keyframe payload to PAYLOAD,
 * decodes that payload and writes the (C, H, W) planes to PLANES; then codes the same latents as
 * an inter frame's residuals starting from the models the keyframe left and reading 3 * latents
 * (int16) as its reference at shift 1 (protocol 4), its positions sent those that hold a non-zero
 * value and every 7th (protocol 5), writes that payload to INTER and checks that it decodes back
 * (values and positions) from the models the keyframe's decoding left. Exit status 0, or 1 with a
 * message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "arith_driver: %s: %s\n", what, detail);
    return 1;
}

/* Writes `size` bytes to `path`; 0, or 1 with a message. */
static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        return fail(path, "cannot write");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 8)
        return fail("usage", "arith_driver LATENTS H W C PAYLOAD PLANES INTER");
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
    uint8_t *encoder_state = malloc(arith_state_size()), *decoder_state = malloc(arith_state_size());
    uint8_t *inter = malloc(capacity);
    if (!encoder_state || !decoder_state || !inter)
        return fail("memory", "out of memory");
    int16_t *reference = malloc(count * sizeof *reference);
    if (!reference)
        return fail("memory", "out of memory");
    for (size_t i = 0; i < count; i++)
        reference[i] = (int16_t)(3 * latents[i]);
    const size_t positions = height * width;
    uint8_t *sent = calloc(positions, 1), *sent_decoded = calloc(positions, 1);
    if (!sent || !sent_decoded)
        return fail("memory", "out of memory");
    for (size_t p = 0; p < positions; p++)
        for (size_t c = 0; c < channels; c++)
            sent[p] |= p % 7 == 0 || latents[p * channels + c] != 0;
    const arith_frame encode_key = {NULL, encoder_state, 0, NULL, 0}, decode_key = {NULL, decoder_state, 0, NULL, 0};
    int status = arith_encode_frame(latents, (ptrdiff_t)channels, 1, height, width, channels, &encode_key, payload,
                                    capacity, &written);
    if (status != ARITH_OK)
        return fail("encode", arith_strerror(status));
    status = arith_decode_frame(payload, written, height, width, channels, &decode_key, planes);
    if (status != ARITH_OK)
        return fail("decode", arith_strerror(status));
    size_t inter_written = 0;
    const arith_frame encode_inter = {encoder_state, NULL, 1, reference, 1, sent},
                      decode_inter = {decoder_state, NULL, 1, reference, 1, sent_decoded};
    status = arith_encode_frame(latents, (ptrdiff_t)channels, 1, height, width, channels, &encode_inter, inter,
                                capacity, &inter_written);
    if (status != ARITH_OK)
        return fail("encode inter", arith_strerror(status));
    int8_t *inter_planes = malloc(count);
    if (!inter_planes)
        return fail("memory", "out of memory");
    status = arith_decode_frame(inter, inter_written, height, width, channels, &decode_inter, inter_planes);
    if (status != ARITH_OK)
        return fail("decode inter", arith_strerror(status));
    if (memcmp(inter_planes, planes, count) != 0 || memcmp(sent, sent_decoded, positions) != 0)
        return fail("inter", "does not decode back to the latents and positions");
    if (write_file(argv[7], inter, inter_written))
        return 1;
    free(encoder_state);
    free(decoder_state);
    free(inter);
    free(inter_planes);
    free(reference);
    free(sent);
    free(sent_decoded);
    if (write_file(argv[5], payload, written) || write_file(argv[6], planes, count))
        return 1;
    free(latents);
    free(planes);
    free(payload);
    return 0;
}
