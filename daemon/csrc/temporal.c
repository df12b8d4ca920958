/* The temporal encoder's passes over the blocks of a frame (see temporal.h).
 *
 * A fixed camera's inter frame compares every block with its reference, then works out the
 * residuals of the blocks it sends. Below the model's rate, NumPy and OpenCV did each of those in
 * four passes over the blocks: round the latents and the reference, take their difference as
 * float32, sum the squares, and so on. Each pass read and wrote a whole tensor. Here a block's values
 * are read once, and the roundings, the differences, the sums and the counts happen in registers.
 *
 * The figures below come from the real daemon on the cctv camera at 512x768, with the libraries held
 * to the A53's 128-bit SIMD width (bench/a53_budget.py, three alternating runs each, docs/dpu.md §5):
 * - the board's config (dct8-q0 at rate 1): compress went from 3.63 to 2.78 ms a frame, 1.31 to
 *   1.06 A53 cores at 30 fps;
 * - at the model's own rate: 2.77 to 2.61 ms.
 *
 * GCC 12 vectorizes at -O2 only loops whose trip count it knows, with no remainder to handle. So
 * the channels go LANES at a time in an inner loop of constant length, and the channels after the
 * last full LANES in a plain loop. The rounding has no branch per value: a step count of 0 rounds
 * as the identity, through the same formula.
 */
#include "temporal.h"

#define LANES 16

/* Every value plus this is >= 0 (|int16| < 2^15) and a multiple of 2^k for k <= 20. A biased value
 * is then shifted as an unsigned number, whose right shift C defines (a negative one's it does
 * not), and the bias is taken off again after the shift. */
#define BIAS (1 << 20)

/* Division by 2^k rounded half to even, as round_half_even() applies it. */
typedef struct {
    unsigned k;
    uint32_t half_less_one; /* 2^(k-1) - 1, 0 when k = 0 */
    uint32_t parity;        /* 1, 0 when k = 0: the quotient's lowest bit breaks a tie */
    int32_t bias;           /* BIAS / 2^k */
} rounding;

static rounding rounding_by(unsigned k)
{
    const rounding r = {k, k ? (1u << (k - 1)) - 1u : 0u, k ? 1u : 0u, BIAS >> k};
    return r;
}

/* v / 2^k rounded half to even. floor((v + 2^(k-1) - 1 + q0) / 2^k), where q0 is the lowest bit of
 * floor(v / 2^k), is v / 2^k rounded to the nearest integer with ties going to the even one. */
static inline int32_t round_half_even(int32_t v, rounding r)
{
    const uint32_t biased = (uint32_t)(v + BIAS);
    return (int32_t)((biased + r.half_less_one + ((biased >> r.k) & r.parity)) >> r.k) - r.bias;
}

#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

/* One block's values c in [start, end): their squared error added to *sum, their non-zero count to
 * *count, and, below the model's rate (`on_coarser_grid`), the frame's values written to q.
 * `on_coarser_grid` and `same_grid` (frame_steps = last_steps) are constants in each of the four
 * instances of block_pass, so each is its own loop with no rounding it does not need. Most frames
 * are on the last frame's grid, and at the model's rate no value needs rounding at all. With every
 * rounding done anyway (a step count of 0 rounds as the identity), the temporal encoder took
 * 2.47 ms a frame at the model's rate (the cctv camera, at this VM's SIMD). With its own loop it
 * takes 2.1 ms. */
ALWAYS_INLINE void block_values(const int8_t *restrict v, const int16_t *restrict r, int8_t *restrict q, size_t start,
                                size_t end, rounding to_frame, rounding to_last, rounding last_to_grid,
                                rounding to_grid, int64_t *sum, int32_t *count, const int on_coarser_grid,
                                const int same_grid)
{
    int64_t s = 0;
    int32_t n = 0;
    for (size_t i = start; i < end; i++) {
        const int32_t on_frame = on_coarser_grid ? round_half_even(v[i], to_frame) : v[i];
        const int32_t current = same_grid ? on_frame : round_half_even(round_half_even(v[i], to_last), last_to_grid);
        const int32_t base = on_coarser_grid || !same_grid ? round_half_even(r[i], to_grid) : r[i];
        const int32_t d = current - base;
        if (on_coarser_grid)
            q[i] = (int8_t)on_frame;
        n += on_frame != 0;
        s += (int64_t)(d * d);
    }
    *sum += s;
    *count += n;
}

ALWAYS_INLINE void block_pass(const int8_t *restrict latents, const int16_t *restrict reference, size_t positions,
                              size_t channels, unsigned frame_steps, unsigned last_steps, int8_t *restrict coarse,
                              double *restrict errors, int32_t *restrict nonzero, const int on_coarser_grid,
                              const int same_grid)
{
    const unsigned grid_steps = frame_steps > last_steps ? frame_steps : last_steps;
    const rounding to_frame = rounding_by(frame_steps), to_last = rounding_by(last_steps),
                   last_to_grid = rounding_by(grid_steps - last_steps), to_grid = rounding_by(grid_steps);
    const double scale = (double)(1u << grid_steps), squared_scale = scale * scale;
    for (size_t p = 0; p < positions; p++) {
        const int8_t *restrict v = latents + p * channels;
        const int16_t *restrict r = reference + p * channels;
        int8_t *restrict q = on_coarser_grid ? coarse + p * channels : NULL;
        int64_t sum = 0; /* |current - base| <= 2^15 + 2^7: each square fits int32, their sum int64 */
        int32_t count = 0;
        size_t c = 0;
        for (; c + LANES <= channels; c += LANES)
            block_values(v, r, q, c, c + LANES, to_frame, to_last, last_to_grid, to_grid, &sum, &count,
                         on_coarser_grid, same_grid);
        block_values(v, r, q, c, channels, to_frame, to_last, last_to_grid, to_grid, &sum, &count, on_coarser_grid,
                     same_grid);
        errors[p] = (double)sum * squared_scale;
        nonzero[p] = count;
    }
}

