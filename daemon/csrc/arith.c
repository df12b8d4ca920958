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
 * knowledge and has few symbols per context) and settles at 2^-6 (2^-7 costs 0.3-0.9 % more bits on Kodak dct8 latents, 2^-5 about the same as 2^-7: the statistics drift across a frame). */
#define ADAPT_SEEN_MAX 44
static const uint8_t adapt_shift[ADAPT_SEEN_MAX + 1] = {
    1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6};

/* Branch-free throughout (masks, not conditionals): the symbols are unpredictable by nature, and
 * compilers turned `bit ? a : b` here into jumps that mispredicted on one symbol in three. */
static inline void model_update(bit_model *m, unsigned bit)
{
    const unsigned shift = adapt_shift[m->seen];
    const unsigned p0 = m->p0, mask = 0u - bit;
    const unsigned towards_zero = p0 + ((PROB_ONE - p0) >> shift), towards_one = p0 - (p0 >> shift);
    m->seen = (uint16_t)(m->seen + (m->seen < ADAPT_SEEN_MAX));
    m->p0 = (uint16_t)(towards_zero ^ ((towards_zero ^ towards_one) & mask));
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

static inline void encoder_put(range_encoder *e, uint8_t byte)
{
    if (e->first) {
        e->first = 0;
        return;
    }
    if (e->size < e->capacity)
        e->out[e->size] = byte;
    e->size++;
}

static inline void encoder_shift_low(range_encoder *e)
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
    const uint32_t bound = (e->range >> PROB_BITS) * m->p0, mask = 0u - (uint32_t)bit;
    e->low += bound & mask;
    e->range = bound + ((e->range - bound - bound) & mask); /* bit ? range - bound : bound */
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
    const uint32_t bound = (d->range >> PROB_BITS) * m->p0;
    const unsigned bit = d->code >= bound;
    const uint32_t mask = 0u - (uint32_t)bit;
    d->code -= bound & mask;
    d->range = bound + ((d->range - bound - bound) & mask); /* bit ? range - bound : bound */
    while (d->range < RANGE_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | decoder_next(d);
    }
    model_update(m, bit);
    return bit;
}

/* ----- one walk for both directions ----- */

typedef struct {
    range_encoder enc;
    range_decoder dec;
} coder;

/* The walk's functions take `encoding` as a constant and are forced inline into its two
 * instances (encode_row, decode_row), which become straight code for their direction: measured
 * 25 % faster than testing a flag per symbol. */
#if defined(__GNUC__)
#define WALK static inline __attribute__((always_inline))
#else
#define WALK static inline
#endif

WALK unsigned code_bit(coder *co, bit_model *m, unsigned bit, const int encoding)
{
    if (encoding) {
        encode_bit(&co->enc, m, bit);
        return bit;
    }
    return decode_bit(&co->dec, m);
}

/* Unsigned integers 0 .. 2^max_class - 1 as their bit length (the class, 0 for 0) in unary,
 * then the bits below the leading one: the first with a model of the context, the others, close
 * to uniform, with models shared by all contexts of all kinds (`low_bits`). Small values, the
 * common case, cost a few adaptive decisions, the decoder's loop is bounded by max_class, and a
 * context's models fill one 64-byte cache line: with a model per bit and context the tables
 * were 4x larger for 0.1 % fewer bytes, and coding was slower. */
#define UINT_CLASSES 9
typedef struct {
    bit_model more[UINT_CLASSES - 1]; /* class > i? */
    bit_model top[UINT_CLASSES - 1];  /* [class - 1]: the bit below the leading one, classes 2.. */
} uint_model;

typedef bit_model low_bit_models[UINT_CLASSES][UINT_CLASSES - 3]; /* [class][bit], bits 0..class-3 */

/* The number of bits of v = 0..255 (0 for 0). */
static const uint8_t bit_length[256] = {
    0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};

