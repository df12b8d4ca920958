/* The `arith` payload codec; see arith.h for the interface and docs/wire-arith.md for the format.
 *
 * Cost follows the non-zeros: per position and 64-channel block the coder codes how many
 * coefficients are non-zero, then walks the block in scan order only until it has met them all,
 * so an empty block costs a fraction of a bit and the ~95 % zeros of a frame are mostly never
 * visited. Every decision is one binary symbol of an LZMA-style range coder whose probabilities
 * adapt to the frame; the contexts come from what both ends already know (neighbouring blocks,
 * the other components, the coefficients already coded).
 *
 * One function, code_tensor, walks the tensor for both directions, so encoder and decoder
 * cannot disagree on the order of symbols or on a context: encoding, it codes the value it is
 * given and returns it; decoding, it ignores that value and returns what it decodes.
 */
#include "arith.h"

#include <stdlib.h>
#include <string.h>

/* ----- adaptive binary models ----- */

/* Probabilities of a 0 are 15-bit: (range >> 15) * p then fits 32 bits for any 32-bit range, and
 * the update below keeps p in [1, 32767], so neither symbol ever gets an empty interval. */
#define PROB_BITS 15
#define PROB_ONE (1u << PROB_BITS)

typedef struct {
    uint16_t p0;   /* P(bit = 0) * 2^15 */
    uint16_t seen; /* symbols coded with this model, saturating at ADAPT_SEEN_MAX */
} bit_model;

/* Adaptation rate: p moves 2^-shift of the way to the symbol coded. The shift grows as
 * round(log2(seen + 2)), so a fresh model follows a count-based estimate (a frame starts from no
 * knowledge and has few symbols per context) and settles at 2^-ADAPT_SHIFT_MAX. */
#define ADAPT_SHIFT_MAX 7
#define ADAPT_SEEN_MAX 89
static const uint8_t adapt_shift[ADAPT_SEEN_MAX + 1] = {
    1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7};

static inline void model_update(bit_model *m, unsigned bit)
{
    unsigned shift = adapt_shift[m->seen];
    if (shift > ADAPT_SHIFT_MAX)
        shift = ADAPT_SHIFT_MAX;
    if (m->seen < ADAPT_SEEN_MAX)
        m->seen++;
    if (bit)
        m->p0 = (uint16_t)(m->p0 - (m->p0 >> shift));
    else
        m->p0 = (uint16_t)(m->p0 + ((PROB_ONE - m->p0) >> shift));
}

/* ----- range coder (LZMA's, with 15-bit probabilities) ----- */

#define RANGE_TOP (1u << 24)

typedef struct {
    uint64_t low;     /* 33 bits: bit 32 is a carry into the bytes not yet written */
    uint32_t range;
    uint8_t cache;    /* the last byte not yet written: a carry may still increment it */
    uint64_t pending; /* cache plus the 0xFF bytes after it, all waiting for a possible carry */
    int first;        /* the very first byte is always 0 and is not written */
    uint8_t *out;
    size_t capacity;
    size_t size;      /* bytes produced, also past capacity (then only counted) */
} range_encoder;

typedef struct {
    uint32_t range;
    uint32_t code;
    const uint8_t *in;
    size_t size;
    size_t pos;       /* bytes consumed; past `size` the coder reads zeros and pos keeps counting */
} range_decoder;

static void encoder_init(range_encoder *e, uint8_t *out, size_t capacity)
{
    e->low = 0;
    e->range = 0xFFFFFFFFu;
    e->cache = 0;
    e->pending = 1;
    e->first = 1;
    e->out = out;
    e->capacity = capacity;
    e->size = 0;
}

static void encoder_put(range_encoder *e, uint8_t byte)
{
    if (e->first) {
        e->first = 0;
        return;
    }
    if (e->size < e->capacity)
        e->out[e->size] = byte;
    e->size++;
}

