/* The temporal encoder's passes over a frame's blocks (caed.temporal.TemporalEncoder): every
 * block's skip error, then the residuals of the blocks it sends.
 *
 * Pure C99, integer arithmetic only, no Python headers; the CPython binding is temporal_module.c.
 * The inputs are the encoder's own arrays, not network bytes: shapes are checked by the binding.
 */
#ifndef CAED_TEMPORAL_H
#define CAED_TEMPORAL_H

#include <stddef.h>
#include <stdint.h>

/* The most fix point steps below the model's that a frame, or the frame before it, may be on. */
#define TEMPORAL_MAX_STEPS 15

enum temporal_status {
    TEMPORAL_OK = 0,
    TEMPORAL_BAD_STEPS, /* a step count exceeds TEMPORAL_MAX_STEPS */
    TEMPORAL_BAD_ROW    /* a row is not one of the `positions` */
};

/* For `positions` blocks of `channels` values each (row-major, a block's values contiguous):
 *
 * - coarse[p]: the int8 `latents` (at the model's fix point) on the frame's grid, `frame_steps`
 *   fix points coarser: v / 2^frame_steps, rounded half to even. This is caed.fixed_point's rule,
 *   and caed.temporal.requantize's. Only written when frame_steps > 0; at the model's own grid the
 *   frame's values are the latents themselves, and `coarse` may be NULL.
 * - errors[p]: the squared error that skipping block p would leave, on the model's scale. It is
 *   4^g * sum over c of (current - base)^2, where g = max(frame_steps, last_steps) is the coarser of
 *   the two grids, and:
 *   - current is the latent rounded to the last frame's grid (`last_steps`), then on to g;
 *   - base is the int16 `reference` value (at the model's fix point) rounded to g.
 *   It is exact: the sum is kept in int64, so an error below 2^53 converts to a double unchanged.
 * - nonzero[p]: how many of coarse[p]'s values are not 0.
 *
 * TEMPORAL_OK, or TEMPORAL_BAD_STEPS with nothing written. */
int temporal_block_errors(const int8_t *latents, const int16_t *reference, size_t positions, size_t channels,
                          unsigned frame_steps, unsigned last_steps, int8_t *coarse, double *errors,
                          int32_t *nonzero);

/* For the `count` blocks `rows` (each < positions) of int8 `latents` and int16 `reference` (both at
 * the model's fix point, positions x channels), sent on the grid `steps` fix points coarser:
 *
 * - base[i]: the reference's block on that grid, rounded half to even. This is what a residual at
 *   that grid adds to.
 * - residual[i]: the latents' block on that grid, less base. At steps = 0 it is latents - base. Below
 *   the model's grid it is r = latents / 2^steps - base, rounded towards 0 by a dead zone:
 *   sign(r) * floor(|r| + 1/3), so |r| < 2/3 of a step is 0 where plain rounding would add 1/2. This
 *   is H.264 encoders' 1/3 rounding offset, and caed.temporal.DEAD_ZONE_OFFSET. Either way it is
 *   saturated to int8.
 * - left[i] (steps > 0): the squared error sending leaves against the frame's values `target`
 *   (int8 on that grid, positions x channels), on the model's scale: 4^steps * sum over c of
 *   (target - base - residual)^2, exact. With steps = 0, `target` and `left` are not read or
 *   written, and may be NULL.
 *
 * base and residual are count x channels. TEMPORAL_OK, or TEMPORAL_BAD_STEPS / TEMPORAL_BAD_ROW with
 * nothing written. */
int temporal_sent_blocks(const int8_t *latents, const int16_t *reference, const int8_t *target, size_t positions,
                         size_t channels, const int64_t *rows, size_t count, unsigned steps, int16_t *base,
                         int8_t *residual, double *left);

#endif
