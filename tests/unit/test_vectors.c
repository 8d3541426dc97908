/*
 * Protocol test vectors (docs/PROTOCOL.md, "Test vectors").
 *
 * A whole pairing and a whole reconnect between two engines with fixed
 * inputs. Every message each side sends is compared byte for byte with
 * the pinned hex below, so any change to the wire protocol (or to the
 * randomness the engine draws) breaks this test, on purpose. Independently
 * of the engine, the test also re-derives the key schedule from the
 * document's description with libsodium primitives (CPace, transcript,
 * HKDF, signatures) and opens every record with the keys it derived.
 *
 * Inputs:
 *   identity keys: crypto_sign_seed_keypair(seed = 32 x 0x01) (initiator),
 *                  crypto_sign_seed_keypair(seed = 32 x 0x02) (responder)
 *   randomness:    one stream per side, byte i of the stream being byte i
 *                  of randombytes_buf_deterministic(N, seed) for any N > i
 *                  (= the ChaCha20-IETF keystream, key = seed, nonce =
 *                  "LibsodiumDRG", block counter 0), with seed = 32 x 0x11
 *                  (initiator) and 32 x 0x22 (responder). Every draw takes
 *                  the next bytes of the stream; the reconnect continues the
 *                  streams where the pairing left them. Each engine draws
 *                  32 bytes for its Hello nonce, then 32 bytes for its
 *                  CPace scalar (pairing) or X25519 secret (reconnect).
 *   code "123456", responder instance "Kitchen", initiator name "phone",
 *   responder name "Kitchen", max_message 1048576 on both sides.
 *   After OPEN the initiator sends DATA "hello", then the responder "world".
 *
 * PL_PRINT_VECTORS=1 prints every input, intermediate value and message
 * (Markdown, for the document) and skips the pinned comparisons;
 * PL_PRINT_VECTORS=c prints the pinned tables below as C.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>
#include <peerlink/conn.h>

#include "buf.h"
#include "engine.h"
#include "frame.h"
#include "record.h"
#include "peerlink.pb-c.h"

#define CODE "123456"
#define INSTANCE "Kitchen"
#define I_NAME "phone"
#define R_NAME "Kitchen"
#define MAX_FRAMES 8
#define MAX_FRAME 512

/* ---------------------------------------------------------------- pinned vectors */

typedef struct vec {
    const char *name;
    const char *hex;
} vec;