int temporal_block_errors(const int8_t *restrict latents, const int16_t *restrict reference, size_t positions,
                          size_t channels, unsigned frame_steps, unsigned last_steps, int8_t *restrict coarse,
                          double *restrict errors, int32_t *restrict nonzero)
{
    if (frame_steps > TEMPORAL_MAX_STEPS || last_steps > TEMPORAL_MAX_STEPS)
        return TEMPORAL_BAD_STEPS;
#define PASS(on_coarser_grid, same_grid)                                                                       \
    block_pass(latents, reference, positions, channels, frame_steps, last_steps, coarse, errors, nonzero,          \
               on_coarser_grid, same_grid)
    if (frame_steps == last_steps) {
        if (frame_steps)
            PASS(1, 1);
        else
            PASS(0, 1);
    } else {
        if (frame_steps)
            PASS(1, 0);
        else
            PASS(0, 0);
    }
#undef PASS
    return TEMPORAL_OK;
}

/* The residual of one value below the model's grid, with the dead zone (temporal.h). n = latent -
 * base * 2^k is r * 2^k, and sign(r) * floor(|r| + 1/3) = sign(n) * floor(floor((3|n| + 2^k) / 2^k) / 3).
 * |n| is first capped where the result saturates anyway (130 steps). That makes the division by 3 a
 * multiplication: (x * 171) >> 9 is floor(x / 3) for every x < 512, and x <= 3 * 130 + 1 here. */
static inline int32_t dead_zone_residual(int32_t latent, int32_t base, unsigned k)
{
    const int32_t n = latent - base * (1 << k);
    const int32_t capped = n < -130 * (1 << k) ? -130 * (1 << k) : n > 130 * (1 << k) ? 130 * (1 << k) : n;
    const int32_t magnitude = capped < 0 ? -capped : capped;
    const int32_t x = (3 * magnitude + (1 << k)) >> k;
    const int32_t steps = (x * 171) >> 9;
    const int32_t r = capped < 0 ? -steps : steps;
    return r < -128 ? -128 : r > 127 ? 127 : r;
}

ALWAYS_INLINE void sent_values(const int8_t *restrict v, const int16_t *restrict r, const int8_t *restrict t,
                               int16_t *restrict b, int8_t *restrict e, size_t start, size_t end, rounding to_grid,
                               int64_t *sum, const int on_coarser_grid)
{
    int64_t s = 0;
    for (size_t i = start; i < end; i++) {
        const int32_t base = on_coarser_grid ? round_half_even(r[i], to_grid) : r[i];
        int32_t residual;
        if (on_coarser_grid) {
            residual = dead_zone_residual(v[i], base, to_grid.k);
            const int32_t d = t[i] - base - residual;
            s += (int64_t)(d * d);
        } else {
            const int32_t d = v[i] - base;
            residual = d < -128 ? -128 : d > 127 ? 127 : d;
        }
        b[i] = (int16_t)base;
        e[i] = (int8_t)residual;
    }
    *sum += s;
}

ALWAYS_INLINE void sent_pass(const int8_t *restrict latents, const int16_t *restrict reference,
                             const int8_t *restrict target, size_t channels, const int64_t *restrict rows, size_t count,
                             unsigned steps, int16_t *restrict base, int8_t *restrict residual, double *restrict left,
                             const int on_coarser_grid)
{
    const rounding to_grid = rounding_by(steps);
    const double scale = (double)(1u << steps), squared_scale = scale * scale;
    for (size_t i = 0; i < count; i++) {
        const size_t p = (size_t)rows[i];
        const int8_t *restrict v = latents + p * channels;
        const int16_t *restrict r = reference + p * channels;
        const int8_t *restrict t = on_coarser_grid ? target + p * channels : NULL;
        int16_t *restrict b = base + i * channels;
        int8_t *restrict e = residual + i * channels;
        int64_t sum = 0;
        size_t c = 0;
        for (; c + LANES <= channels; c += LANES)
            sent_values(v, r, t, b, e, c, c + LANES, to_grid, &sum, on_coarser_grid);
        sent_values(v, r, t, b, e, c, channels, to_grid, &sum, on_coarser_grid);
        if (on_coarser_grid)
            left[i] = (double)sum * squared_scale;
    }
}

int temporal_sent_blocks(const int8_t *restrict latents, const int16_t *restrict reference,
                         const int8_t *restrict target, size_t positions, size_t channels, const int64_t *restrict rows,
                         size_t count, unsigned steps, int16_t *restrict base, int8_t *restrict residual,
                         double *restrict left)
{
    if (steps > TEMPORAL_MAX_STEPS)
        return TEMPORAL_BAD_STEPS;
    for (size_t i = 0; i < count; i++)
        if (rows[i] < 0 || (uint64_t)rows[i] >= positions)
            return TEMPORAL_BAD_ROW;
    if (steps)
        sent_pass(latents, reference, target, channels, rows, count, steps, base, residual, left, 1);
    else
        sent_pass(latents, reference, target, channels, rows, count, steps, base, residual, left, 0);
    return TEMPORAL_OK;
}
