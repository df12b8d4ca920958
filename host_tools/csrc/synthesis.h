/* Sparse synthesis: the decoder's 3x3 convolution from latents to pixel blocks, computed from
 * the non-zero latent values only, written straight into the picture's planes.
 *
 * Plain C99 float code for the host (the board never decodes); no Python headers, so the same
 * file builds the CPython extension (caed_host._synthesis) and any test driver.
 */
#ifndef CAED_SYNTHESIS_H
#define CAED_SYNTHESIS_H

#include <stddef.h>

/* outputs are accumulated this many at a time (synthesis.c), so their count must be a multiple */
#define SYNTHESIS_OUTPUT_MULTIPLE 96

enum synthesis_status {
    SYNTHESIS_OK = 0,
    SYNTHESIS_BAD_SHAPE, /* a dimension is 0, outputs not a multiple of the above, or a size overflows */
    SYNTHESIS_NO_MEMORY
};

/* picture = PixelShuffle(block)(conv3x3(values, weights, bias, padding 1)), for
 *   values  (channels, height, width): the latent planes; zeros cost nothing;
 *   taps    (3, 3, channels, outputs): the convolution's weight W[o][c][ky][kx] at [ky][kx][c][o];
 *   bias    (outputs);
 *   picture (outputs / block^2, height * block, width * block): output o of latent position
 *           (y, x) lands at [o / block^2][y * block + o / block % block][x * block + o % block].
 * outputs must be a multiple of block^2 and of SYNTHESIS_OUTPUT_MULTIPLE. All buffers are the
 * caller's, C-contiguous float32. */
int synthesis_run(const float *values, size_t channels, size_t height, size_t width, const float *taps,
                  const float *bias, size_t outputs, size_t block, float *picture);

#endif