/* Generated with PL_PRINT_VECTORS=c; frames as they appear on the wire. */
static const vec PAIR_I[] = {
    {"Hello_I",
     "010100000000002c0a2a080110011880804022203ae051eadea65925b6b11051"
     "b9b2400fb6291ee568051e03dace16dfd6877c95"},
    {"PairStart",
     "01010000000000241a220a20048ecdfcbb9cfcd3419756b01d90f90e213caf91"
     "ba65a7862db6ef926b0bce4a"},
    {"Identity_I (record, hs i2r #0)",
     "0103000000000085ac0007e694abf709b691459654cee19e10842d7a29d0364a"
     "52f297dd77bdd8b1dff323785ad6d744e9383c631b85f8713c755c37e06a7cfd"
     "8917aa5f4906d311e067ecae5f0b929d61f8ebccd724c3fdb9e5ea85a896c961"
     "3aea866351eb6ed52890381eb41e735668d125d18f482d64cf7261627218dbdf"
     "b12eb84d6a079678ea39d34d8b"},
    {"DATA hello",
     "010300000000001d1ab2091fc7be9420f6ef309b75f7468c851ac44dfd7775ae"
     "bdd10c5637"},
};
static const vec PAIR_R[] = {
    {"Hello_R",
     "01010000000000350a33080110011880804022205ea8ef5e76e48e0000c35a76"
     "aff8b0ba268612853f6980755096c38a8815e8362a074b69746368656e"},
    {"PairReply",
     "010100000000002422220a20fc35f09ff75cc949dd45a9b46eacaa813f68c9c7"
     "9b55a2ff2b52e2c1d0797351"},
    {"Identity_R (record, hs r2i #0)",
     "0103000000000087d73861ba9b6be425a5c19785283ebd2e4d80c843e083d27a"
     "752232ed52935eceb80bef570b112f5daea64b2ea2e6127be4b9e830acdc71bd"
     "ad8cbec86e338e5b4a8dd87dcb35bf05c00e015283d376bea73201186a7dc486"
     "415971e792e8a511663a9f55565c7dffaddb4605b750b227771fc08451df0897"
     "2281c6e9805d76fe95c261b378b006"},
    {"Ready (record, app r2i #0)",
     "010300000000001af1ec7f8eb0ad659b5fdf3473a768525c0ebc0f1cee309c69"
     "df30"},
    {"DATA world",
     "010300000000001d40b2fe561f33d983441a61f64d0499ebf644388f0469624e"
     "3ea24057fc"},
};
static const vec RESUME_I[] = {
    {"Hello_I",
     "010100000000002c0a2a0801100118808040222059290604344b9473822dd32a"
     "03f2b247153421afbe07bc3b66742f813152123d"},
    {"ResumeStart",
     "01010000000000242a220a20f6873765e9104cc3950e17dc21fddac0acf85cbd"
     "794c14d264a4c88a0ac70a3d"},
    {"Identity_I (record, hs i2r #0)",
     "0103000000000085be1c044cb71466e456d9ac591bad1d17232d1c0f003e9e55"
     "a52c37471911603661882cfca61ea189d35f58eb45f2af38ae83e419897ad378"
     "a73c2ccdcab4e6ec33c04db58e22dda388c195246e8ea0017f4e2d26ad617356"
     "b428083f21f48ca5bc2565ef131127f22c286f2ab12cd0b58787605c5f29c728"
     "06096efa2b7997c709c5d28398"},
    {"DATA hello",
     "010300000000001d8cf60e072705e27c8c7c00c48518159b0ba8f9eb1f29a5dc"
     "b88aebffa3"},
};
static const vec RESUME_R[] = {
    {"Hello_R",
     "01010000000000350a3308011001188080402220c92a5faad39248eaf8ecdd2a"
     "66f69181f984d458fc48d6e0ffaf163e18d677292a074b69746368656e"},
    {"ResumeReply",
     "010100000000002432220a20d35d9cdcffd7dbe6f70ab57450d39d592db59444"
     "e4b3360fe32dc977d455f402"},
    {"Identity_R (record, hs r2i #0)",
     "01030000000000871b9dd439f07fdfa9e7b6a78e8eeb19cab14b5974ef3f856a"
     "9e0a79b8b5d8659d6da56cc4bbec2815688353222eeefd09624972827f436aae"
     "57b5a92e1463fec5f5012b73a06ed142ff14a0fc7979cf2385009571ce175bc8"
     "5202be5a8956ca95fc3b1e5fae2447e3af5cfc34606e3e8d44dbf66b003f70e1"
     "bfdba86922a7663e528cd631fbc867"},
    {"Ready (record, app r2i #0)",
     "010300000000001aa28e615efcba61a144b9a03099cc3d73fb8a85faf97462f2"
     "9f69"},
    {"DATA world",
     "010300000000001d3ef13eb92c33d8db7258044d10ea6acc215aca5243eb9829"
     "85edaf1527"},
};

/* ---------------------------------------------------------------- helpers */

static int print_mode; /* 0, 1 (Markdown) or 2 (C) */

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static void print_hex_block(const uint8_t *p, size_t n)
{
    char line[2 * 32 + 1];
    printf("```\n");
    for (size_t off = 0; off < n; off += 32) {
        size_t k = n - off < 32 ? n - off : 32;
        hex_of(p + off, k, line);
        printf("%s\n", line);
    }
    printf("```\n\n");
}

static void print_value(const char *name, const uint8_t *p, size_t n)
{
    if (print_mode != 1)
        return;
    printf("%s (%zu bytes):\n\n", name, n);
    print_hex_block(p, n);
}

/* One side's randomness: bytes off.. of the stream randombytes_buf_deterministic(seed). */
typedef struct stream {
    uint8_t seed[randombytes_SEEDBYTES];
    size_t off;
} stream;

static void stream_bytes(const uint8_t seed[randombytes_SEEDBYTES], size_t off, uint8_t *out, size_t n)
{
    uint8_t *tmp = malloc(off + n);
    assert_non_null(tmp);
    randombytes_buf_deterministic(tmp, off + n, seed);
    memcpy(out, tmp + off, n);
    sodium_memzero(tmp, off + n);
    free(tmp);
}

typedef struct vside {
    pl_engine e;
    pl_engine_hooks hooks;
    stream rnd;
    const uint8_t *known; /* responder: the paired initiator's id, or NULL */
    int end_result, end_calls, paired_calls;
    uint8_t paired_id[32];
    int opened, error;
    uint8_t got[64];
    size_t got_len;
    /* frames this side sent, in order */
    size_t nframes;
    uint8_t frame[MAX_FRAMES][MAX_FRAME];
    size_t frame_len[MAX_FRAMES];
} vside;

static void v_random(void *ctx, uint8_t *buf, size_t n)
{
    vside *s = ctx;
    stream_bytes(s->rnd.seed, s->rnd.off, buf, n);
    s->rnd.off += n;
}