WALK unsigned code_uint(coder *co, uint_model *m, low_bit_models *low, unsigned value, unsigned max_class,
                          const int encoding)
{
    const unsigned cls = encoding ? bit_length[value & 0xFF] : 0;
    unsigned n = 0;
    while (n < max_class && code_bit(co, &m->more[n], n < cls, encoding))
        n++;
    if (n < 2)
        return n;
    unsigned v = 2 | code_bit(co, &m->top[n - 1], (value >> (n - 2)) & 1, encoding);
    for (unsigned i = n - 2; i-- > 0;)
        v = (v << 1) | code_bit(co, &(*low)[n][i], (value >> i) & 1, encoding);
    return v;
}

/* ----- context model ----- */

#define BLOCK 64
#define CLASSES 3            /* channel blocks: the first (luma), the second, all later ones */
#define NNZ_CROSS 4          /* non-zero count of the previous block at the same position */
#define NNZ_PRED 12          /* non-zero count predicted from the left and upper blocks */
#define REMAINING 11         /* non-zeros not yet coded in the block */
#define FREQUENCY 14         /* scan index */
#define ZERO_AROUND 8
#define MAG_AROUND 6
#define MAG_FREQUENCY 14
#define MAG_NNZ 5
#define DC_GRADIENT 8
#define SIGN_FREQUENCY 11     /* scan index 0..9, then all others */
#define EDGE_MAG 6
#define DC_NNZ 4

typedef struct {
    uint_model nnz[CLASSES][NNZ_CROSS][NNZ_PRED];
    bit_model zero[CLASSES][ZERO_AROUND][REMAINING][FREQUENCY];
    uint_model magnitude[CLASSES][MAG_NNZ][MAG_AROUND][MAG_FREQUENCY];
    bit_model sign[CLASSES][SIGN_FREQUENCY][3][3];
    uint_model edge_magnitude[CLASSES][2][EDGE_MAG][MAG_NNZ];
    bit_model edge_sign[CLASSES][2][3][3][3];
    uint_model dc[CLASSES][DC_NNZ][DC_GRADIENT];
    bit_model dc_sign[CLASSES];
    low_bit_models low_bits;
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

static inline unsigned absolute(int v)
{
    return (unsigned)(v < 0 ? -v : v);
}

/* The coefficients next to channel u * 8 + v at lower frequency in its own DCT block, (u - 1, v)
 * and (u, v - 1), both before it in zig-zag order; on the block's edges the one there is counts
 * twice, and the DC (coded separately, on another scale) is no neighbour. In blocks that are not
 * DCTs the channel before. NO_CHANNEL: none. */
#define NO_CHANNEL 255
static const uint8_t dct_lower_u[BLOCK] = {
    255, 255,   1,   2,   3,   4,   5,   6, 255,   1,   2,   3,   4,   5,   6,   7,
      8,   9,  10,  11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,
     24,  25,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,  39,
     40,  41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,  52,  53,  54,  55};
static const uint8_t dct_lower_v[BLOCK] = {
    255, 255,   1,   2,   3,   4,   5,   6, 255,   8,   9,  10,  11,  12,  13,  14,
      8,  16,  17,  18,  19,  20,  21,  22,  16,  24,  25,  26,  27,  28,  29,  30,
     24,  32,  33,  34,  35,  36,  37,  38,  32,  40,  41,  42,  43,  44,  45,  46,
     40,  48,  49,  50,  51,  52,  53,  54,  48,  56,  57,  58,  59,  60,  61,  62};
static const uint8_t previous_channel[BLOCK] = {
    255,   0,   1,   2,   3,   4,   5,   6,   7,   8,   9,  10,  11,  12,  13,  14,
     15,  16,  17,  18,  19,  20,  21,  22,  23,  24,  25,  26,  27,  28,  29,  30,
     31,  32,  33,  34,  35,  36,  37,  38,  39,  40,  41,  42,  43,  44,  45,  46,
     47,  48,  49,  50,  51,  52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  62};

static inline unsigned magnitude_at(const int8_t *block, uint8_t channel)
{
    return channel == NO_CHANNEL ? 0 : absolute(block[channel]);
}

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

/* non-zero counts: 0, 1-2, 3-6, 7+ */
static const uint8_t small_count_bucket[8] = {
    0, 1, 1, 2, 2, 2, 2, 3};

/* non-zeros left in the block: 0..8, 9-15, 16+ */
static const uint8_t remaining_bucket[17] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 10};

