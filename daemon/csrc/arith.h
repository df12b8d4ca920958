/* The `arith` payload codec: context-adaptive binary arithmetic coding of int8 latents.
 *
 * Pure C99, integer arithmetic only, no Python headers: the same file builds the CPython
 * extension (caed._arith), the libFuzzer harness and the aarch64 cross-check driver, and every
 * CPU writes and reads the same bytes. docs/wire.md (`arith`) describes the payload byte by byte.
 */
#ifndef CAED_ARITH_H
#define CAED_ARITH_H

#include <stddef.h>
#include <stdint.h>

/* "A1" (codec and format version), then the channel count as uint16 LE. */
#define ARITH_HEADER_BYTES 4
#define ARITH_MAX_CHANNELS 65535

enum arith_status {
    ARITH_OK = 0,
    ARITH_BAD_SHAPE,      /* a dimension is 0, C > 65535, or H*W*C overflows */
    ARITH_NO_MEMORY,
    ARITH_OUTPUT_FULL,    /* encode: `capacity` too small; *written holds the size needed */
    ARITH_BAD_MAGIC,
    ARITH_BAD_CHANNELS,   /* the payload's channel count is not the caller's */
    ARITH_TRUNCATED,      /* the coded data ends before the tensor does */
    ARITH_TRAILING,       /* bytes left after the last coded symbol */
    ARITH_BAD_COUNT,      /* a block's non-zero count exceeds its coefficients */
    ARITH_BAD_VALUE,      /* a decoded value lies outside int8 */
    ARITH_BAD_STATE,      /* a start state holds a model this coder never leaves */
    ARITH_BAD_SHIFT       /* reference_shift exceeds ARITH_MAX_SHIFT */
};

/* How a payload relates to the stream's others (temporal coding, docs/wire.md "arith §7"). A
 * keyframe starts from fresh models and predicts DCs from their neighbours: NULL options. An inter
 * frame's residuals start where the reference frame's payload left the models (`start`) and
 * predict DCs as 0 (`residual`); since protocol 4 their contexts also read the reference frame's
 * values (`reference`), which both ends hold. A state is arith_state_size() bytes of this build's
 * models, in host byte order: each end keeps its own, they never travel. */
typedef struct {
    const void *start; /* NULL: fresh models; else a state an earlier payload left in `end` */
    void *end;         /* NULL, or arith_state_size() bytes: the models as this payload leaves them */
    int residual;      /* non-zero: the tensor holds an inter frame's residuals */
    /* NULL, or the reference frame's values, (height, width, channels) int16 in that order
     * (NHWC), at a fix point `reference_shift` (0..ARITH_MAX_SHIFT) finer than this frame's:
     * value v reads as sign(v) * (|v| >> reference_shift) on this frame's grid. */
    const int16_t *reference;
    unsigned reference_shift;
    /* NULL, or H * W flags, one per position in raster order (protocol 5): the payload codes each
     * position's flag, then the blocks of the positions sent only; the others are all zero.
     * Encoding reads them (non-zero: sent) and only the sent positions' values, decoding writes
     * them (1 or 0). */
    uint8_t *sent;
} arith_frame;

#define ARITH_MAX_SHIFT 15

size_t arith_state_size(void);

/* Encode the (height, width, channels) int8 tensor whose element (y, x, c) is at
 * latents[(y * width + x) * position_stride + c * channel_stride]: NHWC memory has strides
 * (channels, 1), (C, H, W) planes have (1, height * width). Writes at most `capacity` bytes to
 * `out` and the payload's size to *written; ARITH_OUTPUT_FULL if it did not fit (nothing useful
 * is in `out` then; call again with *written bytes). */
int arith_encode(const int8_t *latents, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                 size_t height, size_t width, size_t channels,
                 uint8_t *out, size_t capacity, size_t *written);

/* Decode `payload` (`size` bytes, untrusted) into `planes`, the caller's (channels, height,
 * width) int8 buffer. Every read is bounded by `size`, every count by the shape; the only
 * allocations are context state: two rows of (width + 2) * channels values and fixed-size model
 * tables, never sized by the payload. Reading past the end yields zeros and is refused at the end
 * of that row (ARITH_TRUNCATED); bytes left after the last symbol are refused (ARITH_TRAILING).
 * On error `planes` holds garbage. */
int arith_decode(const uint8_t *payload, size_t size,
                 size_t height, size_t width, size_t channels, int8_t *planes);

/* The same, with `frame`'s options (NULL: a keyframe's, as above). A start state is checked
 * (ARITH_BAD_STATE); `end` is written only when the call succeeds. */
int arith_encode_frame(const int8_t *latents, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                       size_t height, size_t width, size_t channels, const arith_frame *frame,
                       uint8_t *out, size_t capacity, size_t *written);
int arith_decode_frame(const uint8_t *payload, size_t size, size_t height, size_t width, size_t channels,
                       const arith_frame *frame, int8_t *planes);

/* A short English description of a status, for error messages. */
const char *arith_strerror(int status);

#endif