static int v_pair_begin(void *ctx, const char **code)
{
    (void)ctx;
    *code = CODE;
    return PL_OK;
}

static void v_pair_end(void *ctx, int result)
{
    vside *s = ctx;
    s->end_calls++;
    s->end_result = result;
}

static int v_peer_known(void *ctx, const uint8_t id[32])
{
    vside *s = ctx;
    return s->known && memcmp(s->known, id, 32) == 0 ? PL_OK : PL_ERR_NOT_PAIRED;
}

static int v_peer_paired(void *ctx, const uint8_t id[32], const char *name)
{
    vside *s = ctx;
    (void)name;
    s->paired_calls++;
    memcpy(s->paired_id, id, 32);
    return PL_OK;
}

/* Take what `from` queued, frame by frame, into its log; feed it to `to`. */
static int move(vside *from, vside *to)
{
    size_t n = pl_buf_size(&from->e.out);
    if (n == 0)
        return 0;
    const uint8_t *p = pl_buf_head(&from->e.out);
    size_t pos = 0;
    while (pos < n) {
        size_t flen = 8 + ((size_t)p[pos + 4] << 24 | (size_t)p[pos + 5] << 16 | (size_t)p[pos + 6] << 8 |
                           p[pos + 7]);
        assert_true(pos + flen <= n);
        assert_true(from->nframes < MAX_FRAMES && flen <= MAX_FRAME);
        memcpy(from->frame[from->nframes], p + pos, flen);
        from->frame_len[from->nframes++] = flen;
        pos += flen;
    }
    pos = 0;
    while (pos < n) {
        size_t used = 0;
        pl_engine_event ev;
        int rc = pl_engine_receive(&to->e, p + pos, n - pos, &used, &ev);
        pos += used;
        if (rc < 0) {
            to->error = rc;
            break;
        }
        if (rc == 0)
            break;
        if (ev.type == PL_ENGINE_OPEN)
            to->opened++;
        else if (ev.type == PL_ENGINE_MESSAGE) {
            assert_true(ev.len <= sizeof to->got);
            memcpy(to->got, ev.data, ev.len);
            to->got_len = ev.len;
        } else
            fail();
    }
    pl_buf_consume(&from->e.out, n);
    return 1;
}

static void pump(vside *i, vside *r)
{
    while (move(i, r) | move(r, i))
        ;
}

static void v_init(vside *s, uint8_t seed_byte)
{
    memset(s, 0, sizeof *s);
    pl_engine_init(&s->e, 0);
    memset(s->rnd.seed, seed_byte, sizeof s->rnd.seed);
    s->hooks.pair_begin = v_pair_begin;
    s->hooks.pair_end = v_pair_end;
    s->hooks.peer_known = v_peer_known;
    s->hooks.peer_paired = v_peer_paired;
    s->hooks.random = v_random;
}

typedef struct keys {
    uint8_t pk_i[32], sk_i[64], pk_r[32], sk_r[64];
} keys;

static void make_keys(keys *k)
{
    uint8_t seed[32];
    memset(seed, 0x01, 32);
    crypto_sign_seed_keypair(k->pk_i, k->sk_i, seed);
    memset(seed, 0x02, 32);
    crypto_sign_seed_keypair(k->pk_r, k->sk_r, seed);
}

/* One connection: pairing (code) or reconnect. The streams continue from *off_i, *off_r. */
static void run(const keys *k, int pairing, size_t *off_i, size_t *off_r, vside *I, vside *R)
{
    v_init(I, 0x11);
    v_init(R, 0x22);
    I->rnd.off = *off_i;
    R->rnd.off = *off_r;
    R->known = k->pk_i;
    pl_engine_config ci = {0}, cr = {0};
    ci.initiator = 1;
    ci.identity_sk = k->sk_i;
    ci.name = I_NAME;
    ci.instance = INSTANCE;
    ci.code = pairing ? CODE : NULL;
    ci.expected_peer = pairing ? NULL : k->pk_r;
    ci.hooks = &I->hooks;
    ci.hooks_ctx = I;
    cr.identity_sk = k->sk_r;
    cr.name = R_NAME;
    cr.instance = INSTANCE;
    cr.hooks = &R->hooks;
    cr.hooks_ctx = R;
    assert_int_equal(pl_engine_configure(&I->e, &ci), PL_OK);
    assert_int_equal(pl_engine_configure(&R->e, &cr), PL_OK);
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R->e), PL_OK);
    pump(I, R);
    assert_int_equal(I->error, 0);
    assert_int_equal(R->error, 0);
    assert_int_equal(I->opened, 1);
    assert_int_equal(R->opened, 1);
    assert_int_equal(pl_engine_send(&I->e, "hello", 5), PL_OK);
    pump(I, R);
    assert_int_equal(pl_engine_send(&R->e, "world", 5), PL_OK);
    pump(I, R);
    assert_int_equal(R->got_len, 5);
    assert_memory_equal(R->got, "hello", 5);
    assert_int_equal(I->got_len, 5);
    assert_memory_equal(I->got, "world", 5);
    assert_int_equal(I->e.pairing, pairing);
    assert_int_equal(R->paired_calls, pairing);
    assert_int_equal(I->paired_calls, pairing);
    *off_i = I->rnd.off;
    *off_r = R->rnd.off;
}