/* a block's non-zeros, for its magnitudes: 0-2, 3-5, 6-10, 11-20, 21+ */
static const uint8_t count_bucket[22] = {
    0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 4};

/* `around`, for zero flags: 0, 1, 2, 3-4, 5-6, 7-9, 10-14, 15+ */
static const uint8_t zero_around_bucket[16] = {
    0, 1, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 6, 7};

/* `around`, for magnitudes: 0, 1-3, 4-6, 7-12, 13-24, 25+ */
static const uint8_t magnitude_around_bucket[26] = {
    0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 5};

/* |edge step|: 0-1, 2-3, 4-6, 7-12, 13-24, 25+ */
static const uint8_t edge_bucket[26] = {
    0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 5};

/* DC gradient, by bit length: 0, 1, 2-3, 4-7, .. 32-63, 64+ */
static const uint8_t gradient_bucket[65] = {
    0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    6, 6, 6, 6, 7};

#define BUCKET(table, n) (table[(n) < sizeof table ? (n) : sizeof table - 1])

static inline unsigned sign_class(int v)
{
    return (unsigned)(v >= 0) + (unsigned)(v > 0); /* -, 0, + */
}


/* JPEG-LS's median edge detector: the DC of a block from its left, upper and upper-left DCs,
 * written as the median of left, up and left + up - up_left (the same value, without branches). */
static inline int med(int left, int up, int up_left)
{
    const int lo = left < up ? left : up, hi = left < up ? up : left, plane = left + up - up_left;
    const int clipped = plane < hi ? plane : hi;
    return clipped > lo ? clipped : lo;
}

typedef struct {
    size_t height, width, channels;
    size_t blocks;           /* channel blocks of up to 64 channels */
    int dct;                 /* channels % 64 == 0: blocks are 8x8 DCTs, channel 0 their DC */
    /* Two rows of values, NHWC with a zero position either side (x at [(x + 1) * channels]),
     * by row parity; the one not being coded is the row above, zero above the picture. Contexts
     * read the neighbours at the same channel: in (C, H, W) planes those would be 192 streams
     * whose addresses share a few cache sets, and the zero border spares a test per read. */
    int8_t *rows;
    int8_t *row;
    const int8_t *above;
    uint8_t *nnz;            /* two rows of width * blocks non-zero counts, by row parity */
    int8_t *planes;          /* decoding: the output, (C, H, W) */
    model_set models;
} tensor_walk;

/* The number of non-zero values among v[0..n-1], eight at a time: a byte's top bit after
 * (byte & 0x7F) + 0x7F, or'ed with the byte, is set iff the byte is not zero. */
static inline unsigned count_nonzero(const int8_t *v, unsigned n)
{
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7Full, ones = 0x0101010101010101ull;
    unsigned count = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, v + i, sizeof word);
        const uint64_t top = (((word & low7) + low7) | word) & ~low7;
        count += (unsigned)(((top >> 7) * ones) >> 56);
    }
    for (; i < n; i++)
        count += v[i] != 0;
    return count;
}

/* Codes one block: its non-zero count, for a DCT block its DC, then the non-zero coefficients.
 * Decoding, the block's values must be zero in t->row beforehand; they are written there and
 * the non-zeros to t->planes. */
