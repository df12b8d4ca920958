/* libFuzzer harness for the arith decoder (daemon/csrc/arith.c), built with
 * clang -fsanitize=fuzzer,address,undefined by tests/test_codec_arith_fuzz.py.
 *
 * Input: three bytes choosing a small shape (H = 1 + b0 % 8, W = 1 + b1 % 8, C from `channels`
 * by b2), then the payload. The decoder must return a status without any sanitizer report; when
 * it accepts, the tensor it produced must encode back to a payload that decodes to the same
 * tensor (encoder and decoder walk the same contexts).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"

static const size_t channels[] = {1, 3, 32, 64, 65, 128, 192};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const size_t height = 1 + data[0] % 8, width = 1 + data[1] % 8;
    const size_t c = channels[data[2] % (sizeof channels / sizeof channels[0])];
    const size_t count = height * width * c;
    int8_t *planes = malloc(count);
    if (!planes)
        abort();
    if (arith_decode(data + 3, size - 3, height, width, c, planes) == ARITH_OK) {
        /* Re-encode from the planes, read in place: position stride 1, channel stride H*W. */
        size_t capacity = 2 * count + 64, written = 0;
        uint8_t *payload = malloc(capacity);
        int8_t *again = malloc(count);
        if (!payload || !again)
            abort();
        if (arith_encode(planes, 1, (ptrdiff_t)(height * width), height, width, c, payload, capacity, &written) != ARITH_OK)
            abort();
        if (arith_decode(payload, written, height, width, c, again) != ARITH_OK || memcmp(planes, again, count) != 0)
            abort();
        free(payload);
        free(again);
    }
    free(planes);
    return 0;
}