/* ---------------------------------------------------------------- the spec, re-derived */

static void lv(crypto_hash_sha512_state *st, const void *p, size_t n)
{
    assert_true(n < 128); /* one-byte LEB128 lengths suffice here */
    uint8_t b = (uint8_t)n;
    crypto_hash_sha512_update(st, &b, 1);
    crypto_hash_sha512_update(st, p, n);
}

static void th_add(crypto_hash_sha512_state *st, const uint8_t *p, size_t n)
{
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_hash_sha512_update(st, len, 4);
    crypto_hash_sha512_update(st, p, n);
}

static void th_value(const crypto_hash_sha512_state *st, uint8_t out[64])
{
    crypto_hash_sha512_state copy = *st;
    crypto_hash_sha512_final(&copy, out);
}

static void hmac512(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len, uint8_t out[64])
{
    crypto_auth_hmacsha512_state st;
    crypto_auth_hmacsha512_init(&st, key, key_len);
    crypto_auth_hmacsha512_update(&st, msg, msg_len);
    crypto_auth_hmacsha512_final(&st, out);
}

/* HKDF-Expand(prk, label, 32): one block, HMAC(prk, label || 0x01), first 32 bytes. */
static void expand32(const uint8_t *prk, size_t prk_len, const char *label, uint8_t out[32])
{
    uint8_t info[64], t[64];
    size_t n = strlen(label);
    memcpy(info, label, n);
    info[n] = 0x01;
    hmac512(prk, prk_len, info, n + 1, t);
    memcpy(out, t, 32);
}

/* Open a RECORD frame with key/counter; returns the inner frame length. */
static size_t open_record(const uint8_t *frame, size_t flen, const uint8_t key[32], uint64_t counter,
                          uint8_t *inner)
{
    uint8_t nonce[12] = {0};
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
    assert_int_equal(frame[1], PL_FRAME_RECORD);
    unsigned long long mlen = 0;
    assert_int_equal(crypto_aead_chacha20poly1305_ietf_decrypt(inner, &mlen, NULL, frame + 8, flen - 8, frame, 8,
                                                               nonce, key),
                     0);
    return (size_t)mlen;
}

/* The Identity inside an opened record: check the signature; returns the
 * protobuf bytes (inner + 8) for the transcript. */
static size_t check_identity(const uint8_t *inner, size_t n, const uint8_t pk[32], const char *name, char role,
                             const uint8_t th[64])
{
    assert_true(n > 8);
    assert_int_equal(inner[1], PL_FRAME_CONTROL);
    Peerlink__Control *c = peerlink__control__unpack(NULL, n - 8, inner + 8);
    assert_non_null(c);
    assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_IDENTITY);
    assert_int_equal(c->identity->public_key.len, 32);
    assert_memory_equal(c->identity->public_key.data, pk, 32);
    assert_string_equal(c->identity->name, name);
    uint8_t msg[21 + 1 + 64];
    memcpy(msg, "peerlink v1 identity ", 21);
    msg[21] = (uint8_t)role;
    memcpy(msg + 22, th, 64);
    assert_int_equal(c->identity->signature.len, 64);
    assert_int_equal(crypto_sign_verify_detached(c->identity->signature.data, msg, sizeof msg, pk), 0);
    peerlink__control__free_unpacked(c, NULL);
    return n - 8;
}

static const uint8_t *hello_nonce(const uint8_t *frame, size_t flen, uint8_t out[32])
{
    Peerlink__Control *c = peerlink__control__unpack(NULL, flen - 8, frame + 8);
    assert_non_null(c);
    assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_HELLO);
    assert_int_equal(c->hello->nonce.len, 32);
    memcpy(out, c->hello->nonce.data, 32);
    peerlink__control__free_unpacked(c, NULL);
    return out;
}

