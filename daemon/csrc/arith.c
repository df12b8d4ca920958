/* The `arith` payload codec; see arith.h for the interface and docs/wire.md (`arith`) for the format.
 *
 * Cost follows the non-zeros: per position and 64-channel block the coder codes how many
 * coefficients are non-zero, then walks the block in zig-zag order only until it has met them
 * all, so an empty block costs a fraction of a bit and most of the ~95 % zeros of a frame are
 * never visited. Every decision is one binary symbol of an LZMA-style range coder whose
 * probabilities adapt to the frame; the contexts come from what both ends already know
 * (neighbouring blocks, the other components, the coefficients already coded).
 *
 * One walk (code_row, code_block) serves both directions, so encoder and decoder cannot disagree
 * on the order of symbols or on a context: encoding, it codes the value it is given and returns
 * it; decoding, it ignores that value and returns what it decodes. The encoder knows every value
 * in advance and could compute its contexts ahead of a serial loop, but that loop alone (look up,
 * mix, code, update: bench/arith_replay.py) is already 61 % of its instructions and 1.9 of its
 * 3.5 ms at dct8-q1 (x86, cc -O2), so the encoder keeps the shared walk (docs/wire.md, arith §6).
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
 * knowledge and has few symbols per context) and settles at 2^-6: on Kodak's dct8 latents 2^-7
 * cost 0.3-0.9 % more bytes and 2^-5 0.1-0.2 % more (the statistics drift across a frame). */
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

/* The encoder writes each byte as soon as it leaves `low` and adds a carry into the bytes already
 * written when one comes (rarely: the bytes after the carry's target must all be 0xFF). This
 * writes LZMA's bytes without its cache/pending bookkeeping (a loop and three branches per byte):
 * 1.4 % fewer encoder instructions (callgrind, dct8-q1 kodim01, gcc -O2), the same bytes. */
typedef struct {
    uint64_t low;     /* 33 bits: bits 0-31 lie under the bytes written, bit 32 is a carry into them */
    uint32_t range;
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
    e->out = out;
    e->capacity = capacity;
    e->size = 0;
}

/* Adds a carry to the `written` bytes at `out`: the last ones that are 0xFF become 0, the one
 * before them goes up by one. A carry never reaches past the first byte (the coded value is below
 * 1). It takes no pointer to the encoder, whose fields then stay in registers in the walk. */
static void add_carry(uint8_t *out, size_t written)
{
    while (written > 0 && out[written - 1] == 0xFF)
        out[--written] = 0;
    if (written > 0)
        out[written - 1]++;
}