static void encoder_shift_low(range_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do {
            encoder_put(e, (uint8_t)(byte + carry));
            byte = 0xFF;
        } while (--e->pending != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

static inline void encode_bit(range_encoder *e, bit_model *m, unsigned bit)
{
    uint32_t bound = (e->range >> PROB_BITS) * m->p0;
    if (bit) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    while (e->range < RANGE_TOP) {
        e->range <<= 8;
        encoder_shift_low(e);
    }
    model_update(m, bit);
}

/* Writes out all of `low`: the decoder reads exactly as many bytes as were written. */
static void encoder_flush(range_encoder *e)
{
    for (int i = 0; i < 5; i++)
        encoder_shift_low(e);
}

static inline uint8_t decoder_next(range_decoder *d)
{
    uint8_t byte = d->pos < d->size ? d->in[d->pos] : 0;
    d->pos++;
    return byte;
}

static void decoder_init(range_decoder *d, const uint8_t *in, size_t size)
{
    d->in = in;
    d->size = size;
    d->pos = 0;
    d->range = 0xFFFFFFFFu;
    d->code = 0;
    for (int i = 0; i < 4; i++)
        d->code = (d->code << 8) | decoder_next(d);
}

static inline unsigned decode_bit(range_decoder *d, bit_model *m)
{
    uint32_t bound = (d->range >> PROB_BITS) * m->p0;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        bit = 1;
    }
    while (d->range < RANGE_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | decoder_next(d);
    }
    model_update(m, bit);
    return bit;
}

/* ----- one walk for both directions ----- */

typedef struct {
    int encoding;
    range_encoder enc;
    range_decoder dec;
} coder;

static inline unsigned code_bit(coder *co, bit_model *m, unsigned bit)
{
    if (co->encoding) {
        encode_bit(&co->enc, m, bit);
        return bit;
    }
    return decode_bit(&co->dec, m);
}

/* Unsigned integers 0 .. 2^max_class - 1 as their bit length (the class, 0 for 0) in unary,
 * then the bits below the leading one, each with its own model: small values, the common case,
 * cost a few adaptive decisions, and the decoder's loop is bounded by max_class. */
#define UINT_CLASSES 9
typedef struct {
    bit_model more[UINT_CLASSES - 1];                 /* class > i? */
    bit_model mantissa[UINT_CLASSES][UINT_CLASSES - 2]; /* [class][bit below the leading one] */
} uint_model;

static inline unsigned bit_length(unsigned v)
{
    unsigned n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

static unsigned code_uint(coder *co, uint_model *m, unsigned value, unsigned max_class)
{
    unsigned cls = co->encoding ? bit_length(value) : 0;
    unsigned n = 0;
    while (n < max_class && code_bit(co, &m->more[n], n < cls))
        n++;
    if (n == 0)
        return 0;
    unsigned v = 1;
    for (unsigned i = n - 1; i-- > 0;)
        v = (v << 1) | code_bit(co, &m->mantissa[n][i], (value >> i) & 1);
    return v;
}

/* ----- context model ----- */

#define BLOCK 64
#define CLASSES 3            /* channel blocks: the first (luma), the second, all later ones */
#define NNZ_CROSS 4          /* non-zero count of the previous block at the same position */
#define NNZ_PRED 12          /* non-zero count predicted from the left and upper blocks */
#define REMAINING 11         /* non-zeros not yet coded in the block */
#define FREQUENCY 14         /* scan index */
#define NEIGHBOURS 3         /* |left| + |up| at the same channel: 0, 1, 2+ */
#define MAG_NEIGHBOURS 6
#define MAG_FREQUENCY 4
#define DC_GRADIENT 8
#define DC_NNZ 4

typedef struct {
    uint_model nnz[CLASSES][NNZ_CROSS][NNZ_PRED];
    bit_model zero[CLASSES][NEIGHBOURS][REMAINING][FREQUENCY];
    uint_model magnitude[CLASSES][MAG_NEIGHBOURS][MAG_FREQUENCY];
    bit_model sign[CLASSES][3][3];
    uint_model dc[CLASSES][DC_NNZ][DC_GRADIENT];
    bit_model dc_sign[CLASSES];
} models;

typedef union {
    models by_use;
    bit_model all[sizeof(models) / sizeof(bit_model)];
} model_set;

/* JPEG's zig-zag order: scan index -> u * 8 + v. */
static const uint8_t zigzag[BLOCK] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

static const uint8_t identity[BLOCK] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

static const uint8_t nnz_pred_bucket[BLOCK + 1] = {
    0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 8, 8,
    9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10,
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11,
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11};

static const uint8_t frequency_bucket[BLOCK] = {
    0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10,
    10, 10, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 13, 13,
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13,
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13};

static inline unsigned nnz_cross_bucket(unsigned n)
{
    return n == 0 ? 0 : n <= 2 ? 1 : n <= 6 ? 2 : 3;
}

static inline unsigned remaining_bucket(unsigned n)
{
    return n <= 8 ? n : n <= 15 ? 9 : 10;
}

static inline unsigned magnitude_neighbour_bucket(unsigned n)
{
    return n <= 2 ? n : n <= 4 ? 3 : n <= 8 ? 4 : 5;
}

static inline unsigned magnitude_frequency_bucket(unsigned k)
{
    return k <= 2 ? k : 3;
}

static inline unsigned dc_gradient_bucket(unsigned g)
{
    unsigned b = bit_length(g);
    return b < DC_GRADIENT ? b : DC_GRADIENT - 1;
}

static inline unsigned sign_class(int v)
{
    return v < 0 ? 0 : v == 0 ? 1 : 2;
}

static inline unsigned absolute(int v)
{
    return (unsigned)(v < 0 ? -v : v);
}

/* JPEG-LS's median edge detector: the DC of a block from its left, upper and upper-left DCs. */
static inline int med(int left, int up, int up_left)
{
    int lo = left < up ? left : up;
    int hi = left < up ? up : left;
    if (up_left >= hi)
        return lo;
    if (up_left <= lo)
        return hi;
    return left + up - up_left;
}

typedef struct {
    size_t height, width, channels;
    size_t blocks;           /* channel blocks of up to 64 channels */
    int dct;                 /* channels % 64 == 0: blocks are 8x8 DCTs, channel 0 their DC */
    int8_t *values;          /* element (p, c) at values[p * position_stride + c * channel_stride] */
    ptrdiff_t position_stride;
    ptrdiff_t channel_stride;
    uint8_t *nnz;            /* two rows of width * blocks non-zero counts, by row parity */
    model_set models;
} tensor_walk;

static inline int8_t value_at(const tensor_walk *t, size_t position, size_t channel)
{
    return t->values[(ptrdiff_t)position * t->position_stride + (ptrdiff_t)channel * t->channel_stride];
}

/* Codes one block: its non-zero count, the non-zero coefficients and, for a DCT block, its DC. */
static int code_block(tensor_walk *t, coder *co, size_t y, size_t x, size_t b)
{
    const size_t w = t->width, position = y * w + x, base = b * BLOCK;
    const unsigned n = (unsigned)(t->channels - base < BLOCK ? t->channels - base : BLOCK);
    const unsigned first = t->dct ? 1 : 0;
    const uint8_t *scan = t->dct ? zigzag : identity;
    const unsigned cls = b < CLASSES ? (unsigned)b : CLASSES - 1;
    uint8_t *row = t->nnz + (y & 1) * w * t->blocks, *above = t->nnz + ((y & 1) ^ 1) * w * t->blocks;
    models *m = &t->models.by_use;
    int8_t coefficient[BLOCK];
    unsigned nnz = 0;

    if (co->encoding) {
        for (unsigned k = first; k < n; k++) {
            coefficient[k] = value_at(t, position, base + scan[k]);
            nnz += coefficient[k] != 0;
        }
    }
    unsigned predicted;
    if (x > 0 && y > 0)
        predicted = (row[(x - 1) * t->blocks + b] + above[x * t->blocks + b] + 1) >> 1;
    else if (x > 0)
        predicted = row[(x - 1) * t->blocks + b];
    else if (y > 0)
        predicted = above[x * t->blocks + b];
    else
        predicted = 0;
    unsigned cross = b > 0 ? nnz_cross_bucket(row[x * t->blocks + b - 1]) : 0;
    nnz = code_uint(co, &m->nnz[cls][cross][nnz_pred_bucket[predicted]], nnz, 7);
    if (nnz > n - first)
        return ARITH_BAD_COUNT;
    row[x * t->blocks + b] = (uint8_t)nnz;

    unsigned remaining = nnz;
    for (unsigned k = first; remaining > 0; k++) {
        const size_t channel = base + scan[k];
        const int left = x > 0 ? value_at(t, position - 1, channel) : 0;
        const int up = y > 0 ? value_at(t, position - w, channel) : 0;
        const unsigned neighbours = absolute(left) + absolute(up);
        const int value = co->encoding ? coefficient[k] : 0;
        unsigned nonzero = 1;
        if (remaining < n - k) {
            bit_model *z = &m->zero[cls][neighbours < 2 ? neighbours : 2][remaining_bucket(remaining)][frequency_bucket[k]];
            nonzero = code_bit(co, z, value != 0);
        }
        if (!nonzero)
            continue;
        remaining--;
        uint_model *mag = &m->magnitude[cls][magnitude_neighbour_bucket(neighbours)][magnitude_frequency_bucket(k)];
        const unsigned size = 1 + code_uint(co, mag, absolute(value) - 1, 7);
        const unsigned negative = code_bit(co, &m->sign[cls][sign_class(left)][sign_class(up)], value < 0);
        if (!co->encoding) {
            if (size > 128 || (size == 128 && !negative))
                return ARITH_BAD_VALUE;
            t->values[(ptrdiff_t)position * t->position_stride + (ptrdiff_t)channel * t->channel_stride] =
                (int8_t)(negative ? -(int)size : (int)size);
        }
    }

    if (t->dct) {
        const int left = x > 0 ? value_at(t, position - 1, base) : 0;
        const int up = y > 0 ? value_at(t, position - w, base) : 0;
        const int up_left = x > 0 && y > 0 ? value_at(t, position - w - 1, base) : 0;
        int predicted_dc;
        unsigned gradient;
        if (x > 0 && y > 0) {
            predicted_dc = med(left, up, up_left);
            gradient = absolute(left - up_left) + absolute(up - up_left);
        } else {
            predicted_dc = x > 0 ? left : up;
            gradient = 0;
        }
        const int dc = co->encoding ? value_at(t, position, base) : 0;
        const int residual = dc - predicted_dc;
        unsigned nnz_class = nnz == 0 ? 0 : nnz <= 2 ? 1 : nnz <= 6 ? 2 : 3;
        const unsigned size = code_uint(co, &m->dc[cls][nnz_class][dc_gradient_bucket(gradient)], absolute(residual), 8);
        int decoded = predicted_dc;
        if (size) {
            const unsigned negative = code_bit(co, &m->dc_sign[cls], residual < 0);
            decoded = negative ? predicted_dc - (int)size : predicted_dc + (int)size;
        }
        if (!co->encoding) {
            if (decoded < -128 || decoded > 127)
                return ARITH_BAD_VALUE;
            t->values[(ptrdiff_t)position * t->position_stride + (ptrdiff_t)base * t->channel_stride] =
                (int8_t)decoded;
        }
    }
    return ARITH_OK;
}

static int code_tensor(tensor_walk *t, coder *co)
{
    for (size_t y = 0; y < t->height; y++) {
        for (size_t x = 0; x < t->width; x++)
            for (size_t b = 0; b < t->blocks; b++) {
                int status = code_block(t, co, y, x, b);
                if (status != ARITH_OK)
                    return status;
            }
        /* A stream that ran out of bytes decodes zeros from then on: stop at the row's end
         * rather than spend the rest of the frame on a payload that is already invalid. */
        if (!co->encoding && co->dec.pos > co->dec.size)
            return ARITH_TRUNCATED;
    }
    return ARITH_OK;
}

static int walk_init(tensor_walk *t, size_t height, size_t width, size_t channels)
{
    if (height == 0 || width == 0 || channels == 0 || channels > ARITH_MAX_CHANNELS)
        return ARITH_BAD_SHAPE;
    if (height > (size_t)PTRDIFF_MAX / width || height * width > (size_t)PTRDIFF_MAX / channels)
        return ARITH_BAD_SHAPE;
    t->height = height;
    t->width = width;
    t->channels = channels;
    t->blocks = (channels + BLOCK - 1) / BLOCK;
    t->dct = channels % BLOCK == 0;
    t->nnz = calloc(2 * width, t->blocks);
    if (!t->nnz)
        return ARITH_NO_MEMORY;
    for (size_t i = 0; i < sizeof t->models.all / sizeof t->models.all[0]; i++) {
        t->models.all[i].p0 = PROB_ONE / 2;
        t->models.all[i].seen = 0;
    }
    return ARITH_OK;
}

static const uint8_t magic[2] = {'A', '1'};

int arith_encode(const int8_t *latents, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                 size_t height, size_t width, size_t channels,
                 uint8_t *out, size_t capacity, size_t *written)
{
    tensor_walk *t = malloc(sizeof *t);
    if (!t)
        return ARITH_NO_MEMORY;
    int status = walk_init(t, height, width, channels);
    if (status != ARITH_OK) {
        free(t);
        return status;
    }
    /* The walk only reads the tensor when encoding; it writes through `values` only decoding. */
    t->values = (int8_t *)(uintptr_t)latents;
    t->position_stride = position_stride;
    t->channel_stride = channel_stride;
    coder co;
    co.encoding = 1;
    size_t head = capacity < ARITH_HEADER_BYTES ? capacity : ARITH_HEADER_BYTES;
    encoder_init(&co.enc, out + head, capacity - head);
    status = code_tensor(t, &co);
    encoder_flush(&co.enc);
    free(t->nnz);
    free(t);
    if (status != ARITH_OK)
        return status;
    *written = ARITH_HEADER_BYTES + co.enc.size;
    if (*written > capacity)
        return ARITH_OUTPUT_FULL;
    out[0] = magic[0];
    out[1] = magic[1];
    out[2] = (uint8_t)(channels & 0xFF);
    out[3] = (uint8_t)(channels >> 8);
    return ARITH_OK;
}

int arith_decode(const uint8_t *payload, size_t size,
                 size_t height, size_t width, size_t channels, int8_t *planes)
{
    if (size < ARITH_HEADER_BYTES || payload[0] != magic[0] || payload[1] != magic[1])
        return ARITH_BAD_MAGIC;
    if ((size_t)payload[2] + ((size_t)payload[3] << 8) != channels)
        return ARITH_BAD_CHANNELS;
    tensor_walk *t = malloc(sizeof *t);
    if (!t)
        return ARITH_NO_MEMORY;
    int status = walk_init(t, height, width, channels);
    if (status != ARITH_OK) {
        free(t);
        return status;
    }
    memset(planes, 0, height * width * channels);
    t->values = planes;
    t->position_stride = 1;
    t->channel_stride = (ptrdiff_t)(height * width);
    coder co;
    co.encoding = 0;
    decoder_init(&co.dec, payload + ARITH_HEADER_BYTES, size - ARITH_HEADER_BYTES);
    status = code_tensor(t, &co);
    free(t->nnz);
    free(t);
    if (status != ARITH_OK)
        return status;
    if (co.dec.pos > co.dec.size)
        return ARITH_TRUNCATED;
    if (co.dec.pos < co.dec.size)
        return ARITH_TRAILING;
    return ARITH_OK;
}

const char *arith_strerror(int status)
{
    switch (status) {
    case ARITH_OK: return "no error";
    case ARITH_BAD_SHAPE: return "shape is empty, has more than 65535 channels or is too large";
    case ARITH_NO_MEMORY: return "out of memory";
    case ARITH_OUTPUT_FULL: return "output buffer too small";
    case ARITH_BAD_MAGIC: return "is not an arith payload (magic A1)";
    case ARITH_BAD_CHANNELS: return "channel count differs from the header's";
    case ARITH_TRUNCATED: return "is truncated";
    case ARITH_TRAILING: return "has trailing data";
    case ARITH_BAD_COUNT: return "codes more non-zeros than a block has coefficients";
    case ARITH_BAD_VALUE: return "decodes a value outside int8";
    default: return "unknown error";
    }
}