WALK int code_block(tensor_walk *t, coder *co, size_t y, size_t x, size_t b, const int encoding)
{
    const size_t c_count = t->channels, base = b * BLOCK;
    const unsigned n = (unsigned)(c_count - base < BLOCK ? c_count - base : BLOCK);
    const unsigned first = t->dct ? 1 : 0;
    const uint8_t *scan = t->dct ? zigzag : identity;
    const uint8_t *lower_u = t->dct ? dct_lower_u : previous_channel, *lower_v = t->dct ? dct_lower_v : previous_channel;
    const unsigned cls = b < CLASSES ? (unsigned)b : CLASSES - 1;
    const int has_left = x > 0, has_up = y > 0;
    const size_t stride = t->blocks;
    uint8_t *nnz_row = t->nnz + (y & 1) * t->width * stride;
    const uint8_t *nnz_above = t->nnz + ((y & 1) ^ 1) * t->width * stride;
    int8_t *block = t->row + (x + 1) * c_count + base;
    const int8_t *left_block = block - c_count;
    const int8_t *up_block = t->above + (x + 1) * c_count + base;
    const int8_t *up_left_block = up_block - c_count, *up_right_block = up_block + c_count;
    models *m = &t->models.by_use;

    const unsigned nnz_present = encoding ? count_nonzero(block, n) - (first && block[0] != 0) : 0;
    unsigned predicted;
    if (has_left && has_up)
        predicted = (nnz_row[(x - 1) * stride + b] + nnz_above[x * stride + b] + 1) >> 1;
    else if (has_left)
        predicted = nnz_row[(x - 1) * stride + b];
    else if (has_up)
        predicted = nnz_above[x * stride + b];
    else
        predicted = 0;
    const unsigned cross = b > 0 ? BUCKET(small_count_bucket, nnz_row[x * stride + b - 1]) : 0;
    const unsigned nnz = code_uint(co, &m->nnz[cls][cross][nnz_pred_bucket[predicted]], &m->low_bits, nnz_present, 7, encoding);
    if (nnz > n - first)
        return ARITH_BAD_COUNT;
    nnz_row[x * stride + b] = (uint8_t)nnz;

    if (t->dct) {
        const int left = left_block[0], up = up_block[0], up_left = up_left_block[0];
        int predicted_dc;
        unsigned gradient = 0;
        if (has_left && has_up) {
            predicted_dc = med(left, up, up_left);
            gradient = absolute(left - up_left) + absolute(up - up_left);
        } else {
            predicted_dc = has_left ? left : up;
        }
        const int residual = encoding ? block[0] - predicted_dc : 0;
        const unsigned nnz_bucket = BUCKET(small_count_bucket, nnz);
        const unsigned size = code_uint(co, &m->dc[cls][nnz_bucket][BUCKET(gradient_bucket, gradient)], &m->low_bits,
                                        absolute(residual), 8, encoding);
        int decoded = predicted_dc;
        if (size) {
            const unsigned negative = code_bit(co, &m->dc_sign[cls], residual < 0, encoding);
            decoded = negative ? predicted_dc - (int)size : predicted_dc + (int)size;
        }
        if (!encoding) {
            if (decoded < -128 || decoded > 127)
                return ARITH_BAD_VALUE;
            block[0] = (int8_t)decoded;
            t->planes[base * t->height * t->width + y * t->width + x] = block[0];
        }
    }

    unsigned remaining = nnz;
    const unsigned nnz_class = BUCKET(count_bucket, nnz);
    for (unsigned k = first; remaining > 0; k++) {
        const unsigned channel = scan[k];
        const int left = left_block[channel], up = up_block[channel];
        /* What the coefficient's surroundings say of its size: the same channel in the left and
         * upper blocks (weight 2) and the diagonal ones (1), and its lower neighbours in its
         * own block (2). Weights and buckets chosen on Kodak's dct8 latents. */
        const unsigned around = 2 * (absolute(left) + absolute(up) + magnitude_at(block, lower_u[channel]) +
                                     magnitude_at(block, lower_v[channel])) +
                                absolute(up_left_block[channel]) + absolute(up_right_block[channel]);
        const int value = encoding ? block[channel] : 0;
        if (remaining < n - k) {
            bit_model *z = &m->zero[cls][BUCKET(zero_around_bucket, around)][BUCKET(remaining_bucket, remaining)][frequency_bucket[k]];
            if (!code_bit(co, z, value != 0, encoding))
                continue;
        }
        remaining--;
        uint_model *magnitude;
        bit_model *sign;
        if (t->dct && (channel == 1 || channel == 8)) {
            /* The first horizontal (vertical) frequency: the step from the left (upper) block's
             * DC to this one's, less the part the neighbour's own coefficient explains. */
            const int edge = channel == 1 ? (has_left ? left_block[0] - block[0] - left_block[1] : 0)
                                          : (has_up ? up_block[0] - block[0] - up_block[8] : 0);
            magnitude = &m->edge_magnitude[cls][channel == 8][BUCKET(edge_bucket, absolute(edge))][nnz_class];
            sign = &m->edge_sign[cls][channel == 8][sign_class(edge)][sign_class(left)][sign_class(up)];
        } else {
            magnitude = &m->magnitude[cls][nnz_class][BUCKET(magnitude_around_bucket, around)][frequency_bucket[k]];
            sign = &m->sign[cls][k < SIGN_FREQUENCY - 1 ? k : SIGN_FREQUENCY - 1][sign_class(left)][sign_class(up)];
        }
        const unsigned size = 1 + code_uint(co, magnitude, &m->low_bits, absolute(value) - 1, 7, encoding);
        const unsigned negative = code_bit(co, sign, value < 0, encoding);
        if (!encoding) {
            if (size > 128 || (size == 128 && !negative))
                return ARITH_BAD_VALUE;
            block[channel] = (int8_t)(negative ? -(int)size : (int)size);
            t->planes[(base + channel) * t->height * t->width + y * t->width + x] = block[channel];
        }
    }
    return ARITH_OK;
}