/* The 32-byte field of a PairStart/PairReply/ResumeStart/ResumeReply frame. */
static void key_share(const uint8_t *frame, size_t flen, Peerlink__Control__MsgCase want, uint8_t out[32])
{
    Peerlink__Control *c = peerlink__control__unpack(NULL, flen - 8, frame + 8);
    assert_non_null(c);
    assert_int_equal(c->msg_case, want);
    ProtobufCBinaryData b = want == PEERLINK__CONTROL__MSG_PAIR_START    ? c->pair_start->cpace_y
                            : want == PEERLINK__CONTROL__MSG_PAIR_REPLY   ? c->pair_reply->cpace_y
                            : want == PEERLINK__CONTROL__MSG_RESUME_START ? c->resume_start->ephemeral
                                                                          : c->resume_reply->ephemeral;
    assert_int_equal(b.len, 32);
    memcpy(out, b.data, 32);
    peerlink__control__free_unpacked(c, NULL);
}

/*
 * Re-derive everything for one run from the messages on the wire, the
 * inputs and the document's definitions; open every record.
 * off_i/off_r: where the streams stood when this connection began.
 */
static void spec_check(const keys *k, int pairing, size_t off_i, size_t off_r, const vside *I, const vside *R)
{
    uint8_t rnd_i[64], rnd_r[64], seed_i[32], seed_r[32];
    memset(seed_i, 0x11, 32);
    memset(seed_r, 0x22, 32);
    stream_bytes(seed_i, off_i, rnd_i, 64);
    stream_bytes(seed_r, off_r, rnd_r, 64);
    uint8_t n_i[32], n_r[32];
    hello_nonce(I->frame[0], I->frame_len[0], n_i);
    hello_nonce(R->frame[0], R->frame_len[0], n_r);
    assert_memory_equal(n_i, rnd_i, 32);
    assert_memory_equal(n_r, rnd_r, 32);
    char label[128];
    snprintf(label, sizeof label, "nonce_I = initiator stream bytes %zu..%zu", off_i, off_i + 31);
    print_value(label, n_i, 32);
    snprintf(label, sizeof label, "nonce_R = responder stream bytes %zu..%zu", off_r, off_r + 31);
    print_value(label, n_r, 32);

    uint8_t secret[64];
    size_t secret_len;
    if (pairing) {
        /* sid = SHA-512("peerlink v1 sid" || nonce_I || nonce_R)[0..16] */
        uint8_t h[64], sid[16];
        crypto_hash_sha512_state st;
        crypto_hash_sha512_init(&st);
        crypto_hash_sha512_update(&st, (const uint8_t *)"peerlink v1 sid", 15);
        crypto_hash_sha512_update(&st, n_i, 32);
        crypto_hash_sha512_update(&st, n_r, 32);
        crypto_hash_sha512_final(&st, h);
        memcpy(sid, h, 16);
        /* CI = lv("peerlink v1") || lv(instance) */
        uint8_t ci[1 + 11 + 1 + sizeof INSTANCE - 1];
        ci[0] = 11;
        memcpy(ci + 1, "peerlink v1", 11);
        ci[12] = (uint8_t)(sizeof INSTANCE - 1);
        memcpy(ci + 13, INSTANCE, sizeof INSTANCE - 1);
        /* g = from_hash(SHA-512(lv(DSI) || lv(PRS) || lv(zpad) || lv(CI) || lv(sid))) */
        static const uint8_t zeros[128];
        size_t zpad = 128 - 1 - (1 + strlen(CODE)) - (1 + 17);
        crypto_hash_sha512_init(&st);
        lv(&st, "CPaceRistretto255", 17);
        lv(&st, CODE, strlen(CODE));
        lv(&st, zeros, zpad);
        lv(&st, ci, sizeof ci);
        lv(&st, sid, 16);
        crypto_hash_sha512_final(&st, h);
        uint8_t g[32], Ya[32], Yb[32], Ya_wire[32], Yb_wire[32], K[32], K2[32];
        crypto_core_ristretto255_from_hash(g, h);
        /* the scalars are the next 32 stream bytes, as libsodium's ristretto255 scalar mult takes them */
        assert_int_equal(crypto_scalarmult_ristretto255(Ya, rnd_i + 32, g), 0);
        assert_int_equal(crypto_scalarmult_ristretto255(Yb, rnd_r + 32, g), 0);
        key_share(I->frame[1], I->frame_len[1], PEERLINK__CONTROL__MSG_PAIR_START, Ya_wire);
        key_share(R->frame[1], R->frame_len[1], PEERLINK__CONTROL__MSG_PAIR_REPLY, Yb_wire);
        assert_memory_equal(Ya, Ya_wire, 32);
        assert_memory_equal(Yb, Yb_wire, 32);
        assert_int_equal(crypto_scalarmult_ristretto255(K, rnd_i + 32, Yb), 0);
        assert_int_equal(crypto_scalarmult_ristretto255(K2, rnd_r + 32, Ya), 0);
        assert_memory_equal(K, K2, 32);
        /* ISK = SHA-512(lv(DSI_ISK) || lv(sid) || lv(K) || lv(Ya) || lv(ADa) || lv(Yb) || lv(ADb)) */
        crypto_hash_sha512_init(&st);
        lv(&st, "CPaceRistretto255_ISK", 21);
        lv(&st, sid, 16);
        lv(&st, K, 32);
        lv(&st, Ya, 32);
        lv(&st, "", 0);
        lv(&st, Yb, 32);
        lv(&st, "", 0);
        crypto_hash_sha512_final(&st, secret);
        secret_len = 64;
        print_value("sid", sid, 16);
        print_value("CI = lv_cat(\"peerlink v1\", \"Kitchen\")", ci, sizeof ci);
        snprintf(label, sizeof label, "ya = initiator stream bytes %zu..%zu (CPace scalar)", off_i + 32, off_i + 63);
        print_value(label, rnd_i + 32, 32);
        snprintf(label, sizeof label, "yb = responder stream bytes %zu..%zu (CPace scalar)", off_r + 32, off_r + 63);
        print_value(label, rnd_r + 32, 32);
        print_value("Ya (PairStart.cpace_y)", Ya, 32);
        print_value("Yb (PairReply.cpace_y)", Yb, 32);
        print_value("g (CPace generator)", g, 32);
        print_value("K", K, 32);
        print_value("S = ISK", secret, 64);
    } else {
        uint8_t eI[32], eR[32], eI_wire[32], eR_wire[32], s2[32];
        crypto_scalarmult_base(eI, rnd_i + 32);
        crypto_scalarmult_base(eR, rnd_r + 32);
        key_share(I->frame[1], I->frame_len[1], PEERLINK__CONTROL__MSG_RESUME_START, eI_wire);
        key_share(R->frame[1], R->frame_len[1], PEERLINK__CONTROL__MSG_RESUME_REPLY, eR_wire);
        assert_memory_equal(eI, eI_wire, 32);
        assert_memory_equal(eR, eR_wire, 32);
        assert_int_equal(crypto_scalarmult(secret, rnd_i + 32, eR), 0);
        assert_int_equal(crypto_scalarmult(s2, rnd_r + 32, eI), 0);
        assert_memory_equal(secret, s2, 32);
        secret_len = 32;
        snprintf(label, sizeof label, "initiator X25519 secret = initiator stream bytes %zu..%zu", off_i + 32,
                 off_i + 63);
        print_value(label, rnd_i + 32, 32);
        snprintf(label, sizeof label, "responder X25519 secret = responder stream bytes %zu..%zu", off_r + 32,
                 off_r + 63);
        print_value(label, rnd_r + 32, 32);
        print_value("eI (ResumeStart.ephemeral)", eI, 32);
        print_value("eR (ResumeReply.ephemeral)", eR, 32);
        print_value("S = X25519(eI, eR)", secret, 32);
    }

    /* transcript: label, then u32 BE length || protobuf bytes of each handshake message */
    crypto_hash_sha512_state th;
    uint8_t th1[64], th2[64], th3[64], prk[64], prk2[64];
    crypto_hash_sha512_init(&th);
    crypto_hash_sha512_update(&th, (const uint8_t *)"peerlink v1 transcript", 22);
    th_add(&th, I->frame[0] + 8, I->frame_len[0] - 8);
    th_add(&th, R->frame[0] + 8, R->frame_len[0] - 8);
    th_add(&th, I->frame[1] + 8, I->frame_len[1] - 8);
    th_add(&th, R->frame[1] + 8, R->frame_len[1] - 8);
    th_value(&th, th1);
    hmac512(th1, 64, secret, secret_len, prk);
    uint8_t hs_i2r[32], hs_r2i[32], app_i2r[32], app_r2i[32], inner[MAX_FRAME];
    expand32(prk, 64, "peerlink hs i2r", hs_i2r);
    expand32(prk, 64, "peerlink hs r2i", hs_r2i);
    print_value("th1 = transcript hash after Hello_I, Hello_R, Start, Reply", th1, 64);
    print_value("PRK = HKDF-Extract(salt = th1, IKM = S)", prk, 64);
    print_value("k_hs_i2r = HKDF-Expand(PRK, \"peerlink hs i2r\", 32)", hs_i2r, 32);
    print_value("k_hs_r2i = HKDF-Expand(PRK, \"peerlink hs r2i\", 32)", hs_r2i, 32);

    size_t n = open_record(R->frame[2], R->frame_len[2], hs_r2i, 0, inner);
    size_t pn = check_identity(inner, n, k->pk_r, R_NAME, 'R', th1);
    print_value("Identity_R, opened (inner frame)", inner, n);
    th_add(&th, inner + 8, pn);
    th_value(&th, th2);
    print_value("th2 = transcript hash after Identity_R (signed by the initiator)", th2, 64);
    n = open_record(I->frame[2], I->frame_len[2], hs_i2r, 0, inner);
    pn = check_identity(inner, n, k->pk_i, I_NAME, 'I', th2);
    print_value("Identity_I, opened (inner frame)", inner, n);
    th_add(&th, inner + 8, pn);
    th_value(&th, th3);
    hmac512(th3, 64, secret, secret_len, prk2);
    expand32(prk2, 64, "peerlink app i2r", app_i2r);
    expand32(prk2, 64, "peerlink app r2i", app_r2i);
    print_value("th3 = transcript hash after Identity_I", th3, 64);
    print_value("PRK' = HKDF-Extract(salt = th3, IKM = S)", prk2, 64);
    print_value("k_app_i2r = HKDF-Expand(PRK', \"peerlink app i2r\", 32)", app_i2r, 32);
    print_value("k_app_r2i = HKDF-Expand(PRK', \"peerlink app r2i\", 32)", app_r2i, 32);

    /* Ready (r2i #0), "hello" (i2r #0), "world" (r2i #1) */
    static const uint8_t ready[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x4a, 0x00};
    n = open_record(R->frame[3], R->frame_len[3], app_r2i, 0, inner);
    assert_int_equal(n, sizeof ready);
    assert_memory_equal(inner, ready, sizeof ready);
    static const uint8_t hello[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
    n = open_record(I->frame[3], I->frame_len[3], app_i2r, 0, inner);
    assert_int_equal(n, sizeof hello);
    assert_memory_equal(inner, hello, sizeof hello);
    static const uint8_t world[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 'w', 'o', 'r', 'l', 'd'};
    n = open_record(R->frame[4], R->frame_len[4], app_r2i, 1, inner);
    assert_int_equal(n, sizeof world);
    assert_memory_equal(inner, world, sizeof world);
    /* and the engines hold the same keys */
    assert_memory_equal(I->e.tx.key, app_i2r, 32);
    assert_memory_equal(I->e.rx.key, app_r2i, 32);
    assert_memory_equal(R->e.tx.key, app_r2i, 32);
}

/* ---------------------------------------------------------------- comparison and printing */

static const char *const I_NAMES_PAIR[] = {"Hello_I", "PairStart", "Identity_I (record, hs i2r #0)",
                                           "DATA \"hello\" (record, app i2r #0)"};
static const char *const R_NAMES_PAIR[] = {"Hello_R", "PairReply", "Identity_R (record, hs r2i #0)",
                                           "Ready (record, app r2i #0)", "DATA \"world\" (record, app r2i #1)"};
static const char *const I_NAMES_RESUME[] = {"Hello_I", "ResumeStart", "Identity_I (record, hs i2r #0)",
                                             "DATA \"hello\" (record, app i2r #0)"};
static const char *const R_NAMES_RESUME[] = {"Hello_R", "ResumeReply", "Identity_R (record, hs r2i #0)",
                                             "Ready (record, app r2i #0)", "DATA \"world\" (record, app r2i #1)"};

static void print_frames(const char *dir, const vside *s, const char *const *names)
{
    for (size_t i = 0; i < s->nframes; i++) {
        if (print_mode == 1) {
            printf("%s %s (%zu bytes):\n\n", dir, names[i], s->frame_len[i]);
            print_hex_block(s->frame[i], s->frame_len[i]);
        }
    }
}

static void print_c(const char *table, const vside *s, const char *const *names)
{
    char hex[2 * MAX_FRAME + 1];
    printf("static const vec %s[] = {\n", table);
    for (size_t i = 0; i < s->nframes; i++) {
        hex_of(s->frame[i], s->frame_len[i], hex);
        printf("    {\"%s\",\n", names[i][0] == 'D' ? (names[i][6] == 'h' ? "DATA hello" : "DATA world")
                                                     : names[i]);
        size_t len = strlen(hex);
        for (size_t off = 0; off < len; off += 64)
            printf("     \"%.64s\"%s\n", hex + off, off + 64 >= len ? "}," : "");
    }
    printf("};\n");
}

static void compare(const vside *s, const vec *pinned, size_t count)
{
    char hex[2 * MAX_FRAME + 1];
    assert_int_equal(s->nframes, count);
    for (size_t i = 0; i < count; i++) {
        hex_of(s->frame[i], s->frame_len[i], hex);
        if (strcmp(hex, pinned[i].hex) != 0)
            fail_msg("%s differs:\n  got  %s\n  want %s", pinned[i].name, hex, pinned[i].hex);
    }
}

static void test_vectors(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    static vside I, R; /* large: not on the stack */
    size_t off_i = 0, off_r = 0;

    if (print_mode == 1) {
        printf("\n### Inputs\n\n");
        uint8_t seed[32];
        memset(seed, 0x01, 32);
        print_value("initiator Ed25519 seed", seed, 32);
        print_value("initiator public key (its id)", k.pk_i, 32);
        memset(seed, 0x02, 32);
        print_value("responder Ed25519 seed", seed, 32);
        print_value("responder public key (its id)", k.pk_r, 32);
        uint8_t s[128];
        memset(seed, 0x11, 32);
        stream_bytes(seed, 0, s, 128);
        print_value("initiator random stream, bytes 0..127 (seed 32 x 0x11)", s, 128);
        memset(seed, 0x22, 32);
        stream_bytes(seed, 0, s, 128);
        print_value("responder random stream, bytes 0..127 (seed 32 x 0x22)", s, 128);
        printf("\n### Pairing\n\n");
    }
    size_t start_i = off_i, start_r = off_r;
    run(&k, 1, &off_i, &off_r, &I, &R);
    assert_int_equal(off_i, 64);
    assert_int_equal(off_r, 64);
    assert_int_equal(R.end_calls, 1);
    assert_int_equal(R.end_result, PL_OK);
    assert_memory_equal(R.paired_id, k.pk_i, 32);
    assert_memory_equal(I.paired_id, k.pk_r, 32);
    assert_int_equal(I.nframes, 4);
    assert_int_equal(R.nframes, 5);
    spec_check(&k, 1, start_i, start_r, &I, &R);
    print_frames("I → R", &I, I_NAMES_PAIR);
    print_frames("R → I", &R, R_NAMES_PAIR);
    if (print_mode == 2) {
        print_c("PAIR_I", &I, I_NAMES_PAIR);
        print_c("PAIR_R", &R, R_NAMES_PAIR);
    }
    if (!print_mode) {
        compare(&I, PAIR_I, sizeof PAIR_I / sizeof PAIR_I[0]);
        compare(&R, PAIR_R, sizeof PAIR_R / sizeof PAIR_R[0]);
    }
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);

    if (print_mode == 1)
        printf("\n### Reconnect\n\n");
    start_i = off_i;
    start_r = off_r;
    run(&k, 0, &off_i, &off_r, &I, &R);
    assert_int_equal(off_i, 128);
    assert_int_equal(off_r, 128);
    assert_int_equal(R.end_calls, 0);
    assert_int_equal(I.nframes, 4);
    assert_int_equal(R.nframes, 5);
    spec_check(&k, 0, start_i, start_r, &I, &R);
    print_frames("I → R", &I, I_NAMES_RESUME);
    print_frames("R → I", &R, R_NAMES_RESUME);
    if (print_mode == 2) {
        print_c("RESUME_I", &I, I_NAMES_RESUME);
        print_c("RESUME_R", &R, R_NAMES_RESUME);
    }
    if (!print_mode) {
        compare(&I, RESUME_I, sizeof RESUME_I / sizeof RESUME_I[0]);
        compare(&R, RESUME_R, sizeof RESUME_R / sizeof RESUME_R[0]);
    }
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);
}

/* The comparison itself can fail: one changed input (the responder key) changes its messages. */
static void test_vectors_sensitive(void **state)
{
    (void)state;
    if (print_mode)
        skip();
    char hex[2 * MAX_FRAME + 1];
    keys k;
    make_keys(&k);
    uint8_t seed[32];
    memset(seed, 0x03, 32); /* another responder key: its Identity differs */
    crypto_sign_seed_keypair(k.pk_r, k.sk_r, seed);
    static vside I, R;
    size_t off_i = 0, off_r = 0;
    run(&k, 1, &off_i, &off_r, &I, &R);
    hex_of(I.frame[0], I.frame_len[0], hex);
    assert_string_equal(hex, PAIR_I[0].hex); /* the Hello does not depend on keys */
    hex_of(R.frame[2], R.frame_len[2], hex);
    assert_string_not_equal(hex, PAIR_R[2].hex);
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const char *p = getenv("PL_PRINT_VECTORS");
    print_mode = p && strcmp(p, "1") == 0 ? 1 : p && strcmp(p, "c") == 0 ? 2 : 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_vectors_sensitive),
    };
    return cmocka_run_group_tests_name("vectors", tests, NULL, NULL);
}
