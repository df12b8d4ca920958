/* Sparse synthesis (see synthesis.h).
 *
 * dct8's latents are ~95 % zeros (int8 values at the rate's step), so instead of the dense 3x3
 * convolution (2.04 GMAC at 512x768) each output block gathers, from its 3x3 neighbourhood, only
 * the non-zero values: out[:] += v * taps[ky][kx][c][:], a contiguous `outputs`-wide axpy per
 * (non-zero, tap). First the non-zeros are listed per latent position (in channel order, so every
 * output sums its terms in one fixed order on a given machine); then each output block
 * accumulates CHUNK outputs at a time in a local array the compiler keeps in vector registers,
 * reading each weight row once per chunk, and copies its `block`-wide rows into the picture.
 */
#include "synthesis.h"

#include <stdint.h>
#include <stdlib.h>

/* Outputs accumulated at once: 6 AVX-512 / 12 AVX2 registers, so that a weight row's chunk is one
 * load and one FMA per vector with no accumulator traffic through memory. On dct8's Kodak latents
 * (one thread) 96 took 14.5 / 8.3 / 2.8 ms at q0 / q1 / q4, 64 took 17.6 / 9.9 / 3.3 ms (the
 * weight rows read in more pieces), 192 (12 AVX-512 registers, which AVX2 would spill) 14.0 /
 * 8.4 / 3.0 ms. */
#define CHUNK SYNTHESIS_OUTPUT_MULTIPLE

/* The non-zero values of one latent position's 3x3 neighbourhood, with the tap each one uses. */
struct neighbourhood {
    size_t count;
    const float *tap[9];        /* the tap's (channels, outputs) weights */
    const uint32_t *channel[9]; /* the neighbour's non-zeros: channels and values, entries[n] each */
    const float *value[9];
    size_t entries[9];
};

/* GCC's -O3 unroll-and-jam pairs non-zeros in synthesize_block and turns its AVX-512 loop into
 * scalar FMAs (objdump: vfmadd231ss), so it is off there; clang has no such pass (nor attribute). */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_UNROLL_AND_JAM __attribute__((optimize("no-loop-unroll-and-jam")))
#else
#define NO_UNROLL_AND_JAM
#endif

/* out[0..outputs) = bias + sum over the neighbourhood's non-zeros of v * tap[c][0..outputs).
 * On x86-64 one clone per vector width, picked at load time: AVX-512 (x86-64-v4), AVX2 with FMA
 * (x86-64-v3: a plain "avx2" clone has no FMA and gets separate multiplies and adds), SSE2. The
 * FMAs come from contracting `sum += v * row`, which GCC does in its default GNU C mode (setuptools
 * passes no -std; ISO mode would keep separate multiplies and adds). */
#if defined(__x86_64__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
NO_UNROLL_AND_JAM static void synthesize_block(const struct neighbourhood *nb, const float *restrict bias,
                                                size_t outputs, float *restrict out)
{
    for (size_t o0 = 0; o0 < outputs; o0 += CHUNK) {
        float sum[CHUNK];
        for (size_t k = 0; k < CHUNK; k++)
            sum[k] = bias[o0 + k];
        for (size_t n = 0; n < nb->count; n++) {
            const float *restrict tap = nb->tap[n] + o0;
            const uint32_t *restrict channel = nb->channel[n];
            const float *restrict value = nb->value[n];
            for (size_t e = 0; e < nb->entries[n]; e++) {
                const float v = value[e];
                const float *restrict row = tap + (size_t)channel[e] * outputs;
                for (size_t k = 0; k < CHUNK; k++)
                    sum[k] += v * row[k];
            }
        }
        for (size_t k = 0; k < CHUNK; k++)
            out[o0 + k] = sum[k];
    }
}

/* Position p's non-zeros, in channel order, go to entries [start[p], start[p + 1]). Two calls:
 * with no lists it counts each position's non-zeros into start[p + 1] (start zeroed) and turns
 * the counts into offsets, returning the total; with the lists it fills them (moving start[p] up
 * to start[p + 1] as it goes, then back). The planes are read in order, the first time without
 * branches (vectorized), the second skipping groups of 16 zeros (95 % of dct8's values). */
