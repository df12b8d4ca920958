/* libFuzzer harness for the arith decoder (daemon/csrc/arith.c), built with
 * clang -fsanitize=fuzzer,address,undefined by tests/test_codec_arith_fuzz.py.
 *
 * Input: three bytes choosing a small shape (H = 1 + b0 % 8, W = 1 + b1 % 8, C from `channels`
 * by (b2 & 0x7F)) and, by b2's top bit, a keyframe's payload (0) or an inter frame's residuals
 * (1: starting from the models an all-zero 8x8x192 keyframe leaves; with b0's top bit set, also
 * reading reference_values() at reference_shift (b0 >> 3) & 15, protocol 4; with b1's top bit set,
 * coding the positions sent, protocol 5), then the payload. The decoder must return a status
 * without any sanitizer report; when it accepts, the tensor (and the positions) it produced must
 * encode back to a payload that decodes to the same, and encoder and decoder must leave the same
 * models (they walk the same contexts).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"

static const size_t channels[] = {1, 3, 32, 64, 65, 128, 192};

/* The inter frames' reference: value i is ((i * 2654435761) mod 2^32 >> 20) mod 513 - 256, the
 * first H*W*C of them read as the (H, W, C) tensor (tests/test_codec_arith_fuzz.py writes seeds with
 * the same). */
static const int16_t *reference_values(void)
{
    static int16_t values[8 * 8 * 192];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < sizeof values / sizeof values[0]; i++)
            values[i] = (int16_t)((int)(((i * 2654435761u) >> 20) % 513) - 256);
        ready = 1;
    }
    return values;
}

/* The models an all-zero 8x8x192 keyframe leaves: the inter frames' start state. */
static const uint8_t *inter_start(void)
{
    static uint8_t *state;
    if (!state) {
        static const int8_t zeros[8 * 8 * 192];
        static uint8_t payload[4096];
        size_t written = 0;
        state = malloc(arith_state_size());
        const arith_frame keyframe = {NULL, state, 0, NULL, 0};
        if (!state || arith_encode_frame(zeros, 192, 1, 8, 8, 192, &keyframe, payload, sizeof payload, &written) != ARITH_OK)
            abort();
    }
    return state;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const size_t height = 1 + data[0] % 8, width = 1 + data[1] % 8;
    const size_t c = channels[(data[2] & 0x7F) % (sizeof channels / sizeof channels[0])];
    const int inter = data[2] >> 7;
    const int16_t *reference = inter && (data[0] & 0x80) ? reference_values() : NULL;
    const unsigned shift = (data[0] >> 3) & 15;
    const int positions = inter && (data[1] & 0x80);
    const size_t count = height * width * c, state_size = arith_state_size();
    int8_t *planes = malloc(count);
    uint8_t *decoded_end = malloc(state_size), *sent = malloc(height * width), *sent_again = malloc(height * width);
    if (!planes || !decoded_end || !sent || !sent_again)
        abort();
    const arith_frame decoding = {inter ? inter_start() : NULL, decoded_end, inter, reference, shift,
                                  positions ? sent : NULL};
    if (arith_decode_frame(data + 3, size - 3, height, width, c, &decoding, planes) == ARITH_OK) {
        /* Re-encode from the planes, read in place: position stride 1, channel stride H*W. */
        size_t capacity = 2 * count + 64, written = 0;
        uint8_t *payload = malloc(capacity), *encoded_end = malloc(state_size);
        int8_t *again = malloc(count);
        if (!payload || !again || !encoded_end)
            abort();
        const arith_frame encoding = {decoding.start, encoded_end, inter, reference, shift, decoding.sent},
                          redecoding = {decoding.start, NULL, inter, reference, shift, positions ? sent_again : NULL};
        if (arith_encode_frame(planes, 1, (ptrdiff_t)(height * width), height, width, c, &encoding, payload, capacity,
                               &written) != ARITH_OK)
            abort();
        if (arith_decode_frame(payload, written, height, width, c, &redecoding, again) != ARITH_OK ||
            memcmp(planes, again, count) != 0 || memcmp(decoded_end, encoded_end, state_size) != 0 ||
            (positions && memcmp(sent, sent_again, height * width) != 0))
            abort();
        free(payload);
        free(again);
        free(encoded_end);
    }
    free(planes);
    free(decoded_end);
    free(sent);
    free(sent_again);
    return 0;
}