/* Writes the top byte of `low` (after any carry) and shifts it out. */
static inline void encoder_shift_low(range_encoder *e)
{
    if (e->low >> 32) {
        /* Past the capacity nothing is stored and only the size matters. */
        add_carry(e->out, e->size < e->capacity ? e->size : e->capacity);
        e->low &= 0xFFFFFFFFu;
    }
    if (e->size < e->capacity)
        e->out[e->size] = (uint8_t)(e->low >> 24);
    e->size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

/* Codes `bit` with probability p0 / 2^15 of a 0. */
static inline void encode_bit(range_encoder *e, unsigned p0, unsigned bit)
{
    const uint32_t bound = (e->range >> PROB_BITS) * p0, mask = 0u - (uint32_t)bit;
    e->low += bound & mask;
    e->range = bound + ((e->range - bound - bound) & mask); /* bit ? range - bound : bound */
    while (e->range < RANGE_TOP) {
        e->range <<= 8;
        encoder_shift_low(e);
    }
}

/* Writes out all of `low`: the decoder reads exactly as many bytes as were written. */
static void encoder_flush(range_encoder *e)
{
    for (int i = 0; i < 4; i++)
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

static inline unsigned decode_bit(range_decoder *d, unsigned p0)
{
    const uint32_t bound = (d->range >> PROB_BITS) * p0;
    const unsigned bit = d->code >= bound;
    const uint32_t mask = 0u - (uint32_t)bit;
    d->code -= bound & mask;
    d->range = bound + ((d->range - bound - bound) & mask); /* bit ? range - bound : bound */
    while (d->range < RANGE_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | decoder_next(d);
    }
    return bit;
}

/* ----- one walk for both directions ----- */

typedef struct {
    range_encoder enc;
    range_decoder dec;
} coder;

/* The walk's functions take `encoding` as a constant and are forced inline into its two
 * instances (encode_row, decode_row), which become straight code for their direction: 6-7 %
 * faster each way than leaving the inlining to GCC 12 at -O2 (dct8-q1 Kodak latents). Each
 * instance is made twice again, for DCT blocks and for generic ones (`dct`, a constant too):
 * with 64 coefficients from the first AC on known at compile time, 2 % fewer instructions each
 * way, 4.8 % less CPU time to encode and 2.4 % to decode (bench/arith_cpu.py --runs 5 --baseline
 * --instructions, dct8-q1 Kodak latents, gcc -O2). */
#if defined(__GNUC__)
#define WALK static inline __attribute__((always_inline))
#else
#define WALK static inline
#endif

/* Encoding, codes `bit` and returns it; decoding, returns the bit decoded. */
WALK unsigned code_bit(coder *co, bit_model *m, unsigned bit, const int encoding)
{
    if (encoding)
        encode_bit(&co->enc, m->p0, bit);
    else
        bit = decode_bit(&co->dec, m->p0);
    model_update(m, bit);
    return bit;
}

/* A bit whose probability is the mean of two models' of different contexts, both then updated:
 * a fine context learns slowly and a coarse one is vague, and the mean of one of each did better
 * than either, or than their product as one context (5.2 % fewer bytes at dct8-q1 overall when
 * zero flags, magnitudes, non-zero counts and DCs each got a second model). */
WALK unsigned code_bit_of_two(coder *co, bit_model *a, bit_model *b, unsigned bit, const int encoding)
{
    const unsigned p0 = (a->p0 + b->p0 + 1u) >> 1;
    if (encoding)
        encode_bit(&co->enc, p0, bit);
    else
        bit = decode_bit(&co->dec, p0);
    model_update(a, bit);
    model_update(b, bit);
    return bit;
}

/* Unsigned integers 0 .. 2^max_class - 1 (max_class <= 8): their bit length (the class, 0 for 0)
 * in unary, then the bits below the leading one, the first with the context's models, the others,
 * close to uniform, with models shared by all contexts of a kind (`low`). Small values, the common
 * case, cost a few adaptive decisions, the decoder's loop is bounded by max_class, and a
 * context's models fill one 64-byte cache line: with models per bit and context the tables were
 * 4x larger for 0.1 % fewer bytes, and coding slower. */
#define UINT_CLASSES 9
typedef struct {
    bit_model more[UINT_CLASSES - 1]; /* [i]: class > i? */
    bit_model top[UINT_CLASSES - 1];  /* [class - 1]: the bit below the leading one (class >= 2) */
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

/* An unsigned integer, its unary and top bits each with the mean of models `a` and `b`. */
WALK unsigned code_uint(coder *co, uint_model *a, uint_model *b, low_bit_models *low, unsigned value,
                        unsigned max_class, const int encoding)
{
    unsigned n = 0;
    if (encoding) {
        /* The class is known: its unary code is a loop of known length, not one that waits on
         * each bit coded (8 % fewer encoder instructions, callgrind, dct8-q1 kodim01). */
        n = bit_length[value & 0xFF];
        for (unsigned i = 0; i < n; i++)
            code_bit_of_two(co, &a->more[i], &b->more[i], 1, encoding);
        if (n < max_class)
            code_bit_of_two(co, &a->more[n], &b->more[n], 0, encoding);
    } else {
        while (n < max_class && code_bit_of_two(co, &a->more[n], &b->more[n], 1, encoding))
            n++;
    }
    if (n < 2)
        return n;
    unsigned v = 2 | code_bit_of_two(co, &a->top[n - 1], &b->top[n - 1], (value >> (n - 2)) & 1, encoding);
    for (unsigned i = n - 2; i-- > 0;)
        v = (v << 1) | code_bit(co, &(*low)[n][i], (value >> i) & 1, encoding);
    return v;
}

/* ----- context model ----- */

#define BLOCK 64
#define CLASSES 3 /* channel blocks: the first (luma in dct8), the second, all later ones */

/* Context buckets: a value v falls in BUCKET(table, v), the table's last entry for all larger v. */
#define BUCKET(table, v) (table[(v) < sizeof table ? (v) : sizeof table - 1])

/* non-zero counts, DC residual magnitudes: 0, 1-2, 3-6, 7+ */
#define SMALL 4
static const uint8_t small_bucket[8] = {0, 1, 1, 2, 2, 2, 2, 3};

/* a neighbour block's non-zero count: 0, 1, 2-3, 4-6, 7-11, 12+ */
#define SIDE 6
static const uint8_t side_bucket[13] = {0, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 5};

/* the count predicted from the left and upper blocks: 0..4, 5-6, 7-8, 9-11, 12-15, 16-22,
 * 23-31, 32+ */
#define PREDICTED 12
static const uint8_t predicted_bucket[33] = {
    0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10, 11};

/* the block's own non-zero count, for its coefficients: 0-2, 3-5, 6-10, 11-20, 21+ */
#define COUNT 5
static const uint8_t count_bucket[22] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4};

/* non-zeros not yet coded in the block: 1..8, 9-15, 16+ (0 never occurs) */
#define REMAINING 11
static const uint8_t remaining_bucket[BLOCK] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  9,  9,  9,  9,  9,  9,  10, 10, 10, 10, 10, 10,
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10};

/* scan index: 0..6, 7-8, 9-10, 11-13, 14-17, 18-22, 23-29, 30+ */
#define FREQUENCY 14
static const uint8_t frequency_bucket[31] = {
    0, 1, 2, 3, 4, 5, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11, 11, 12, 12, 12, 12, 12, 12, 12, 13};

/* `around` is clamped to AROUND_LIMIT once, and both its bucket tables cover 0..AROUND_LIMIT. */
#define AROUND_LIMIT 25

/* `around` (see code_block), for zero flags: 0, 1, 2, 3-4, 5-6, 7-9, 10-14, 15+ */
#define ZERO_AROUND 8
static const uint8_t zero_around_bucket[AROUND_LIMIT + 1] = {
    0, 1, 2, 3, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

/* `around`, for magnitudes: 0, 1-3, 4-6, 7-12, 13-24, 25+ */
#define MAGNITUDE_AROUND 6
static const uint8_t magnitude_around_bucket[AROUND_LIMIT + 1] = {
    0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5};

/* |edge step| of a first horizontal or vertical AC: 0-1, 2-3, 4-6, 7-12, 13-24, 25+ */
#define EDGE 6
static const uint8_t edge_bucket[26] = {
    0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5};

/* DC differences, by bit length: 0, 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64+ */
#define GRADIENT 8
static const uint8_t gradient_bucket[65] = {
    0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7};

/* scan index for signs: 0..9, 10+ */
#define SIGN_FREQUENCY 11

/* Contexts from the reference frame (inter frames, protocol 4; `r` is a value on this frame's
 * grid, see arith.h). |r| of the same coefficient: 0, 1, 2, 3-4, 5-6, 7+. */
#define REFERENCE 6
static const uint8_t reference_bucket[8] = {0, 1, 2, 3, 3, 4, 4, 5};
/* non-zeros among the reference block's first five scan positions (DCT blocks: channels 1, 8, 16,
 * 9, 2; other blocks: their first five channels): 0..5 */
#define REFERENCE_LOW 6

typedef struct {
    /* A block's non-zero count: [class][previous block's count here][predicted];
     * [class][left block's count][upper block's count]. */
    uint_model count[CLASSES][SMALL][PREDICTED];
    uint_model count_by_sides[CLASSES][SIDE][SIDE];
    /* DC residual: [class][block's count][gradient][previous block's |residual|];
     * [class][|up-right - up|][|left - up|]; sign: [class][previous block's residual sign]. */
    uint_model dc[CLASSES][SMALL][GRADIENT][SMALL];
    uint_model dc_by_texture[CLASSES][GRADIENT][GRADIENT];
    bit_model dc_sign[CLASSES][3];
    /* Zero flag: [class][around][remaining][frequency]; [class][channel][around][block's count]. */
    bit_model zero[CLASSES][ZERO_AROUND][REMAINING][FREQUENCY];
    bit_model zero_by_channel[CLASSES][BLOCK][ZERO_AROUND][COUNT];
    /* |value| - 1: [class][block's count][around][frequency], for the first horizontal and vertical
     * AC [class][vertical][edge][block's count]; both with [class][channel][around]. */
    uint_model magnitude[CLASSES][COUNT][MAGNITUDE_AROUND][FREQUENCY];
    uint_model edge_magnitude[CLASSES][2][EDGE][COUNT];
    uint_model magnitude_by_channel[CLASSES][BLOCK][MAGNITUDE_AROUND];
    /* Sign, by the signs (-, 0, +) of the same channel in the left and upper blocks and in the
     * previous block here: [class][frequency][left][up][previous]; the first horizontal and
     * vertical AC [class][vertical][edge step][left][up][previous]. */
    bit_model sign[CLASSES][SIGN_FREQUENCY][3][3][3];
    bit_model edge_sign[CLASSES][2][3][3][3][3];
    /* Inter frames with a reference (protocol 4): each the second model of its decision in place
     * of the one above it, for counts [class][reference's low non-zeros][predicted count, as a
     * side bucket]; DC residuals [class][|reference DC|, gradient bucket][block's count]; zero flags
     * [class][channel][|r|][block's count]; magnitudes [class][|r|][block's count][frequency];
     * signs (not the first horizontal and vertical AC's) [class][frequency][sign of r][left][up]. */
    uint_model count_by_reference[CLASSES][REFERENCE_LOW][SIDE];
    uint_model dc_by_reference[CLASSES][GRADIENT][SMALL];
    bit_model zero_by_reference[CLASSES][BLOCK][REFERENCE][COUNT];
    uint_model magnitude_by_reference[CLASSES][REFERENCE][COUNT][FREQUENCY];
    bit_model sign_by_reference[CLASSES][SIGN_FREQUENCY][3][3][3];
    /* Inter frames that code their positions (protocol 5): whether a position was sent, by the left,
     * upper and either upper diagonal position's [left][up][up-left or up-right]; second model
     * [reference's low non-zeros of the position's first block][left + up]. */
    bit_model sent_by_sides[2][2][2];
    bit_model sent_by_reference[REFERENCE_LOW][3];
    /* The bits below the top one: non-zero counts, DC residuals, magnitudes. */
    low_bit_models low_count, low_dc, low_magnitude;
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

/* The coefficients next to channel u * 8 + v at lower frequency in its own DCT block, (u - 1, v)
 * and (u, v - 1), both before it in zig-zag order; on the block's edges the one there counts
 * twice, and the DC (coded on another scale) is no neighbour. NO_CHANNEL: none. (Blocks that are
 * not DCTs are scanned in channel order, each channel's neighbour the channel before: walk_init.) */
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

static inline unsigned absolute(int v)
{
    return (unsigned)(v < 0 ? -v : v);
}

static inline unsigned sign_class(int v)
{
    return (unsigned)(v >= 0) + (unsigned)(v > 0); /* -, 0, + */
}

/* sign_class of an int8 value, indexed by its byte (0, 1..127 positive, 128..255 negative): one
 * load instead of two compares and an add per sign context. */
static const uint8_t byte_sign_class[256] = {
    1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

/* JPEG-LS's median edge detector: the DC of a block from its left, upper and upper-left DCs,
 * written as the median of left, up and left + up - up_left (the same value, without branches). */
static inline int median_predictor(int left, int up, int up_left)
{
    const int lo = left < up ? left : up, hi = left < up ? up : left, plane = left + up - up_left;
    const int clipped = plane < hi ? plane : hi;
    return clipped > lo ? clipped : lo;
}

/* What the walk needs at scan index k, looked up once: the channel, its lower neighbours (itself
 * when there is none: its magnitude still reads 0 when they are read) and its scan buckets. */
typedef struct {
    uint8_t channel;
    uint8_t lower_u, lower_v;
    uint8_t frequency;      /* FREQUENCY bucket of k */
    uint8_t sign_frequency; /* min(k, SIGN_FREQUENCY - 1) */
    uint8_t edge;           /* DCT blocks: 1 for channel 1, 2 for channel 8 (first AC), else 0 */
} scan_step;

typedef struct {
    size_t height, width, channels;
    size_t blocks;            /* channel blocks of up to 64 channels */
    int dct;                  /* channels % 64 == 0: blocks are 8x8 DCTs, channel 0 their DC */
    /* Two rows of values, NHWC with a zero position either side (x at [(x + 1) * channels]),
     * by row parity; the one not being coded is the row above, zero above the picture. Contexts
     * read the neighbours at the same channel: in (C, H, W) planes those would be 192 streams
     * whose addresses share a few cache sets, and the zero border spares a test per read. */
    int8_t *rows;
    int8_t *row;
    const int8_t *above;
    /* The same rows as magnitudes |v|, written as the walk codes each non-zero coefficient (never
     * the DC), so that they read 0 until then in both directions: `around` is six loads and adds
     * instead of six absolute values of the signed rows, 7-8 % fewer instructions each way
     * (callgrind, dct8-q1 kodim01, gcc -O2, with the per-scan-index steps below). */
    uint8_t *magnitude_rows;
    uint8_t *magnitudes;
    const uint8_t *magnitudes_above;
    scan_step steps[BLOCK];   /* by scan index */
    uint8_t *counts;          /* two rows of width * blocks non-zero counts, by row parity */
    uint8_t *present;         /* encoding: the row's width * blocks counts to code, found as it is copied */
    int8_t *planes;           /* decoding: the output, (C, H, W) */
    int previous_dc_residual; /* of the block before, at this position */
    int dc_prediction;        /* -1: DCs are predicted from their neighbours; 0: predicted as 0 (residuals) */
    const int16_t *reference; /* NULL, or the reference frame's values (NHWC, see arith.h) */
    unsigned reference_shift;
    /* NULL, or the frame's H*W sent flags (arith_frame.sent): encoding reads them, decoding writes
     * them. Then the walk codes each position's flag first and the blocks of sent positions only. */
    uint8_t *sent;
    uint8_t *sent_rows;       /* two rows of flags, x at [x + 1] with a zero either side, by row parity */
    uint8_t *sent_row;
    const uint8_t *sent_above;
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

/* The reference's value of channel `channel` of the block at `values` on this frame's grid:
 * sign(v) * (|v| >> shift), the same for both signs (an arithmetic shift would not be). Without
 * branches: the signs of a residual's reference are unpredictable. */
static inline int reference_value(const int16_t *values, unsigned channel, unsigned shift)
{
    const int v = values[channel], negative = -(v < 0);
    const int magnitude = (int)((unsigned)((v ^ negative) - negative) >> shift);
    return (magnitude ^ negative) - negative;
}

/* How many of the reference block's first five scan positions (REFERENCE_LOW) are non-zero on this
 * frame's grid: |v| >= 2^shift, tested as one unsigned compare each, on every block of an inter
 * frame. */
WALK unsigned reference_low(const int16_t *values, const int dct, unsigned n, unsigned shift)
{
    const int limit = 1 << shift;
    const unsigned span = 2u * (unsigned)limit - 2u;
#define NONZERO(i) ((unsigned)((int)values[i] + limit - 1) > span)
    if (dct)
        return NONZERO(1) + NONZERO(8) + NONZERO(16) + NONZERO(9) + NONZERO(2);
    unsigned low = 0;
    for (unsigned k = 0; k < REFERENCE_LOW - 1 && k < n; k++)
        low += NONZERO(k);
    return low;
#undef NONZERO
}

/* Codes block b at (y, x): its non-zero count, for a DCT block (`dct`: t->dct) its DC, then the
 * non-zero coefficients in scan order. Decoding, the block must be zero in t->row beforehand;
 * its values are written there and the non-zeros to t->planes. */
WALK int code_block(tensor_walk *t, coder *co, size_t y, size_t x, size_t b, const int encoding, const int dct)
{
    const size_t c_count = t->channels, base = b * BLOCK, stride = t->blocks;
    const unsigned n = dct ? BLOCK : (unsigned)(c_count - base < BLOCK ? c_count - base : BLOCK);
    const unsigned first = dct ? 1 : 0; /* coefficients first..n-1 are counted */
    const unsigned cls = b < CLASSES ? (unsigned)b : CLASSES - 1;
    const int has_left = x > 0, has_up = y > 0;
    uint8_t *counts = t->counts + (y & 1) * t->width * stride;
    const uint8_t *counts_above = t->counts + ((y & 1) ^ 1) * t->width * stride;
    int8_t *block = t->row + (x + 1) * c_count + base;
    const int8_t *left_block = block - c_count, *up_block = t->above + (x + 1) * c_count + base;
    const int8_t *up_left_block = up_block - c_count, *up_right_block = up_block + c_count;
    const size_t plane_size = t->height * t->width;
    int8_t *plane_values = encoding ? NULL : t->planes + y * t->width + x; /* channel c at [c * plane_size] */
    models *m = &t->models.by_use;
    const unsigned shift = t->reference_shift;
    const int16_t *reference = t->reference ? t->reference + (y * t->width + x) * c_count + base : NULL;

    /* The non-zero count. */
    const unsigned left_count = has_left ? counts[(x - 1) * stride + b] : 0;
    const unsigned up_count = has_up ? counts_above[x * stride + b] : 0;
    const unsigned predicted = has_left && has_up ? (left_count + up_count + 1) >> 1 : left_count + up_count;
    const unsigned previous_count = b > 0 ? BUCKET(small_bucket, counts[x * stride + b - 1]) : 0;
    const unsigned present = encoding ? t->present[x * stride + b] : 0;
    uint_model *count_second = &m->count_by_sides[cls][BUCKET(side_bucket, left_count)][BUCKET(side_bucket, up_count)];
    if (reference) /* what the reference had here: where the picture moves, its blocks carry detail */
        count_second = &m->count_by_reference[cls][reference_low(reference, dct, n, shift)][BUCKET(side_bucket, predicted)];
    const unsigned count = code_uint(co, &m->count[cls][previous_count][BUCKET(predicted_bucket, predicted)],
                                     count_second, &m->low_count, present, 7, encoding);
    if (count > n - first)
        return ARITH_BAD_COUNT;
    counts[x * stride + b] = (uint8_t)count;

    /* The DC: its residual to the median predictor (to 0 in an inter frame's residuals, where the
     * neighbours' DCs are residuals too, mostly zero: 3.2-3.8 % fewer bytes, bench/inter_coder.py),
     * in contexts of the block's activity (its count), the DCs' gradient around it, and the
     * previous block's residual here. */
    if (dct) {
        const int left = left_block[0], up = up_block[0], up_left = up_left_block[0];
        int predicted_dc = has_left ? left : up;
        unsigned gradient = 0;
        if (has_left && has_up) {
            predicted_dc = median_predictor(left, up, up_left);
            gradient = absolute(left - up_left) + absolute(up - up_left);
        }
        predicted_dc &= t->dc_prediction; /* an inter frame's residual DC is predicted as 0 */
        const unsigned ahead = has_up && x + 1 < t->width ? absolute(up_right_block[0] - up) : 0;
        const unsigned previous = b > 0 ? BUCKET(small_bucket, absolute(t->previous_dc_residual)) : 0;
        const int residual = encoding ? block[0] - predicted_dc : 0;
        uint_model *dc_second = &m->dc_by_texture[cls][BUCKET(gradient_bucket, ahead)][BUCKET(gradient_bucket, absolute(left - up))];
        if (reference)
            dc_second = &m->dc_by_reference[cls][BUCKET(gradient_bucket, absolute(reference_value(reference, 0, shift)))]
                                           [BUCKET(small_bucket, count)];
        const unsigned size = code_uint(co, &m->dc[cls][BUCKET(small_bucket, count)][BUCKET(gradient_bucket, gradient)][previous],
                                        dc_second, &m->low_dc, absolute(residual), 8, encoding);
        int dc = predicted_dc;
        if (size) {
            const unsigned previous_sign = b > 0 ? sign_class(t->previous_dc_residual) : 1;
            dc = code_bit(co, &m->dc_sign[cls][previous_sign], residual < 0, encoding) ? predicted_dc - (int)size
                                                                                          : predicted_dc + (int)size;
        }
        t->previous_dc_residual = dc - predicted_dc;
        if (!encoding) {
            if (dc < -128 || dc > 127)
                return ARITH_BAD_VALUE;
            block[0] = (int8_t)dc;
            plane_values[base * plane_size] = block[0];
        }
    }

    /* The coefficients, up to the last non-zero: a zero flag unless all that are left are
     * non-zero, then |value| - 1 and the sign. */
    const unsigned count_class = BUCKET(count_bucket, count);
    uint8_t *magnitudes = t->magnitudes + (x + 1) * c_count + base;
    const uint8_t *left_magnitudes = magnitudes - c_count;
    const uint8_t *up_magnitudes = t->magnitudes_above + (x + 1) * c_count + base;
    const uint8_t *up_left_magnitudes = up_magnitudes - c_count, *up_right_magnitudes = up_magnitudes + c_count;
    unsigned remaining = count;
    for (unsigned k = first; remaining > 0; k++) {
        const scan_step step = t->steps[k];
        const unsigned channel = step.channel;
        /* What the surroundings say of the coefficient's size: the same channel in the left and
         * upper blocks and its lower neighbours in its own block (weight 2 each), the same
         * channel in the upper diagonal blocks (1). */
        unsigned around = 2u * (left_magnitudes[channel] + up_magnitudes[channel] + magnitudes[step.lower_u] +
                                magnitudes[step.lower_v]) +
                          up_left_magnitudes[channel] + up_right_magnitudes[channel];
        around = around < AROUND_LIMIT ? around : AROUND_LIMIT;
        const int value = encoding ? block[channel] : 0;
        const int r = reference ? reference_value(reference, channel, shift) : 0;
        const unsigned r_bucket = BUCKET(reference_bucket, absolute(r));
        if (remaining < n - k) {
            bit_model *z = &m->zero[cls][zero_around_bucket[around]][remaining_bucket[remaining]][step.frequency];
            bit_model *z_second = reference ? &m->zero_by_reference[cls][channel][r_bucket][count_class]
                                            : &m->zero_by_channel[cls][channel][zero_around_bucket[around]][count_class];
            if (!code_bit_of_two(co, z, z_second, value != 0, encoding))
                continue;
        }
        remaining--;
        const int left = left_block[channel], up = up_block[channel];
        const unsigned previous_sign = b > 0 ? byte_sign_class[(uint8_t)block[(ptrdiff_t)channel - BLOCK]] : 1;
        const unsigned left_sign = byte_sign_class[(uint8_t)left], up_sign = byte_sign_class[(uint8_t)up];
        uint_model *magnitude;
        bit_model *sign;
        if (dct && step.edge) {
            /* The first horizontal (vertical) frequency: the step from the left (upper) block's
             * DC to this one's, less the part the neighbour's own coefficient explains. */
            const int edge = step.edge == 1 ? (has_left ? left_block[0] - block[0] - left_block[1] : 0)
                                            : (has_up ? up_block[0] - block[0] - up_block[8] : 0);
            magnitude = &m->edge_magnitude[cls][step.edge - 1][BUCKET(edge_bucket, absolute(edge))][count_class];
            sign = &m->edge_sign[cls][step.edge - 1][sign_class(edge)][left_sign][up_sign][previous_sign];
        } else {
            magnitude = &m->magnitude[cls][count_class][magnitude_around_bucket[around]][step.frequency];
            sign = reference ? &m->sign_by_reference[cls][step.sign_frequency][sign_class(r)][left_sign][up_sign]
                             : &m->sign[cls][step.sign_frequency][left_sign][up_sign][previous_sign];
        }
        uint_model *magnitude_second = reference ? &m->magnitude_by_reference[cls][r_bucket][count_class][step.frequency]
                                                 : &m->magnitude_by_channel[cls][channel][magnitude_around_bucket[around]];
        const unsigned size = 1 + code_uint(co, magnitude, magnitude_second, &m->low_magnitude, absolute(value) - 1, 7,
                                            encoding);
        const unsigned negative = code_bit(co, sign, value < 0, encoding);
        magnitudes[channel] = (uint8_t)size;
        if (!encoding) {
            if (size > 128 || (size == 128 && !negative))
                return ARITH_BAD_VALUE;
            block[channel] = (int8_t)(negative ? -(int)size : (int)size);
            plane_values[(base + channel) * plane_size] = block[channel];
        }
    }
    return ARITH_OK;
}

/* Whether position (y, x) was sent (protocol 5): its flag, from the flags around it and what the
 * reference holds there. A position not sent has no blocks in the payload: all zero, counts 0. */
WALK unsigned code_position(tensor_walk *t, coder *co, size_t y, size_t x, const int encoding, const int dct)
{
    uint8_t *flags = t->sent_row + 1;
    const uint8_t *above = t->sent_above + 1;
    const unsigned left = flags[(ptrdiff_t)x - 1], up = above[x];
    const unsigned diagonal = above[(ptrdiff_t)x - 1] | above[x + 1];
    models *m = &t->models.by_use;
    unsigned low = 0;
    if (t->reference) {
        const unsigned n = t->channels < BLOCK ? (unsigned)t->channels : BLOCK;
        low = reference_low(t->reference + (y * t->width + x) * t->channels, dct, n, t->reference_shift);
    }
    const size_t position = y * t->width + x;
    const unsigned sent = code_bit_of_two(co, &m->sent_by_sides[left][up][diagonal], &m->sent_by_reference[low][left + up],
                                          encoding ? t->sent[position] != 0 : 0, encoding);
    flags[x] = (uint8_t)sent;
    if (!encoding)
        t->sent[position] = (uint8_t)sent;
    if (!sent)
        memset(t->counts + (y & 1) * t->width * t->blocks + x * t->blocks, 0, t->blocks);
    return sent;
}

WALK int code_row(tensor_walk *t, coder *co, size_t y, const int encoding, const int dct)
{
    coder local = *co;
    int status = ARITH_OK;
    for (size_t x = 0; x < t->width && status == ARITH_OK; x++) {
        if (t->sent && !code_position(t, &local, y, x, encoding, dct))
            continue;
        for (size_t b = 0; b < t->blocks && status == ARITH_OK; b++)
            status = code_block(t, &local, y, x, b, encoding, dct);
    }
    *co = local;
    return status;
}

static int encode_row(tensor_walk *t, coder *co, size_t y)
{
    return t->dct ? code_row(t, co, y, 1, 1) : code_row(t, co, y, 1, 0);
}

static int decode_row(tensor_walk *t, coder *co, size_t y)
{
    return t->dct ? code_row(t, co, y, 0, 1) : code_row(t, co, y, 0, 0);
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
    t->counts = calloc(2 * width, t->blocks);
    t->present = calloc(width, t->blocks);
    t->rows = calloc(2 * (width + 2), channels);
    t->magnitude_rows = calloc(2 * (width + 2), channels);
    t->sent_rows = calloc(2, width + 2);
    t->planes = NULL;
    if (!t->counts || !t->present || !t->rows || !t->magnitude_rows || !t->sent_rows) {
        free(t->counts);
        free(t->present);
        free(t->rows);
        free(t->magnitude_rows);
        free(t->sent_rows);
        return ARITH_NO_MEMORY;
    }
    for (unsigned k = 0; k < BLOCK; k++) {
        /* DCT blocks in zig-zag order; other blocks in channel order, each channel's lower
         * neighbour the one before it. Where there is none, the channel itself (it reads 0). */
        const unsigned channel = t->dct ? zigzag[k] : k;
        unsigned lower_u = channel > 0 ? channel - 1 : channel, lower_v = lower_u;
        if (t->dct) {
            lower_u = dct_lower_u[channel] == NO_CHANNEL ? channel : dct_lower_u[channel];
            lower_v = dct_lower_v[channel] == NO_CHANNEL ? channel : dct_lower_v[channel];
        }
        t->steps[k].channel = (uint8_t)channel;
        t->steps[k].lower_u = (uint8_t)lower_u;
        t->steps[k].lower_v = (uint8_t)lower_v;
        t->steps[k].frequency = BUCKET(frequency_bucket, k);
        t->steps[k].sign_frequency = (uint8_t)(k < SIGN_FREQUENCY - 1 ? k : SIGN_FREQUENCY - 1);
        t->steps[k].edge = (uint8_t)(t->dct && channel == 1 ? 1 : t->dct && channel == 8 ? 2 : 0);
    }
    return ARITH_OK;
}

/* Every model at p = 1/2, never seen (a payload without a start state): one set, then copies of
 * what is set. */
static void walk_fresh_models(tensor_walk *t)
{
    const size_t count = sizeof t->models.all / sizeof t->models.all[0];
    t->models.all[0].p0 = PROB_ONE / 2;
    t->models.all[0].seen = 0;
    for (size_t done = 1; done < count; done *= 2)
        memcpy(t->models.all + done, t->models.all, (count - done < done ? count - done : done) * sizeof t->models.all[0]);
}

static void walk_free(tensor_walk *t)
{
    free(t->counts);
    free(t->present);
    free(t->rows);
    free(t->magnitude_rows);
    free(t->sent_rows);
    free(t);
}

/* The row buffer of row y, its zero borders kept; the row above is the other one. */
static void walk_select_row(tensor_walk *t, size_t y)
{
    const size_t row_size = (t->width + 2) * t->channels;
    t->row = t->rows + (y & 1) * row_size;
    t->above = t->rows + ((y & 1) ^ 1) * row_size;
    t->magnitudes = t->magnitude_rows + (y & 1) * row_size;
    t->magnitudes_above = t->magnitude_rows + ((y & 1) ^ 1) * row_size;
    memset(t->magnitudes + t->channels, 0, t->width * t->channels);
    t->sent_row = t->sent_rows + (y & 1) * (t->width + 2);
    t->sent_above = t->sent_rows + ((y & 1) ^ 1) * (t->width + 2);
}

static const uint8_t magic[2] = {'A', '1'};

/* The counts to code of position x of the row in t->row, block by block. */
static void count_position(tensor_walk *t, size_t x)
{
    const size_t c_count = t->channels;
    for (size_t b = 0; b < t->blocks; b++) {
        const int8_t *block = t->row + (x + 1) * c_count + b * BLOCK;
        const unsigned n = (unsigned)(c_count - b * BLOCK < BLOCK ? c_count - b * BLOCK : BLOCK);
        t->present[x * t->blocks + b] = (uint8_t)(count_nonzero(block, n) - (t->dct && block[0] != 0));
    }
}

/* The counts to code of the row in t->row. */
static void count_row(tensor_walk *t)
{
    for (size_t x = 0; x < t->width; x++)
        count_position(t, x);
}

/* Row y's positions that t->sent marks as sent copied into the zeroed row buffer, their blocks'
 * counts into t->present; the others stay zero, whatever `source` holds there. An inter frame sends
 * a few positions (~10 % of the cctv camera's): with every position copied and counted, an inter
 * frame that sends none took 0.30 ms to encode at 512x768 x 192, this way 0.11 ms (x86, -O2). */
static void copy_sent_row(tensor_walk *t, const int8_t *source, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                          size_t y)
{
    const size_t w = t->width, c_count = t->channels;
    const uint8_t *sent = t->sent + y * w;
    int8_t *values = t->row + c_count;
    memset(values, 0, w * c_count);
    for (size_t x = 0; x < w; x++) {
        if (!sent[x]) /* no block of it is coded, so its counts are never read */
            continue;
        int8_t *position = values + x * c_count;
        const int8_t *from = source + (ptrdiff_t)x * position_stride;
        if (channel_stride == 1) {
            memcpy(position, from, c_count);
        } else {
            for (size_t c = 0; c < c_count; c++)
                position[c] = from[(ptrdiff_t)c * channel_stride];
        }
        count_position(t, x);
    }
}

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
        if (t->sent) {
            copy_sent_row(t, source, position_stride, channel_stride, y);
        } else if (position_stride == (ptrdiff_t)c_count && channel_stride == 1) {
            memcpy(values, source, w * c_count);
            count_row(t);
        } else if (position_stride == 1) {
            /* Planes: most of a row's stretch of a plane is zero, eight bytes tested at once; the
             * blocks' counts are summed from the non-zero stretches as they are copied, which
             * spares count_row's pass over every block (encode: 2 % fewer instructions, 3 % less
             * CPU time at dct8-q1). */
            memset(values, 0, w * c_count);
            memset(t->present, 0, w * t->blocks);
            for (size_t c = 0; c < c_count; c++) {
                const int8_t *plane = source + (ptrdiff_t)c * channel_stride;
                uint8_t *present = t->present + c / BLOCK;
                const unsigned counted = !(t->dct && c % BLOCK == 0); /* a DCT's DC is not counted */
                for (size_t x = 0; x < w; x += 8) {
                    const size_t end = x + 8 < w ? x + 8 : w;
                    if (end == x + 8) {
                        uint64_t word;
                        memcpy(&word, plane + x, sizeof word);
                        if (!word)
                            continue;
                    }
                    for (size_t i = x; i < end; i++) {
                        values[i * c_count + c] = plane[i];
                        present[i * t->blocks] = (uint8_t)(present[i * t->blocks] + ((plane[i] != 0) & counted));
                    }
                }
            }
        } else {
            for (size_t c = 0; c < c_count; c++) {
                const int8_t *plane = source + (ptrdiff_t)c * channel_stride;
                for (size_t x = 0; x < w; x++)
                    values[x * c_count + c] = plane[(ptrdiff_t)x * position_stride];
            }
            count_row(t);
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

size_t arith_state_size(void)
{
    return sizeof(models);
}

/* The walk's models from `frame`'s start state (fresh ones without), or ARITH_BAD_STATE if any
 * model in it is not one this coder could have left (a probability outside 1..32767, a count past
 * its last rate). A start state is ~100k models, checked on every inter frame: the check runs over
 * all of them without a branch per model. */
static int walk_start(tensor_walk *t, const arith_frame *frame)
{
    t->dc_prediction = frame && frame->residual ? 0 : -1;
    t->reference = frame ? frame->reference : NULL;
    t->reference_shift = frame ? frame->reference_shift : 0;
    t->sent = frame ? frame->sent : NULL;
    if (t->reference && t->reference_shift > ARITH_MAX_SHIFT)
        return ARITH_BAD_SHIFT;
    if (!frame || !frame->start) {
        walk_fresh_models(t);
        return ARITH_OK;
    }
    memcpy(&t->models, frame->start, sizeof t->models);
    const bit_model *m = t->models.all;
    unsigned bad = 0;
    for (size_t i = 0; i < sizeof t->models.all / sizeof m[0]; i++)
        bad |= ((unsigned)m[i].p0 - 1u >= PROB_ONE - 1u) | (m[i].seen > ADAPT_SEEN_MAX);
    return bad ? ARITH_BAD_STATE : ARITH_OK;
}

int arith_encode_frame(const int8_t *latents, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                       size_t height, size_t width, size_t channels, const arith_frame *frame,
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
    status = walk_start(t, frame);
    coder co;
    size_t head = capacity < ARITH_HEADER_BYTES ? capacity : ARITH_HEADER_BYTES;
    encoder_init(&co.enc, out + head, capacity - head);
    if (status == ARITH_OK)
        status = encode_rows(t, &co, latents, position_stride, channel_stride);
    encoder_flush(&co.enc);
    *written = ARITH_HEADER_BYTES + co.enc.size;
    if (status == ARITH_OK && *written > capacity)
        status = ARITH_OUTPUT_FULL;
    if (status == ARITH_OK && frame && frame->end)
        memcpy(frame->end, &t->models, sizeof t->models);
    walk_free(t);
    if (status != ARITH_OK)
        return status;
    out[0] = magic[0];
    out[1] = magic[1];
    out[2] = (uint8_t)(channels & 0xFF);
    out[3] = (uint8_t)(channels >> 8);
    return ARITH_OK;
}

int arith_decode_frame(const uint8_t *payload, size_t size, size_t height, size_t width, size_t channels,
                       const arith_frame *frame, int8_t *planes)
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
    status = walk_start(t, frame);
    coder co;
    decoder_init(&co.dec, payload + ARITH_HEADER_BYTES, size - ARITH_HEADER_BYTES);
    if (status == ARITH_OK)
        status = decode_rows(t, &co, planes);
    if (status == ARITH_OK && co.dec.pos > co.dec.size)
        status = ARITH_TRUNCATED;
    if (status == ARITH_OK && co.dec.pos < co.dec.size)
        status = ARITH_TRAILING;
    if (status == ARITH_OK && frame && frame->end)
        memcpy(frame->end, &t->models, sizeof t->models);
    walk_free(t);
    return status;
}

int arith_encode(const int8_t *latents, ptrdiff_t position_stride, ptrdiff_t channel_stride,
                 size_t height, size_t width, size_t channels,
                 uint8_t *out, size_t capacity, size_t *written)
{
    return arith_encode_frame(latents, position_stride, channel_stride, height, width, channels, NULL, out,
                              capacity, written);
}

int arith_decode(const uint8_t *payload, size_t size,
                 size_t height, size_t width, size_t channels, int8_t *planes)
{
    return arith_decode_frame(payload, size, height, width, channels, NULL, planes);
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
    case ARITH_BAD_STATE: return "start state is not one the coder leaves";
    case ARITH_BAD_SHIFT: return "reference shift exceeds 15";
    default: return "unknown error";
    }
}