static size_t list_nonzeros(const float *values, size_t channels, size_t positions, size_t *start,
                            uint32_t *channel, float *value)
{
    enum { GROUP = 16 };
    if (!channel) {
        for (size_t c = 0; c < channels; c++) {
            const float *plane = values + c * positions;
            for (size_t p = 0; p < positions; p++)
                start[p + 1] += plane[p] != 0.0f;
        }
        for (size_t p = 0; p < positions; p++)
            start[p + 1] += start[p];
        return start[positions];
    }
    for (size_t c = 0; c < channels; c++) {
        const float *plane = values + c * positions;
        for (size_t p0 = 0; p0 < positions; p0 += GROUP) {
            const size_t end = positions - p0 < GROUP ? positions : p0 + GROUP;
            int any = 0;
            for (size_t p = p0; p < end; p++)
                any |= plane[p] != 0.0f;
            if (!any)
                continue;
            for (size_t p = p0; p < end; p++) {
                if (plane[p] != 0.0f) {
                    channel[start[p]] = (uint32_t)c;
                    value[start[p]++] = plane[p];
                }
            }
        }
    }
    for (size_t p = positions; p > 0; p--) /* start[p] now holds where p + 1's entries begin */
        start[p] = start[p - 1];
    start[0] = 0;
    return start[positions];
}

int synthesis_run(const float *values, size_t channels, size_t height, size_t width, const float *taps,
                  const float *bias, size_t outputs, size_t block, float *picture)
{
    if (!channels || !height || !width || !outputs || !block || block > SIZE_MAX / block ||
        outputs % (block * block) || outputs % CHUNK || channels > UINT32_MAX ||
        width > SIZE_MAX / height || channels > SIZE_MAX / (height * width) - 1 ||
        outputs > SIZE_MAX / (height * width) / sizeof(float) || outputs > SIZE_MAX / 9 / channels)
        return SYNTHESIS_BAD_SHAPE;
    const size_t positions = height * width, area = block * block, colours = outputs / area;
    const size_t row_len = width * block, plane_len = positions * area, tap_len = channels * outputs;
    size_t *start = calloc(positions + 1, sizeof *start), total;
    uint32_t *channel = NULL;
    float *value = NULL, *out = malloc(outputs * sizeof *out);
    int status = SYNTHESIS_NO_MEMORY;
    if (!start || !out)
        goto done;
    total = list_nonzeros(values, channels, positions, start, NULL, NULL);
    channel = malloc((total + 1) * sizeof *channel);
    value = malloc((total + 1) * sizeof *value);
    if (!channel || !value)
        goto done;
    list_nonzeros(values, channels, positions, start, channel, value);
    for (size_t y = 0; y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            struct neighbourhood nb;
            nb.count = 0;
            for (size_t ky = 0; ky < 3; ky++) {
                if (y + ky < 1 || y + ky - 1 >= height) /* zero padding */
                    continue;
                for (size_t kx = 0; kx < 3; kx++) {
                    if (x + kx < 1 || x + kx - 1 >= width)
                        continue;
                    const size_t p = (y + ky - 1) * width + (x + kx - 1);
                    nb.tap[nb.count] = taps + (ky * 3 + kx) * tap_len;
                    nb.channel[nb.count] = channel + start[p];
                    nb.value[nb.count] = value + start[p];
                    nb.entries[nb.count] = start[p + 1] - start[p];
                    nb.count++;
                }
            }
            synthesize_block(&nb, bias, outputs, out);
            /* output o = (colour, i, j) of this block: picture[colour][y * block + i][x * block + j] */
            for (size_t colour = 0; colour < colours; colour++)
                for (size_t i = 0; i < block; i++)
                    for (size_t j = 0; j < block; j++)
                        picture[colour * plane_len + (y * block + i) * row_len + x * block + j] =
                            out[colour * area + i * block + j];
        }
    }
    status = SYNTHESIS_OK;
done:
    free(start);
    free(channel);
    free(value);
    free(out);
    return status;
}