WALK int code_row(tensor_walk *t, coder *co, size_t y, const int encoding)
{
    coder local = *co;
    int status = ARITH_OK;
    for (size_t x = 0; x < t->width && status == ARITH_OK; x++)
        for (size_t b = 0; b < t->blocks && status == ARITH_OK; b++)
            status = code_block(t, &local, y, x, b, encoding);
    *co = local;
    return status;
}

static int encode_row(tensor_walk *t, coder *co, size_t y)
{
    return code_row(t, co, y, 1);
}

static int decode_row(tensor_walk *t, coder *co, size_t y)
{
    return code_row(t, co, y, 0);
}

static int walk_init(tensor_walk *t, size_t height, size_t width, size_t channels)
{
    if (height == 0 || width == 0 || channels == 0 || channels > ARITH_MAX_CHANNELS)
        return ARITH_BAD_SHAPE;
    if (height > (size_t)PTRDIFF_MAX / width || height * width > (size_t)PTRDIFF_MAX / channels ||
        width > (size_t)PTRDIFF_MAX / 2 - 2)
        return ARITH_BAD_SHAPE;
    t->height = height;
    t->width = width;
    t->channels = channels;
    t->blocks = (channels + BLOCK - 1) / BLOCK;
    t->dct = channels % BLOCK == 0;
    t->nnz = calloc(2 * width, t->blocks);
    t->rows = calloc(2 * (width + 2), channels);
    t->planes = NULL;
    if (!t->nnz || !t->rows) {
        free(t->nnz);
        free(t->rows);
        return ARITH_NO_MEMORY;
    }
    /* Every model starts at p = 1/2, never seen: one set, then copies of what is set. */
    const size_t count = sizeof t->models.all / sizeof t->models.all[0];
    t->models.all[0].p0 = PROB_ONE / 2;
    t->models.all[0].seen = 0;
    for (size_t done = 1; done < count; done *= 2)
        memcpy(t->models.all + done, t->models.all, (count - done < done ? count - done : done) * sizeof t->models.all[0]);
    return ARITH_OK;
}

static void walk_free(tensor_walk *t)
{
    free(t->nnz);
    free(t->rows);
    free(t);
}

/* The row buffer of row y, its zero borders kept; the row above is the other one. */
static void walk_select_row(tensor_walk *t, size_t y)
{
    const size_t row_size = (t->width + 2) * t->channels;
    t->row = t->rows + (y & 1) * row_size;
    t->above = t->rows + ((y & 1) ^ 1) * row_size;
}

static const uint8_t magic[2] = {'A', '1'};

/* The encoder's walk: each row copied into the row buffer, channel by channel from planes so
 * that they are read sequentially. */
static int encode_rows(tensor_walk *t, coder *co, const int8_t *latents, ptrdiff_t position_stride,
                       ptrdiff_t channel_stride)
{
    const size_t w = t->width, c_count = t->channels;
    int status = ARITH_OK;
    for (size_t y = 0; y < t->height && status == ARITH_OK; y++) {
        const int8_t *source = latents + (ptrdiff_t)(y * w) * position_stride;
        walk_select_row(t, y);
        int8_t *values = t->row + c_count;
        if (position_stride == (ptrdiff_t)c_count && channel_stride == 1) {
            memcpy(values, source, w * c_count);
        } else if (position_stride == 1) {
            /* Planes: most of a row's stretch of a plane is zero, eight bytes tested at once. */
            memset(values, 0, w * c_count);
            for (size_t c = 0; c < c_count; c++) {
                const int8_t *plane = source + (ptrdiff_t)c * channel_stride;
                for (size_t x = 0; x < w; x += 8) {
                    const size_t end = x + 8 < w ? x + 8 : w;
                    if (end == x + 8) {
                        uint64_t word;
                        memcpy(&word, plane + x, sizeof word);
                        if (!word)
                            continue;
                    }
                    for (size_t i = x; i < end; i++)
                        values[i * c_count + c] = plane[i];
                }
            }
        } else {
            for (size_t c = 0; c < c_count; c++) {
                const int8_t *plane = source + (ptrdiff_t)c * channel_stride;
                for (size_t x = 0; x < w; x++)
                    values[x * c_count + c] = plane[(ptrdiff_t)x * position_stride];
            }
        }
        status = encode_row(t, co, y);
    }
    return status;
}

/* The decoder's walk: each row decoded into the zeroed row buffer (the contexts' view); the walk
 * writes each non-zero into the zeroed planes too, so the ~95 % zeros cost one memset. */
static int decode_rows(tensor_walk *t, coder *co, int8_t *planes)
{
    const size_t w = t->width, c_count = t->channels;
    memset(planes, 0, t->height * w * c_count);
    t->planes = planes;
    int status = ARITH_OK;
    for (size_t y = 0; y < t->height && status == ARITH_OK; y++) {
        walk_select_row(t, y);
        memset(t->row + c_count, 0, w * c_count);
        status = decode_row(t, co, y);
        /* A stream that ran out of bytes reads zeros from then on: stop at the row's end rather
         * than spend the rest of the frame on a payload that is already invalid. */
        if (status == ARITH_OK && co->dec.pos > co->dec.size)
            status = ARITH_TRUNCATED;
    }
    return status;
}

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
    coder co;
    size_t head = capacity < ARITH_HEADER_BYTES ? capacity : ARITH_HEADER_BYTES;
    encoder_init(&co.enc, out + head, capacity - head);
    status = encode_rows(t, &co, latents, position_stride, channel_stride);
    encoder_flush(&co.enc);
    walk_free(t);
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
    coder co;
    decoder_init(&co.dec, payload + ARITH_HEADER_BYTES, size - ARITH_HEADER_BYTES);
    status = decode_rows(t, &co, planes);
    walk_free(t);
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
