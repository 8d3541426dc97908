/* SPDX-License-Identifier: ISC */
/*
 * Protocol test vectors (docs/PROTOCOL.md, "Test vectors").
 *
 * Five scenarios between engines with fixed inputs: a whole pairing, a
 * whole reconnect, the reconnect's session resumed on a third
 * connection after its link dropped, up to a clean close; a session
 * reset by a responder that lost it, with Ping, rekeying and a message
 * of two records, ended by Abort; and a pairing refused with an Error.
 * Every message
 * each side sends is compared byte for byte with the pinned hex below, so
 * any change to the wire protocol (or to the randomness the engine draws)
 * breaks this test, on purpose. Independently of the engine, the test
 * also re-derives the key schedule from the document's description with
 * libsodium primitives (CPace, transcript, HKDF, signatures, session id,
 * resume key and resume proof), opens every record with the keys it
 * derived, and compares each plaintext with the inner frame the document
 * specifies, built here by hand.
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
 *                  streams where the pairing left them, the resume where the
 *                  reconnect left them (the responder's new engine included).
 *                  Each engine draws, per connection, 32 bytes for its Hello
 *                  nonce, then 32 bytes for its CPace scalar (pairing) or
 *                  X25519 secret (reconnect, resume), and nothing else:
 *                  bytes 0..63 (pairing), 64..127 (reconnect), 128..191
 *                  (resume).
 *   code "123456", responder instance "Kitchen", initiator name "phone",
 *   responder name "Kitchen", max_message 1048576 on both sides.
 *   Pairing and reconnect (new engines each): after OPEN the initiator
 *   sends DATA "hello" (seq 0), then the responder "world" (seq 0).
 *   Resume, continuing the reconnect's engines: each side acknowledges
 *   what it received (pl_engine_ack: Ack{delivered = 1} both ways); the
 *   initiator sends DATA "again" (seq 1), and its bytes are lost: the link
 *   drops. The initiator calls pl_engine_relink() then pl_engine_start().
 *   The responder side is, as in the library, a new engine configured like
 *   the first (a listener's fresh handshake) whose find_session hook
 *   returns the first responder engine's stream, and which takes that
 *   stream with pl_engine_adopt() at its OPEN event. Identity_I carries
 *   SessionResume{session id, proof, delivered = 1}; Ready{resumed,
 *   delivered = 1}; the initiator sends "again" (seq 1) again; the
 *   responder acknowledges it (Ack{2}); each side sends EndOfStream
 *   (initiator seq 2, responder seq 1), then acknowledges the other's
 *   (Ack{2}, Ack{3}); both engines are done.
 *   Reset (new engines, rekey_interval 2 on both sides, bytes 192..255
 *   then 256..319): a reconnect; the initiator sends "lost" (seq 0) and
 *   the link drops with it. The initiator resumes (SessionResume,
 *   delivered 0) with a new responder engine that never had the session:
 *   Ready{} (a reset); "lost" again as seq 0 of the new session, a Ping,
 *   the responder's Ack{1}; a BIG_LEN-byte message (byte i = i mod 256,
 *   seq 1) in two records, Ack{2}; the initiator's Abort. Records: the
 *   initiator's keys are replaced twice, the responder's once.
 *   Error (new engines, bytes 320..383 and 320..351): the initiator
 *   pairs, the responder offers no pairing: Error{NOT_PAIRED} in clear.
 *   Secret (new engines, bytes 384..447 and 352..415): a pairing on a
 *   32-byte secret instead of a code, Metadata both ways, and the
 *   exporter's output re-derived from the document.
 *   Frames longer than 512 bytes are pinned (and shown) by their SHA-512.
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
#include <peerlink/session.h>

#include "buf.h"
#include "engine.h"
#include "frame.h"
#include "record.h"
#include "peerlink.pb-c.h"

#define CODE "123456"
/* The seventh connection's secret: the 32 bytes 00 01 .. 1f. */
static const uint8_t SECRET[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                   16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
/* Its metadata (TXT records in wire format) and exporter input. */
#define TXT_I "\x0bmodel=phone"
#define TXT_R "\x09model=kx1\x06rw=yes"
#define EXPORT_LABEL "EXAMPLE wifi-aware pmk"
#define EXPORT_CONTEXT "nan"
#define INSTANCE "Kitchen"
#define I_NAME "phone"
#define R_NAME "Kitchen"
#define MAX_FRAMES 16
#define MAX_FRAME (8 + 16384) /* a whole record */
#define SHOWN 512             /* frames and values longer than this are shown by their SHA-512 */
#define BIG_LEN 16353         /* the smallest application message that takes two records */

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
     "01030000000000251ab2091fc7be94289e8a5cf71a274dcc71b1e482c7d88696"
     "eea765f7aefc2fd699ac35fc30"},
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
     "010300000000002540b2fe561f33d98b3375139a29cae1afe0c18db164b34659"
     "6ed13956f61cb4f5213916cd07"},
};
static const vec RECONNECT_I[] = {
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
     "01030000000000258cf60e072705e274e4196ca8eadcf691843349512080562a"
     "d3cfe9c522191073ad74ef60d4"},
};
static const vec RECONNECT_R[] = {
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
     "01030000000000253ef13eb92c33d8d30537762174e9a2b972fe87dab9249fd8"
     "8b01a5c41376202445e74221df"},
};
static const vec RESUME_I[] = {
    {"Ack 1 (2nd connection, app i2r #1)",
     "010300000000001c3a5c406825cedbdfe8a1593c5f81079b76968c745b75c4e5"
     "6808c9ef"},
    {"DATA again (2nd connection, app i2r #2, lost)",
     "0103000000000025f28bb777dff64f57b97412cf1b62e37346ad1576c7b06262"
     "8f84f0f7c67da05a9d4f5e1c31"},
    {"Hello_I",
     "010100000000002c0a2a08011001188080402220a8b2be81e4af5c5c3f197fe8"
     "35aa02742e69a5ffc8d4245c32f98f5666e861b8"},
    {"ResumeStart",
     "01010000000000242a220a20052bed90b15535cde1e8a34eb651840e02962f6b"
     "df5790b0bd4a5d0da73ba934"},
    {"Identity_I with SessionResume (record, hs i2r #0)",
     "01030000000000be6958663655bf2eb54e40df2f32fee1e2f501c07f7929e8d1"
     "c8c399231e411a8f555fe0cc74b402da0842cfd59abca10eb7181b21df3632e0"
     "16957bafa45bd510f46b22748cfeaaf7cac373c62a3a8d0d5de659ad5469c10b"
     "5616114f40f6cac12520f19be1aba87c59d3686200539bb365cc2be41f959740"
     "3164c323ccac1b04acde78628c4a5f0e348cd71ab6fbef79a6c1e2afa5c8689f"
     "97f2616ceec8954e2b48d5b27dbf541c83de76c868f6b3145ec4b2f869889bd7"
     "af8a572c0808"},
    {"DATA again (record, app i2r #0)",
     "01030000000000256c247e90de4abbff84d7ec7d8bc4f9120277ce534d3e4c46"
     "33c015a280dc7ad60795c29d75"},
    {"EndOfStream 2 (record, app i2r #1)",
     "010300000000001c7acd52ff6fb916218ad21b06162dbd33d2e561a964ab2f0c"
     "4adc7290"},
    {"Ack 2 (record, app i2r #2)",
     "010300000000001cd251b5b1884568221fe147c35403a371e496ce056b2c6547"
     "b216738e"},
};
static const vec RESUME_R[] = {
    {"Ack 1 (2nd connection, app r2i #2)",
     "010300000000001ccdd7af20d680726460cefc2c4383cf3502a6abb40da10657"
     "2ac0b7cf"},
    {"Hello_R",
     "01010000000000350a3308011001188080402220ba7bcd743575b3b30e1dd3cb"
     "5b97bf2e520e7f773a038b899a1db1226d91581f2a074b69746368656e"},
    {"ResumeReply",
     "010100000000002432220a20d61aaa306d73ecf4c3b30046660e3be1af7398ef"
     "63e48155dc412be4f438fb4a"},
    {"Identity_R (record, hs r2i #0)",
     "010300000000008758f4e070ba110ba004794be20d74a1220e19aafa169146af"
     "c9ae1eb0651bf05207790d6990a2c32ce06409dd91e2875bc1098b8e0a6fca0d"
     "82bcc043fd476ae1283e46cf112d7e048befd55f391433aecef5ae4912e0d158"
     "40da3b93e40b447c4f1bf31dac64622023f05483054355c425a141b62e5a3928"
     "e4c27e5e5f192c474a0b46571487e8"},
    {"Ready resumed (record, app r2i #0)",
     "010300000000001e46f81798d852e67ac5d6e2cb912fa3fa7359b5dde202b74b"
     "35f7318494f1"},
    {"Ack 2 (record, app r2i #1)",
     "010300000000001ce0793d9c6db94c69433bf2123577acff2cb7c187ed713f39"
     "12f05909"},
    {"EndOfStream 1 (record, app r2i #2)",
     "010300000000001caf3d272991281fe7684e574d8ccc28708d6fe318103f3731"
     "ea6df789"},
    {"Ack 3 (record, app r2i #3)",
     "010300000000001c1b5ec5d34c71e8a962ae98de0b0d821e1089d3aebacae325"
     "d897d976"},
};

static const vec RESET_I[] = {
    {"Hello_I (4th connection)",
     "010100000000002c0a2a080110011880804022200e9c474bc5d66aaebd26e8b4"
     "04b3293083199b6f79d51dbc4e8f57cb6497278e"},
    {"ResumeStart (4th connection)",
     "01010000000000242a220a200ac443fa70ce90d86c31d41e67a879646e26ac5e"
     "98a99f4c2313108022b35f08"},
    {"Identity_I (4th connection, hs i2r #0)",
     "010300000000008530d3588249b9841e9623e135866257e76433fa1a7ddf3a7d"
     "21f38d5d30077b597667558773090e62c4f00299d8056630504ab43d55d5af9b"
     "b093672998e642253dfc5c019dd82031fd0262babf3f4975dd2c12b653be7b9a"
     "2d62a955269370a5e6af1062dbdeadd696ee6c34997d555a1cac1bede4fe6e5b"
     "090e2790d0441721e3eef1a331"},
    {"DATA lost (4th connection, app i2r #0, lost)",
     "010300000000002430d2bd9b1387525ffaf59ad9b2ff150514955ec7ec2abe0e"
     "6cc541e96abff610b638d0d9"},
    {"Hello_I",
     "010100000000002c0a2a08011001188080402220a996fedfab467c5f67046656"
     "b9d75cc615e0d9c21e32ba8a67124e0259dddefb"},
    {"ResumeStart",
     "01010000000000242a220a203a5ea123f7074714e7478757635d93c4a57aba86"
     "e180653327cb7f5da86caf34"},
    {"Identity_I with SessionResume (record, hs i2r #0)",
     "01030000000000bcf521f56b1877e8247b36a8be810010183dd5a1078511a1f4"
     "af8aac6cb7d0e4770fa4f9f7f0cc06733d5efebb63f0b2f2dac4f2ba4f9a0edd"
     "0356eb61866eae70a0bb31c957dabe63749b54a4e3021c08292c3e51981192da"
     "b2eed6c286325da04403e8fbcbc467dd32eb961f33b1775c9252082fb93653c1"
     "0e0a092872e7eb3775ce8cd2c64426537bcf0ccb2d1f0daf1c0b2baffc31579b"
     "62838b791f0675eaaff00259b1870456fcb2204c77c23690e40e00d7076ac2bb"
     "9a935ec1"},
    {"DATA lost (record, app i2r #0)",
     "010300000000002484d657f7b93f0906b1f7c49764160b648bfab5c1fa66b869"
     "15748b3693ebb257430212a2"},
    {"Ping (record, app i2r #1)",
     "010300000000001a50860d2482294db04f0fff5e6a67d0b14a014c3096ad962f"
     "cb24"},
    {"DATA big part 1 (record, app i2r' #0)",
     "sha512:e1a778d82daaffd2276d108145234790a9b3ac2138a404e890fad131d"
     "1a6dfcee296d8df03672da988ef7aca886914e43935abd2905865d27356781a9"
     "6fd6d8d"},
    {"DATA big part 2 (record, app i2r' #1)",
     "0103000000000019742f9e146122d55401b68724ae0c70b6c8d33742a376fe87"
     "d1"},
    {"Abort (record, app i2r'' #0)",
     "010300000000001a2e41fe42c266f9044a96cdfcbd4540d5582cf38a65934d48"
     "572d"},
};
static const vec RESET_R4[] = {
    {"Hello_R (4th connection)",
     "01010000000000350a33080110011880804022200e34418777c30c48f1a1bea7"
     "42494095bfddf8bf9e6bde4fa041194de38e50f22a074b69746368656e"},
    {"ResumeReply (4th connection)",
     "010100000000002432220a206783ac6307b02ee33fa4d01624b0d5e68117b3e1"
     "4f99939e9e0f0746ebde2563"},
    {"Identity_R (4th connection, hs r2i #0)",
     "01030000000000874472de73e3a6b0500cb3ff7e4b88c4df3e847e8556e6f00c"
     "08ea4036d6101dfd18d3e662bd0e5f94716afb9491bdca11dcc21dff38331829"
     "04fdb979fc6709e653a3f0fd863193ab4ab650903696a5f9a221e05b5867f51d"
     "b5662a7be679ad97618870c19aff12457c7c9b067654e32751e82257877fb994"
     "46216b17c839ddcebcd796088b9c3d"},
    {"Ready (4th connection, app r2i #0)",
     "010300000000001a2912a407e1643ff1f500559aaaebb16cba9c8b06410c0718"
     "e1cc"},
};
static const vec RESET_R[] = {
    {"Hello_R",
     "01010000000000350a3308011001188080402220d08bad70e2e59ab8c0363cf1"
     "961bde9f360fffa71b74b16f1694324e82a6733f2a074b69746368656e"},
    {"ResumeReply",
     "010100000000002432220a2016dd9996f2cb85bcb1fbd285a8e763deb712b2cb"
     "0df04ade0c7337c951ab1a3f"},
    {"Identity_R (record, hs r2i #0)",
     "01030000000000877f86a23377c15fb30d916d6c85fac77a475287db6b6d40ae"
     "7414ffe3e17236ce8aa2845e3732fad2a1192c5f152cf6c959eb527d269b99b7"
     "d6c807768faa0cc19606849c81f9a95450a3f65e5e9908b8bc71d1fd8608d3ae"
     "36bd4be3ddab3e057926f0fa7ace9bac155dcb9f8372acd14dc768483db19edf"
     "a07d74dd987808d3af2b99ba36aef0"},
    {"Ready reset (record, app r2i #0)",
     "010300000000001ab7ce820bcbe648e4104f43c08a297c63fd0a9530a898b7cd"
     "8dc7"},
    {"Ack 1 (record, app r2i #1)",
     "010300000000001c1da795868e2939a78bb5882d30e6e34d103e9917b4d787c7"
     "006c401b"},
    {"Ack 2 (record, app r2i' #0)",
     "010300000000001c89a05bcb093118bc86f338a99851440052a54a7f8ce8411d"
     "face3118"},
};
static const vec ERROR_I[] = {
    {"Hello_I",
     "010100000000002c0a2a08011001188080402220c71db54416647fb8af16a29e"
     "8fbfc498624fdddddce8f76193e58fc3fbf6a69f"},
    {"PairStart",
     "01010000000000241a220a2028055c67c7d1859973c78910192f18df0976df06"
     "bbe2133a8e84735e908d9577"},
};
static const vec ERROR_R[] = {
    {"Hello_R",
     "01010000000000350a33080110011880804022208700898d0ca2cc4cf25ae706"
     "21aedbd5b21a011d346d442a4561bd89e9f1decc2a074b69746368656e"},
    {"Error NOT_PAIRED",
     "010100000000000442020802"},
};
static const vec SECRET_I[] = {
    {"Hello_I",
     "010100000000002c0a2a08011001188080402220bee5da62738f79c27017fad5"
     "04ec4a467d62e1adc20aba7593e6683d7fa1564c"},
    {"PairStart",
     "01010000000000241a220a20ac435a5e9f4612c70fdd2ec2e63ec4ede370b0dd"
     "8a20a1a2a4a2f995887c1c47"},
    {"Identity_I (record, hs i2r #0)",
     "010300000000008511251d5cb6c198a0fc69b666a373d0db282822fe7ac9fce2"
     "d7283f462c7b7f8598f169aae5651eb39f1b82a96317911349e498d245e582e9"
     "3bab8fb3f2e0cd11da406befc8edd6d596029e9bc48faf1e8ebb28bcc71e91ac"
     "88aaf4180e4711bb1131dbdefd343027a4bebc6cade39ede3b52e42efd7a6b32"
     "fd35ea283e159ffde6f3a05ed2"},
    {"Metadata_I (record, app i2r #0)",
     "0103000000000028cda0ddb599574bbd656900ebfb27446d7b40499709db087f"
     "684cafa6ec13931389b43a95e2d4e018"},
};
static const vec SECRET_R[] = {
    {"Hello_R",
     "01010000000000350a33080110011880804022203e4f4dcb41c1018244fff762"
     "c6232fcce1e030fbd8322e974cb90a1eba474d9d2a074b69746368656e"},
    {"PairReply",
     "010100000000002422220a200cabcc4d8e6ffcb8ee0e005c5c6d3f15b0046f97"
     "c56272cf2e70a8f97e29d571"},
    {"Identity_R (record, hs r2i #0)",
     "0103000000000087c2944e3934428a4d3102449baa15f6ceb0c36656331f39c1"
     "305192669caaa66e7e91a23121a37daf011c989a82bae8fbb3f0d1c2587ddf4d"
     "60fe0bc5157cb84945adc0ec032528fb3a734cdda93c5d66561f0bbaea8e0bce"
     "983e02287344c45369eec6dd0025539f1ee8b90c2c0fce14ca0f2c722caf5338"
     "b8c827814dce600020ca50f43a006b"},
    {"Ready (record, app r2i #0)",
     "010300000000001a88a9dd0f6ab21f9253511800547b77f88c608c0400ebd747"
     "94fe"},
    {"Metadata_R (record, app r2i #1)",
     "010300000000002d90fbf9bcbdd1e6db69f94b102c67648e9cf83aaedd5c2ac2"
     "bd757111f13e185031bcd2fa0f8db58793cd9b35da"},
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
    if (n > SHOWN) {
        uint8_t h[crypto_hash_sha512_BYTES];
        crypto_hash_sha512(h, p, n);
        printf("%s (%zu bytes), its SHA-512:\n\n", name, n);
        print_hex_block(h, sizeof h);
        return;
    }
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
    int no_pairing;       /* responder: pair_begin says no pairing is offered */
    int with_secret;      /* responder: pair_begin gives SECRET, not CODE */
    uint8_t txt[64];      /* the peer's metadata (the last PEER_TXT event) */
    size_t txt_len;
    int end_result, end_calls, paired_calls;
    uint8_t paired_id[32];
    int opened, error;
    uint8_t got[BIG_LEN]; /* the last message delivered */
    size_t got_len;
    int nmsgs, eofs, acks; /* MESSAGE, PEER_EOF and ACKED events */
    uint64_t acked;        /* the last ACKED event's seq */
    /* responder of a resumed connection: the engine holding the session */
    pl_engine *old;
    int find_calls, adopted;
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

static int v_pair_begin(void *ctx, pl_pair_key *key)
{
    const vside *s = ctx;
    if (s->no_pairing)
        return PL_ERR_NOT_PAIRED;
    *key = s->with_secret ? (pl_pair_key){SECRET, sizeof SECRET, 1}
                          : (pl_pair_key){(const uint8_t *)CODE, strlen(CODE), 0};
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

/* As a listener does: the session with this id, from this peer, if we hold it. */
static const pl_stream *v_find_session(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE], const uint8_t peer_id[32])
{
    vside *s = ctx;
    s->find_calls++;
    if (!s->old || !s->old->st.established || memcmp(s->old->st.id, id, PL_SESSION_ID_SIZE) != 0 ||
        memcmp(s->old->peer_id, peer_id, 32) != 0)
        return NULL;
    return &s->old->st;
}

/* Log the frames `from` queued; returns how many bytes that is. */
static size_t log_frames(vside *from)
{
    size_t n = pl_buf_size(&from->e.out);
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
    return n;
}

/* Take what `from` queued, frame by frame, into its log; feed it to `to`. */
static int move(vside *from, vside *to)
{
    size_t n = log_frames(from);
    if (n == 0)
        return 0;
    const uint8_t *p = pl_buf_head(&from->e.out);
    size_t pos = 0;
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
        if (ev.type == PL_ENGINE_OPEN) {
            to->opened++;
            /* A listener's engine that continues a session takes its stream at once. */
            if (to->old && to->e.resumed) {
                assert_int_equal(pl_engine_adopt(&to->e, &to->old->st), PL_OK);
                to->adopted++;
            }
        } else if (ev.type == PL_ENGINE_MESSAGE) {
            assert_true(ev.len <= sizeof to->got);
            memcpy(to->got, ev.data, ev.len);
            to->got_len = ev.len;
            to->nmsgs++;
        } else if (ev.type == PL_ENGINE_PEER_EOF) {
            to->eofs++;
        } else if (ev.type == PL_ENGINE_ACKED) {
            to->acks++;
            to->acked = ev.seq;
        } else if (ev.type == PL_ENGINE_PEER_TXT) {
            assert_true(ev.len <= sizeof to->txt);
            memcpy(to->txt, ev.data, ev.len);
            to->txt_len = ev.len;
        } else {
            fail();
        }
    }
    pl_buf_consume(&from->e.out, n);
    return 1;
}

/* The link drops: what `from` queued is logged and lost. */
static void drop(vside *from)
{
    pl_buf_consume(&from->e.out, log_frames(from));
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
    s->hooks.find_session = v_find_session;
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

static void configure_responder(const keys *k, vside *R)
{
    pl_engine_config cr = {0};
    R->known = k->pk_i;
    cr.identity_sk = k->sk_r;
    cr.name = R_NAME;
    cr.instance = INSTANCE;
    cr.hooks = &R->hooks;
    cr.hooks_ctx = R;
    assert_int_equal(pl_engine_configure(&R->e, &cr), PL_OK);
}

/* New engines for a connection, the streams from off_i and off_r: the
 * initiator pairs with code or secret (secret_len bytes), else reconnects. */
static void new_pair(const keys *k, size_t off_i, size_t off_r, const char *code, const uint8_t *secret,
                     size_t secret_len, vside *I, vside *R)
{
    v_init(I, 0x11);
    v_init(R, 0x22);
    I->rnd.off = off_i;
    R->rnd.off = off_r;
    pl_engine_config ci = {0};
    ci.initiator = 1;
    ci.identity_sk = k->sk_i;
    ci.name = I_NAME;
    ci.instance = INSTANCE;
    ci.code = code;
    ci.secret = secret;
    ci.secret_len = secret_len;
    ci.expected_peer = code || secret ? NULL : k->pk_r;
    ci.hooks = &I->hooks;
    ci.hooks_ctx = I;
    assert_int_equal(pl_engine_configure(&I->e, &ci), PL_OK);
    configure_responder(k, R);
}

/* One connection: pairing (code) or reconnect. The streams continue from *off_i, *off_r. */
static void run(const keys *k, int pairing, size_t *off_i, size_t *off_r, vside *I, vside *R)
{
    new_pair(k, *off_i, *off_r, pairing ? CODE : NULL, NULL, 0, I, R);
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R->e), PL_OK);
    pump(I, R);
    assert_int_equal(I->error, 0);
    assert_int_equal(R->error, 0);
    assert_int_equal(I->opened, 1);
    assert_int_equal(R->opened, 1);
    assert_int_equal(pl_engine_send(&I->e, "hello", 5, 0), PL_OK);
    pump(I, R);
    assert_int_equal(pl_engine_send(&R->e, "world", 5, 0), PL_OK);
    pump(I, R);
    assert_int_equal(R->got_len, 5);
    assert_memory_equal(R->got, "hello", 5);
    assert_int_equal(I->got_len, 5);
    assert_memory_equal(I->got, "world", 5);
    assert_int_equal(I->nmsgs, 1);
    assert_int_equal(R->nmsgs, 1);
    assert_int_equal(I->e.pairing, pairing);
    assert_int_equal(R->paired_calls, pairing);
    assert_int_equal(I->paired_calls, pairing);
    assert_int_equal(I->e.resumed | R->e.resumed | I->e.reset, 0);
    assert_int_equal(R->find_calls, 0); /* a new session: nothing to continue */
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

/* HKDF-Expand(prk, info = label || ctx, n) for n <= 64: one block,
 * HMAC(prk, label || ctx || 0x01), first n bytes. */
static void expand(const uint8_t *prk, size_t prk_len, const char *label, const uint8_t *ctx, size_t ctx_len,
                   uint8_t *out, size_t n)
{
    uint8_t info[128], t[64];
    size_t l = strlen(label);
    assert_true(l + ctx_len + 1 <= sizeof info && n <= 64);
    memcpy(info, label, l);
    if (ctx_len)
        memcpy(info + l, ctx, ctx_len);
    info[l + ctx_len] = 0x01;
    hmac512(prk, prk_len, info, l + ctx_len + 1, t);
    memcpy(out, t, n);
}

static void expand32(const uint8_t *prk, size_t prk_len, const char *label, uint8_t out[32])
{
    expand(prk, prk_len, label, NULL, 0, out, 32);
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

/* The inner frames the document specifies, built by hand: header
 * (version 1, type, flags 0, reserved 0, u32be length) || payload. */
static size_t inner_of(uint8_t *out, uint8_t type, const uint8_t *payload, size_t n)
{
    const uint8_t h[8] = {1, type, 0, 0, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(out, h, 8);
    memcpy(out + 8, payload, n);
    return 8 + n;
}

/* A DATA message: u64be(seq) || the application bytes. */
static size_t data_of(uint8_t *out, uint64_t seq, const char *text)
{
    uint8_t p[64];
    size_t n = strlen(text);
    assert_true(8 + n <= sizeof p);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(seq >> (56 - 8 * i));
    memcpy(p + 8, text, n);
    return inner_of(out, PL_FRAME_DATA, p, 8 + n);
}

/* A CONTROL message Control{<member>{1: a, 2: b}} with small varint fields
 * (proto3: a zero is omitted). Members: 2 EndOfStream{seq}, 9
 * Ready{resumed, delivered}, 10 Ack{delivered}. */
static size_t control_of(uint8_t *out, unsigned member, unsigned a, unsigned b)
{
    uint8_t p[8];
    size_t n = 2;
    assert_true(a < 128 && b < 128);
    p[0] = (uint8_t)(member << 3 | 2); /* field member, length-delimited */
    if (a) {
        p[n++] = 0x08; /* field 1, varint */
        p[n++] = (uint8_t)a;
    }
    if (b) {
        p[n++] = 0x10; /* field 2, varint */
        p[n++] = (uint8_t)b;
    }
    p[1] = (uint8_t)(n - 2);
    return inner_of(out, PL_FRAME_CONTROL, p, n);
}

/* A CONTROL message Control{metadata{txt}}: Control field 13 (0x6a),
 * Metadata field 1 (0x0a); txt shorter than 126 bytes. */
static size_t metadata_of(uint8_t *out, const char *txt, size_t len)
{
    uint8_t p[128];
    assert_true(len + 4 <= sizeof p && len + 2 < 128);
    p[0] = 0x6a;
    p[1] = (uint8_t)(2 + len);
    p[2] = 0x0a;
    p[3] = (uint8_t)len;
    memcpy(p + 4, txt, len);
    return inner_of(out, PL_FRAME_CONTROL, p, 4 + len);
}

#define EOS(seq) 2, (seq), 0
#define READY(resumed, delivered) 9, (resumed), (delivered)
#define ACK(delivered) 10, (delivered), 0

/* A record must open under key/counter to exactly the inner frame want. */
static void expect_record(const char *label, const uint8_t *frame, size_t flen, const uint8_t key[32],
                          uint64_t counter, const uint8_t *want, size_t want_len)
{
    uint8_t inner[MAX_FRAME];
    size_t n = open_record(frame, flen, key, counter, inner);
    assert_int_equal(n, want_len);
    assert_memory_equal(inner, want, want_len);
    char name[160];
    snprintf(name, sizeof name, "%s, opened (inner frame)", label);
    print_value(name, inner, n);
}

/* What the initiator's Identity must carry to continue a session. */
typedef struct resume_req {
    const uint8_t *session_id; /* 16 bytes */
    const uint8_t *proof;      /* 32 bytes */
    uint64_t delivered;
} resume_req;

/* The Identity inside an opened record: check the signature, and the
 * SessionResume (res) or its absence; returns the protobuf bytes
 * (inner + 8) for the transcript. */
static size_t check_identity(const uint8_t *inner, size_t n, const uint8_t pk[32], const char *name, char role,
                             const uint8_t th[64], const resume_req *res)
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
    if (!res) {
        assert_null(c->identity->resume);
    } else {
        const Peerlink__SessionResume *r = c->identity->resume;
        assert_non_null(r);
        assert_int_equal(r->session_id.len, 16);
        assert_memory_equal(r->session_id.data, res->session_id, 16);
        assert_int_equal(r->proof.len, 32);
        assert_memory_equal(r->proof.data, res->proof, 32);
        assert_int_equal(r->delivered, res->delivered);
    }
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

/* What one connection's handshake yields, re-derived. */
typedef struct derived {
    uint8_t app_i2r[32], app_r2i[32];
    uint8_t session_id[16], resume_key[32], exporter[32]; /* what a new session takes from this connection */
} derived;

/* The session a resuming initiator continues (NULL: none). */
typedef struct resume_in {
    const uint8_t *session_id, *resume_key;
    uint64_t delivered; /* the initiator's next sequence number to deliver */
} resume_in;

/*
 * Re-derive one connection's handshake from the messages on the wire,
 * the inputs and the document's definitions; open both Identities.
 * off_i/off_r: where the streams stood when this connection began.
 * The handshake's frames are I->frame[bi..] and R->frame[br..].
 */
static void spec_check(const keys *k, int pairing, size_t off_i, size_t off_r, const vside *I, size_t bi,
                       const vside *R, size_t br, const resume_in *res, derived *d)
{
#define FI(j) I->frame[bi + (j)], I->frame_len[bi + (j)]
#define FR(j) R->frame[br + (j)], R->frame_len[br + (j)]
    uint8_t rnd_i[64], rnd_r[64], seed_i[32], seed_r[32];
    memset(seed_i, 0x11, 32);
    memset(seed_r, 0x22, 32);
    stream_bytes(seed_i, off_i, rnd_i, 64);
    stream_bytes(seed_r, off_r, rnd_r, 64);
    uint8_t n_i[32], n_r[32];
    hello_nonce(FI(0), n_i);
    hello_nonce(FR(0), n_r);
    assert_memory_equal(n_i, rnd_i, 32);
    assert_memory_equal(n_r, rnd_r, 32);
    char label[160];
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
        /* CI = lv("peerlink v1") || lv(instance), or lv("peerlink v1 secret") || lv(instance) */
        const char *ci_label = pairing == 2 ? "peerlink v1 secret" : "peerlink v1";
        const uint8_t *prs = pairing == 2 ? SECRET : (const uint8_t *)CODE;
        size_t prs_len = pairing == 2 ? sizeof SECRET : strlen(CODE), cl = strlen(ci_label);
        uint8_t ci[1 + 18 + 1 + sizeof INSTANCE - 1];
        size_t ci_len = 1 + cl + 1 + sizeof INSTANCE - 1;
        ci[0] = (uint8_t)cl;
        memcpy(ci + 1, ci_label, cl);
        ci[1 + cl] = (uint8_t)(sizeof INSTANCE - 1);
        memcpy(ci + 2 + cl, INSTANCE, sizeof INSTANCE - 1);
        /* g = from_hash(SHA-512(lv(DSI) || lv(PRS) || lv(zpad) || lv(CI) || lv(sid))) */
        static const uint8_t zeros[128];
        size_t zpad = 128 - 1 - (1 + prs_len) - (1 + 17);
        crypto_hash_sha512_init(&st);
        lv(&st, "CPaceRistretto255", 17);
        lv(&st, prs, prs_len);
        lv(&st, zeros, zpad);
        lv(&st, ci, ci_len);
        lv(&st, sid, 16);
        crypto_hash_sha512_final(&st, h);
        uint8_t g[32], Ya[32], Yb[32], Ya_wire[32], Yb_wire[32], K[32], K2[32];
        crypto_core_ristretto255_from_hash(g, h);
        /* the scalars are the next 32 stream bytes, as libsodium's ristretto255 scalar mult takes them */
        assert_int_equal(crypto_scalarmult_ristretto255(Ya, rnd_i + 32, g), 0);
        assert_int_equal(crypto_scalarmult_ristretto255(Yb, rnd_r + 32, g), 0);
        key_share(FI(1), PEERLINK__CONTROL__MSG_PAIR_START, Ya_wire);
        key_share(FR(1), PEERLINK__CONTROL__MSG_PAIR_REPLY, Yb_wire);
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
        if (pairing == 2)
            print_value("PRS = the secret", SECRET, sizeof SECRET);
        print_value(pairing == 2 ? "CI = lv_cat(\"peerlink v1 secret\", \"Kitchen\")"
                                 : "CI = lv_cat(\"peerlink v1\", \"Kitchen\")",
                    ci, ci_len);
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
        key_share(FI(1), PEERLINK__CONTROL__MSG_RESUME_START, eI_wire);
        key_share(FR(1), PEERLINK__CONTROL__MSG_RESUME_REPLY, eR_wire);
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
    th_add(&th, I->frame[bi] + 8, I->frame_len[bi] - 8);
    th_add(&th, R->frame[br] + 8, R->frame_len[br] - 8);
    th_add(&th, I->frame[bi + 1] + 8, I->frame_len[bi + 1] - 8);
    th_add(&th, R->frame[br + 1] + 8, R->frame_len[br + 1] - 8);
    th_value(&th, th1);
    hmac512(th1, 64, secret, secret_len, prk);
    uint8_t hs_i2r[32], hs_r2i[32], inner[MAX_FRAME];
    expand32(prk, 64, "peerlink hs i2r", hs_i2r);
    expand32(prk, 64, "peerlink hs r2i", hs_r2i);
    print_value("th1 = transcript hash after Hello_I, Hello_R, Start, Reply", th1, 64);
    print_value("PRK = HKDF-Extract(salt = th1, IKM = S)", prk, 64);
    print_value("k_hs_i2r = HKDF-Expand(PRK, \"peerlink hs i2r\", 32)", hs_i2r, 32);
    print_value("k_hs_r2i = HKDF-Expand(PRK, \"peerlink hs r2i\", 32)", hs_r2i, 32);

    size_t n = open_record(FR(2), hs_r2i, 0, inner);
    size_t pn = check_identity(inner, n, k->pk_r, R_NAME, 'R', th1, NULL);
    print_value("Identity_R, opened (inner frame)", inner, n);
    th_add(&th, inner + 8, pn);
    th_value(&th, th2);
    print_value("th2 = transcript hash after Identity_R (signed by the initiator)", th2, 64);
    /* proof = HKDF-Expand(resume_key, "peerlink v1 resume" || th2, 32) */
    uint8_t proof[32];
    resume_req req = {0};
    if (res) {
        expand(res->resume_key, 32, "peerlink v1 resume", th2, 64, proof, 32);
        print_value("proof = HKDF-Expand(resume_key, \"peerlink v1 resume\" || th2, 32)", proof, 32);
        req.session_id = res->session_id;
        req.proof = proof;
        req.delivered = res->delivered;
    }
    n = open_record(FI(2), hs_i2r, 0, inner);
    pn = check_identity(inner, n, k->pk_i, I_NAME, 'I', th2, res ? &req : NULL);
    print_value(res ? "Identity_I with SessionResume, opened (inner frame)" : "Identity_I, opened (inner frame)",
                inner, n);
    th_add(&th, inner + 8, pn);
    th_value(&th, th3);
    hmac512(th3, 64, secret, secret_len, prk2);
    expand32(prk2, 64, "peerlink app i2r", d->app_i2r);
    expand32(prk2, 64, "peerlink app r2i", d->app_r2i);
    expand(prk2, 64, "peerlink session id", NULL, 0, d->session_id, 16);
    expand(prk2, 64, "peerlink resume", NULL, 0, d->resume_key, 32);
    expand(prk2, 64, "peerlink exporter", NULL, 0, d->exporter, 32);
    print_value("th3 = transcript hash after Identity_I", th3, 64);
    print_value("PRK' = HKDF-Extract(salt = th3, IKM = S)", prk2, 64);
    print_value("k_app_i2r = HKDF-Expand(PRK', \"peerlink app i2r\", 32)", d->app_i2r, 32);
    print_value("k_app_r2i = HKDF-Expand(PRK', \"peerlink app r2i\", 32)", d->app_r2i, 32);
    print_value(res ? "this connection's session_id = HKDF-Expand(PRK', \"peerlink session id\", 16) "
                      "(not taken: the session goes on)"
                    : "session_id = HKDF-Expand(PRK', \"peerlink session id\", 16)",
                d->session_id, 16);
    print_value(res ? "this connection's resume_key = HKDF-Expand(PRK', \"peerlink resume\", 32) "
                      "(not taken: the session goes on)"
                    : "resume_key = HKDF-Expand(PRK', \"peerlink resume\", 32)",
                d->resume_key, 32);
    if (pairing == 2)
        print_value("exporter_secret = HKDF-Expand(PRK', \"peerlink exporter\", 32)", d->exporter, 32);
    /* and the engines hold the same keys */
    assert_memory_equal(I->e.tx.key, d->app_i2r, 32);
    assert_memory_equal(I->e.rx.key, d->app_r2i, 32);
    assert_memory_equal(R->e.tx.key, d->app_r2i, 32);
    assert_memory_equal(R->e.rx.key, d->app_i2r, 32);
#undef FI
#undef FR
}

/* Pairing and reconnect: Ready (r2i #0), "hello" (i2r #0), "world" (r2i #1), all seq 0. */
static void check_first_records(const vside *I, const vside *R, const derived *d)
{
    uint8_t want[64];
    size_t n = control_of(want, READY(0, 0));
    expect_record("Ready", R->frame[3], R->frame_len[3], d->app_r2i, 0, want, n);
    n = data_of(want, 0, "hello");
    expect_record("DATA \"hello\" seq 0", I->frame[3], I->frame_len[3], d->app_i2r, 0, want, n);
    n = data_of(want, 0, "world");
    expect_record("DATA \"world\" seq 0", R->frame[4], R->frame_len[4], d->app_r2i, 1, want, n);
    /* a new session takes this connection's id and resume key */
    assert_memory_equal(I->e.st.id, d->session_id, 16);
    assert_memory_equal(R->e.st.id, d->session_id, 16);
    assert_memory_equal(I->e.st.resume_key, d->resume_key, 32);
    assert_memory_equal(R->e.st.resume_key, d->resume_key, 32);
}

/* ---------------------------------------------------------------- the resume scenario */

/*
 * The reconnect's session (engines I and R, open, "hello" and "world"
 * delivered, d2 re-derived from it) goes on: Acks, a message lost with
 * the link, a third connection that resumes the session with a new
 * responder engine R2, the message sent again, and a clean close.
 * Logs: I's frames from here on; R2's log starts with what R sent here.
 */
static void resume_scenario(const keys *k, size_t *off_i, size_t *off_r, vside *I, vside *R, vside *R2,
                            const derived *d2)
{
    I->nframes = R->nframes = 0;
    /* Second connection: each side acknowledges what its application received. */
    assert_int_equal(pl_engine_ack(&I->e), PL_OK);
    assert_int_equal(pl_engine_ack(&R->e), PL_OK);
    pump(I, R);
    assert_int_equal(I->acks, 1);
    assert_int_equal(I->acked, 1);
    assert_int_equal(R->acks, 1);
    assert_int_equal(R->acked, 1);
    /* "again" (seq 1) is sealed, then lost with the link. */
    assert_int_equal(pl_engine_send(&I->e, "again", 5, 0), PL_OK);
    drop(I);
    assert_int_equal(I->nframes, 2);
    assert_int_equal(R->nframes, 1);
    assert_int_equal(R->nmsgs, 1);
    assert_int_equal(I->e.st.tx_next, 2);
    assert_int_equal(I->e.st.tx_acked, 1);

    /* Third connection. The initiator keeps its engine and session. */
    pl_engine_relink(&I->e);
    I->opened = I->nmsgs = I->eofs = I->acks = 0;
    I->acked = 0;
    /* The responder: a listener's fresh engine, configured like the first,
     * that finds the first engine's session. */
    v_init(R2, 0x22);
    R2->rnd.off = *off_r;
    R2->old = &R->e;
    memcpy(R2->frame[0], R->frame[0], R->frame_len[0]);
    R2->frame_len[0] = R->frame_len[0];
    R2->nframes = 1;
    configure_responder(k, R2);
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R2->e), PL_OK);
    pump(I, R2);
    assert_int_equal(I->error, 0);
    assert_int_equal(R2->error, 0);
    assert_int_equal(I->opened, 1);
    assert_int_equal(R2->opened, 1);
    assert_int_equal(R2->find_calls, 1);
    assert_int_equal(R2->adopted, 1);
    assert_int_equal(I->e.resumed, 1);
    assert_int_equal(I->e.reset, 0);
    assert_int_equal(R2->e.resumed, 1);
    assert_int_equal(R->e.st.established, 0); /* the stream moved */
    assert_int_equal(R2->nmsgs, 1);            /* "again", sent again */
    assert_int_equal(R2->got_len, 5);
    assert_memory_equal(R2->got, "again", 5);
    assert_int_equal(I->rnd.off, *off_i + 64);
    assert_int_equal(R2->rnd.off, *off_r + 64);
    *off_i = I->rnd.off;
    *off_r = R2->rnd.off;
    /* The responder acknowledges "again"; each side ends its stream, then
     * acknowledges the other's end. */
    assert_int_equal(pl_engine_ack(&R2->e), PL_OK);
    pump(I, R2);
    assert_int_equal(I->acked, 2);
    assert_int_equal(pl_engine_shutdown(&I->e), PL_OK);
    assert_int_equal(pl_engine_shutdown(&R2->e), PL_OK);
    pump(I, R2);
    assert_int_equal(I->eofs, 1);
    assert_int_equal(R2->eofs, 1);
    assert_int_equal(pl_engine_done(&I->e), 0);
    assert_int_equal(pl_engine_ack(&I->e), PL_OK);
    assert_int_equal(pl_engine_ack(&R2->e), PL_OK);
    pump(I, R2);
    assert_int_equal(I->error, 0);
    assert_int_equal(R2->error, 0);
    assert_int_equal(I->acked, 2);  /* messages: "hello", "again" (end-of-stream is not counted) */
    assert_int_equal(R2->acked, 0); /* no ACKED: only its end-of-stream was new, which is not counted */
    assert_int_equal(pl_stream_acked_messages(&R2->e.st), 1); /* "world", acknowledged before */
    assert_int_equal(pl_engine_done(&I->e), 1);
    assert_int_equal(pl_engine_done(&R2->e), 1);
    assert_int_equal(I->nmsgs, 0);
    assert_int_equal(R2->nmsgs, 1);
    /* the session keeps the reconnect's id and resume key */
    assert_memory_equal(I->e.st.id, d2->session_id, 16);
    assert_memory_equal(R2->e.st.id, d2->session_id, 16);
    assert_memory_equal(R2->e.st.resume_key, d2->resume_key, 32);
    assert_int_equal(I->nframes, 8);
    assert_int_equal(R2->nframes, 8);
}

/* The records of the resume scenario, opened with independently derived keys. */
static void check_resume_tail(const vside *I, const vside *R2, const derived *d2)
{
    uint8_t want[64];
    size_t n = control_of(want, ACK(1));
    expect_record("Ack {delivered = 1}, initiator", I->frame[0], I->frame_len[0], d2->app_i2r, 1, want, n);
    n = data_of(want, 1, "again");
    expect_record("DATA \"again\" seq 1 (lost)", I->frame[1], I->frame_len[1], d2->app_i2r, 2, want, n);
    n = control_of(want, ACK(1));
    expect_record("Ack {delivered = 1}, responder", R2->frame[0], R2->frame_len[0], d2->app_r2i, 2, want, n);
}

static void check_resume_records(const vside *I, const vside *R2, const derived *d3)
{
    uint8_t want[64];
    size_t n = control_of(want, READY(1, 1));
    expect_record("Ready {resumed = true, delivered = 1}", R2->frame[4], R2->frame_len[4], d3->app_r2i, 0, want,
                  n);
    n = data_of(want, 1, "again");
    expect_record("DATA \"again\" seq 1, sent again", I->frame[5], I->frame_len[5], d3->app_i2r, 0, want, n);
    n = control_of(want, ACK(2));
    expect_record("Ack {delivered = 2}, responder", R2->frame[5], R2->frame_len[5], d3->app_r2i, 1, want, n);
    n = control_of(want, EOS(2));
    expect_record("EndOfStream {seq = 2}, initiator", I->frame[6], I->frame_len[6], d3->app_i2r, 1, want, n);
    n = control_of(want, EOS(1));
    expect_record("EndOfStream {seq = 1}, responder", R2->frame[6], R2->frame_len[6], d3->app_r2i, 2, want, n);
    n = control_of(want, ACK(2));
    expect_record("Ack {delivered = 2}, initiator", I->frame[7], I->frame_len[7], d3->app_i2r, 2, want, n);
    n = control_of(want, ACK(3));
    expect_record("Ack {delivered = 3}, responder", R2->frame[7], R2->frame_len[7], d3->app_r2i, 3, want, n);
}

/* ---------------------------------------------------------------- the reset scenario */

/* A fresh engine pair member, as run() makes them, with rekey_interval 2. */
static void configure_side(const keys *k, vside *S, int initiator, const char *code, size_t off)
{
    v_init(S, initiator ? 0x11 : 0x22);
    S->rnd.off = off;
    pl_engine_config c = {0};
    c.initiator = initiator;
    c.identity_sk = initiator ? k->sk_i : k->sk_r;
    c.name = initiator ? I_NAME : R_NAME;
    c.instance = INSTANCE;
    c.code = code;
    c.expected_peer = initiator && !code ? k->pk_r : NULL;
    c.hooks = &S->hooks;
    c.hooks_ctx = S;
    c.rekey_interval = 2;
    if (!initiator)
        S->known = k->pk_i;
    assert_int_equal(pl_engine_configure(&S->e, &c), PL_OK);
}

/* The application message of BIG_LEN bytes: byte i is i mod 256. */
static const uint8_t *big_message(void)
{
    static uint8_t m[BIG_LEN];
    for (size_t i = 0; i < BIG_LEN; i++)
        m[i] = (uint8_t)i;
    return m;
}

/*
 * Fourth connection (new engines, rekey interval 2 on both sides): a
 * reconnect whose session gets "lost" (seq 0) from the initiator, lost
 * with the link. Fifth connection: the initiator resumes (SessionResume,
 * delivered 0) but the responder is a new engine that never had the
 * session (it restarted): Ready{} resets it; "lost" is sent again as seq
 * 0 of the new session; the initiator pings, the responder acknowledges
 * (Ack{1}); the initiator sends a BIG_LEN-byte message (seq 1) in two
 * records, the responder acknowledges it (Ack{2}); the initiator aborts.
 * The initiator's records run past two rekeys, the responder's past one.
 */
static void reset_scenario(const keys *k, size_t *off_i, size_t *off_r, vside *I, vside *R, vside *R5,
                           derived *d4, derived *d5)
{
    size_t start_i = *off_i, start_r = *off_r;
    configure_side(k, I, 1, NULL, *off_i);
    configure_side(k, R, 0, NULL, *off_r);
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R->e), PL_OK);
    pump(I, R);
    assert_int_equal(I->opened + R->opened, 2);
    spec_check(k, 0, start_i, start_r, I, 0, R, 0, NULL, d4);
    assert_int_equal(pl_engine_send(&I->e, "lost", 4, 0), PL_OK);
    drop(I);
    assert_int_equal(I->nframes, 4);
    assert_int_equal(R->nframes, 4);
    *off_i = start_i = I->rnd.off;
    *off_r = start_r = R->rnd.off;

    /* Fifth connection: the responder restarted (a new engine, no session). */
    pl_engine_relink(&I->e);
    I->opened = 0;
    configure_side(k, R5, 0, NULL, *off_r);
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R5->e), PL_OK);
    pump(I, R5);
    assert_int_equal(I->error | R5->error, 0);
    assert_int_equal(I->opened + R5->opened, 2);
    assert_int_equal(R5->find_calls, 1);
    assert_int_equal(I->e.reset, 1);
    assert_int_equal(I->e.resumed | R5->e.resumed, 0);
    assert_int_equal(R5->nmsgs, 1);
    assert_int_equal(R5->got_len, 4);
    assert_memory_equal(R5->got, "lost", 4);
    resume_in res = {d4->session_id, d4->resume_key, 0};
    if (print_mode == 1)
        printf("#### Fifth connection\n\n");
    spec_check(k, 0, start_i, start_r, I, 4, R5, 0, &res, d5);
    /* the reset session takes this connection's id and key */
    assert_memory_equal(I->e.st.id, d5->session_id, 16);
    assert_memory_equal(R5->e.st.id, d5->session_id, 16);

    assert_int_equal(pl_engine_ping(&I->e), PL_OK);
    pump(I, R5);
    assert_true(R5->e.ping_owed);
    assert_int_equal(pl_engine_ack(&R5->e), PL_OK);
    pump(I, R5);
    assert_int_equal(I->acks, 1);
    assert_int_equal(I->acked, 1);
    assert_int_equal(pl_engine_send(&I->e, big_message(), BIG_LEN, 0), PL_OK);
    pump(I, R5);
    assert_int_equal(R5->nmsgs, 2);
    assert_int_equal(R5->got_len, BIG_LEN);
    assert_memory_equal(R5->got, big_message(), BIG_LEN);
    assert_int_equal(pl_engine_ack(&R5->e), PL_OK);
    pump(I, R5);
    assert_int_equal(I->acked, 2);
    assert_int_equal(pl_engine_abort(&I->e), PL_OK);
    pump(I, R5);
    assert_int_equal(R5->error, PL_ERR_ABORTED);
    assert_int_equal(I->error, 0);
    assert_int_equal(I->nframes, 12);
    assert_int_equal(R5->nframes, 6);
    assert_int_equal(I->e.tx.epoch, 2);
    assert_int_equal(R5->e.tx.epoch, 1);
    *off_i = I->rnd.off;
    *off_r = R5->rnd.off;
}

/* An inner DATA frame carrying bytes from..from+n of a DATA message
 * (u64be(seq) || app), with MORE if more follows. */
static size_t data_part(uint8_t *out, uint64_t seq, const uint8_t *app, size_t app_len, size_t from, size_t n)
{
    size_t total = 8 + app_len;
    assert_true(from + n <= total);
    const uint8_t h[8] = {1, PL_FRAME_DATA, from + n < total ? PL_FRAME_FLAG_MORE : 0, 0,
                          (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(out, h, 8);
    for (size_t i = 0; i < n; i++) {
        size_t j = from + i;
        out[8 + i] = j < 8 ? (uint8_t)(seq >> (56 - 8 * j)) : app[j - 8];
    }
    return 8 + n;
}

/* The records of the reset scenario, opened with keys derived from d4/d5
 * and the rekey rule: k' = HKDF-Expand(k, "peerlink rekey", 32). */
static void check_reset_records(const vside *I, const vside *R, const vside *R5, const derived *d4,
                                const derived *d5)
{
    static uint8_t want[MAX_FRAME];
    size_t n = control_of(want, READY(0, 0));
    expect_record("Ready {} (fourth connection)", R->frame[3], R->frame_len[3], d4->app_r2i, 0, want, n);
    n = data_of(want, 0, "lost");
    expect_record("DATA \"lost\" seq 0 (fourth connection, lost)", I->frame[3], I->frame_len[3], d4->app_i2r, 0,
                  want, n);
    uint8_t i2r_1[32], i2r_2[32], r2i_1[32];
    expand32(d5->app_i2r, 32, "peerlink rekey", i2r_1);
    expand32(i2r_1, 32, "peerlink rekey", i2r_2);
    expand32(d5->app_r2i, 32, "peerlink rekey", r2i_1);
    print_value("k_app_i2r' = HKDF-Expand(k_app_i2r, \"peerlink rekey\", 32) (after i2r record 1)", i2r_1, 32);
    print_value("k_app_i2r'' = HKDF-Expand(k_app_i2r', \"peerlink rekey\", 32)", i2r_2, 32);
    print_value("k_app_r2i' = HKDF-Expand(k_app_r2i, \"peerlink rekey\", 32) (after r2i record 1)", r2i_1, 32);
    n = control_of(want, READY(0, 0));
    expect_record("Ready {} (resumed = false: a reset)", R5->frame[3], R5->frame_len[3], d5->app_r2i, 0, want, n);
    n = data_of(want, 0, "lost");
    expect_record("DATA \"lost\" seq 0, the new session's first", I->frame[7], I->frame_len[7], d5->app_i2r, 0, want,
                  n);
    n = control_of(want, 11, 0, 0);
    expect_record("Ping", I->frame[8], I->frame_len[8], d5->app_i2r, 1, want, n);
    n = control_of(want, ACK(1));
    expect_record("Ack {delivered = 1}", R5->frame[4], R5->frame_len[4], d5->app_r2i, 1, want, n);
    const size_t first = PL_RECORD_MAX_INNER_PAYLOAD; /* 16360: u64be(1) and 16352 application bytes */
    n = data_part(want, 1, big_message(), BIG_LEN, 0, first);
    expect_record("DATA seq 1, first part (MORE)", I->frame[9], I->frame_len[9], i2r_1, 0, want, n);
    n = data_part(want, 1, big_message(), BIG_LEN, first, 8 + BIG_LEN - first);
    expect_record("DATA seq 1, last part", I->frame[10], I->frame_len[10], i2r_1, 1, want, n);
    n = control_of(want, ACK(2));
    expect_record("Ack {delivered = 2}", R5->frame[5], R5->frame_len[5], r2i_1, 0, want, n);
    n = control_of(want, 12, 0, 0);
    expect_record("Abort", I->frame[11], I->frame_len[11], i2r_2, 0, want, n);
}

/* Sixth connection: a pairing attempt that the responder does not offer
 * (pair_begin: no code): Hello_I, PairStart, Hello_R, Error{NOT_PAIRED}. */
static void error_scenario(const keys *k, size_t *off_i, size_t *off_r, vside *I, vside *R)
{
    configure_side(k, I, 1, CODE, *off_i);
    configure_side(k, R, 0, NULL, *off_r);
    R->no_pairing = 1;
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R->e), PL_OK);
    pump(I, R);
    assert_int_equal(R->error, PL_ERR_NOT_PAIRED);
    assert_int_equal(I->error, PL_ERR_NOT_PAIRED);
    assert_int_equal(I->nframes, 2);
    assert_int_equal(R->nframes, 2);
    uint8_t n_i[32], n_r[32], rnd[32], seed[32], want[64];
    memset(seed, 0x11, 32);
    stream_bytes(seed, *off_i, rnd, 32);
    assert_memory_equal(hello_nonce(I->frame[0], I->frame_len[0], n_i), rnd, 32);
    memset(seed, 0x22, 32);
    stream_bytes(seed, *off_r, rnd, 32);
    assert_memory_equal(hello_nonce(R->frame[0], R->frame_len[0], n_r), rnd, 32);
    /* an Error is a clear CONTROL frame: the same bytes as an inner one */
    size_t n = control_of(want, 8, PEERLINK__ERROR__CODE__NOT_PAIRED, 0);
    assert_int_equal(R->frame_len[1], n);
    assert_memory_equal(R->frame[1], want, n);
    assert_int_equal(I->rnd.off, *off_i + 64); /* nonce, CPace scalar */
    assert_int_equal(R->rnd.off, *off_r + 32); /* nonce: it refused before drawing a scalar */
    *off_i = I->rnd.off;
    *off_r = R->rnd.off;
}

/*
 * Seventh connection (new engines, bytes 384..447 and 352..415): a pairing
 * on SECRET instead of a code; both sides set their metadata before the
 * handshake, so each sends it first thing once open (the initiator's
 * Metadata is its record #0, the responder's follows Ready); then the
 * exporter, EXPORT_LABEL with EXPORT_CONTEXT, 32 bytes, on both sides.
 */
static void secret_scenario(const keys *k, size_t *off_i, size_t *off_r, vside *I, vside *R, derived *d)
{
    new_pair(k, *off_i, *off_r, NULL, SECRET, sizeof SECRET, I, R);
    R->with_secret = 1;
    assert_int_equal(pl_engine_set_metadata(&I->e, (const uint8_t *)TXT_I, sizeof TXT_I - 1), PL_OK);
    assert_int_equal(pl_engine_set_metadata(&R->e, (const uint8_t *)TXT_R, sizeof TXT_R - 1), PL_OK);
    size_t start_i = *off_i, start_r = *off_r;
    assert_int_equal(pl_engine_start(&I->e), PL_OK);
    assert_int_equal(pl_engine_start(&R->e), PL_OK);
    pump(I, R);
    assert_int_equal(I->error, 0);
    assert_int_equal(R->error, 0);
    assert_int_equal(I->opened + R->opened, 2);
    assert_int_equal(I->paired_calls + R->paired_calls, 2);
    assert_int_equal(R->end_result, PL_OK);
    assert_int_equal(I->nframes, 4); /* Hello, PairStart, Identity, Metadata */
    assert_int_equal(R->nframes, 5); /* Hello, PairReply, Identity, Ready, Metadata */
    assert_int_equal(I->rnd.off, start_i + 64);
    assert_int_equal(R->rnd.off, start_r + 64);
    spec_check(k, 2, start_i, start_r, I, 0, R, 0, NULL, d);

    uint8_t want[80];
    size_t wn = metadata_of(want, TXT_I, sizeof TXT_I - 1);
    expect_record("Metadata_I (record, app i2r #0)", I->frame[3], I->frame_len[3], d->app_i2r, 0, want, wn);
    wn = control_of(want, READY(0, 0));
    expect_record("Ready (record, app r2i #0)", R->frame[3], R->frame_len[3], d->app_r2i, 0, want, wn);
    wn = metadata_of(want, TXT_R, sizeof TXT_R - 1);
    expect_record("Metadata_R (record, app r2i #1)", R->frame[4], R->frame_len[4], d->app_r2i, 1, want, wn);
    /* each application got the other's */
    assert_int_equal(R->txt_len, sizeof TXT_I - 1);
    assert_memory_equal(R->txt, TXT_I, sizeof TXT_I - 1);
    assert_int_equal(I->txt_len, sizeof TXT_R - 1);
    assert_memory_equal(I->txt, TXT_R, sizeof TXT_R - 1);

    /* the exporter: HKDF-Expand(exporter_secret, "peerlink export" || u8(len(label)) || label ||
     * u16be(len(context)) || context, 32) */
    uint8_t info[64], x[32], xi[32], xr[32];
    size_t ln = strlen(EXPORT_LABEL), cn = strlen(EXPORT_CONTEXT), in = 0;
    info[in++] = (uint8_t)ln;
    memcpy(info + in, EXPORT_LABEL, ln);
    in += ln;
    info[in++] = 0;
    info[in++] = (uint8_t)cn;
    memcpy(info + in, EXPORT_CONTEXT, cn);
    in += cn;
    expand(d->exporter, 32, "peerlink export", info, in, x, 32);
    assert_int_equal(pl_engine_export(&I->e, EXPORT_LABEL, (const uint8_t *)EXPORT_CONTEXT, cn, xi, 32), PL_OK);
    assert_int_equal(pl_engine_export(&R->e, EXPORT_LABEL, (const uint8_t *)EXPORT_CONTEXT, cn, xr, 32), PL_OK);
    assert_memory_equal(x, xi, 32);
    assert_memory_equal(x, xr, 32);
    print_value("exporter info = u8(22) || \"EXAMPLE wifi-aware pmk\" || u16be(3) || \"nan\"", info, in);
    print_value("export(\"EXAMPLE wifi-aware pmk\", \"nan\", 32) = HKDF-Expand(exporter_secret, "
                "\"peerlink export\" || info, 32)",
                x, 32);
    *off_i = I->rnd.off;
    *off_r = R->rnd.off;
}

/* ---------------------------------------------------------------- comparison and printing */

typedef struct fname {
    const char *c;  /* in the pinned table */
    const char *md; /* in the document */
} fname;

static const fname I_NAMES_PAIR[] = {
    {"Hello_I", "Hello_I"},
    {"PairStart", "PairStart"},
    {"Identity_I (record, hs i2r #0)", "Identity_I (record, hs i2r #0)"},
    {"DATA hello", "DATA seq 0 \"hello\" (record, app i2r #0)"},
};
static const fname R_NAMES_PAIR[] = {
    {"Hello_R", "Hello_R"},
    {"PairReply", "PairReply"},
    {"Identity_R (record, hs r2i #0)", "Identity_R (record, hs r2i #0)"},
    {"Ready (record, app r2i #0)", "Ready (record, app r2i #0)"},
    {"DATA world", "DATA seq 0 \"world\" (record, app r2i #1)"},
};
static const fname I_NAMES_RECONNECT[] = {
    {"Hello_I", "Hello_I"},
    {"ResumeStart", "ResumeStart"},
    {"Identity_I (record, hs i2r #0)", "Identity_I (record, hs i2r #0)"},
    {"DATA hello", "DATA seq 0 \"hello\" (record, app i2r #0)"},
};
static const fname R_NAMES_RECONNECT[] = {
    {"Hello_R", "Hello_R"},
    {"ResumeReply", "ResumeReply"},
    {"Identity_R (record, hs r2i #0)", "Identity_R (record, hs r2i #0)"},
    {"Ready (record, app r2i #0)", "Ready (record, app r2i #0)"},
    {"DATA world", "DATA seq 0 \"world\" (record, app r2i #1)"},
};
static const fname I_NAMES_RESUME[] = {
    {"Ack 1 (2nd connection, app i2r #1)", "Ack {delivered = 1} (second connection: record, app i2r #1)"},
    {"DATA again (2nd connection, app i2r #2, lost)",
     "DATA seq 1 \"again\" (second connection: record, app i2r #2; lost with the link)"},
    {"Hello_I", "Hello_I"},
    {"ResumeStart", "ResumeStart"},
    {"Identity_I with SessionResume (record, hs i2r #0)", "Identity_I with SessionResume (record, hs i2r #0)"},
    {"DATA again (record, app i2r #0)", "DATA seq 1 \"again\", sent again (record, app i2r #0)"},
    {"EndOfStream 2 (record, app i2r #1)", "EndOfStream {seq = 2} (record, app i2r #1)"},
    {"Ack 2 (record, app i2r #2)", "Ack {delivered = 2} (record, app i2r #2)"},
};
static const fname I_NAMES_RESET[] = {
    {"Hello_I (4th connection)", "Hello_I (fourth connection)"},
    {"ResumeStart (4th connection)", "ResumeStart (fourth connection)"},
    {"Identity_I (4th connection, hs i2r #0)", "Identity_I (fourth connection: record, hs i2r #0)"},
    {"DATA lost (4th connection, app i2r #0, lost)",
     "DATA seq 0 \"lost\" (fourth connection: record, app i2r #0; lost with the link)"},
    {"Hello_I", "Hello_I"},
    {"ResumeStart", "ResumeStart"},
    {"Identity_I with SessionResume (record, hs i2r #0)", "Identity_I with SessionResume (record, hs i2r #0)"},
    {"DATA lost (record, app i2r #0)", "DATA seq 0 \"lost\", the new session's first (record, app i2r #0)"},
    {"Ping (record, app i2r #1)", "Ping (record, app i2r #1)"},
    {"DATA big part 1 (record, app i2r' #0)", "DATA seq 1, first part, MORE (record, app i2r' #0)"},
    {"DATA big part 2 (record, app i2r' #1)", "DATA seq 1, last part (record, app i2r' #1)"},
    {"Abort (record, app i2r'' #0)", "Abort (record, app i2r'' #0)"},
};
static const fname R_NAMES_RESET4[] = {
    {"Hello_R (4th connection)", "Hello_R (fourth connection)"},
    {"ResumeReply (4th connection)", "ResumeReply (fourth connection)"},
    {"Identity_R (4th connection, hs r2i #0)", "Identity_R (fourth connection: record, hs r2i #0)"},
    {"Ready (4th connection, app r2i #0)", "Ready {} (fourth connection: record, app r2i #0)"},
};
static const fname R_NAMES_RESET[] = {
    {"Hello_R", "Hello_R"},
    {"ResumeReply", "ResumeReply"},
    {"Identity_R (record, hs r2i #0)", "Identity_R (record, hs r2i #0)"},
    {"Ready reset (record, app r2i #0)", "Ready {} (resumed = false) (record, app r2i #0)"},
    {"Ack 1 (record, app r2i #1)", "Ack {delivered = 1} (record, app r2i #1)"},
    {"Ack 2 (record, app r2i' #0)", "Ack {delivered = 2} (record, app r2i' #0)"},
};
static const fname I_NAMES_ERROR[] = {
    {"Hello_I", "Hello_I"},
    {"PairStart", "PairStart"},
};
static const fname R_NAMES_ERROR[] = {
    {"Hello_R", "Hello_R"},
    {"Error NOT_PAIRED", "Error {code = NOT_PAIRED}"},
};
static const fname I_NAMES_SECRET[] = {
    {"Hello_I", "Hello_I"},
    {"PairStart", "PairStart"},
    {"Identity_I (record, hs i2r #0)", "Identity_I (record, hs i2r #0)"},
    {"Metadata_I (record, app i2r #0)", "Metadata (record, app i2r #0)"},
};
static const fname R_NAMES_SECRET[] = {
    {"Hello_R", "Hello_R"},
    {"PairReply", "PairReply"},
    {"Identity_R (record, hs r2i #0)", "Identity_R (record, hs r2i #0)"},
    {"Ready (record, app r2i #0)", "Ready {} (record, app r2i #0)"},
    {"Metadata_R (record, app r2i #1)", "Metadata (record, app r2i #1)"},
};
static const fname R_NAMES_RESUME[] = {
    {"Ack 1 (2nd connection, app r2i #2)", "Ack {delivered = 1} (second connection: record, app r2i #2)"},
    {"Hello_R", "Hello_R"},
    {"ResumeReply", "ResumeReply"},
    {"Identity_R (record, hs r2i #0)", "Identity_R (record, hs r2i #0)"},
    {"Ready resumed (record, app r2i #0)", "Ready {resumed = true, delivered = 1} (record, app r2i #0)"},
    {"Ack 2 (record, app r2i #1)", "Ack {delivered = 2} (record, app r2i #1)"},
    {"EndOfStream 1 (record, app r2i #2)", "EndOfStream {seq = 1} (record, app r2i #2)"},
    {"Ack 3 (record, app r2i #3)", "Ack {delivered = 3} (record, app r2i #3)"},
};

/* Frames from..to-1 of a side, as Markdown. */
static void print_frames(const char *dir, const vside *s, size_t from, size_t to, const fname *names)
{
    for (size_t i = from; i < to && i < s->nframes; i++) {
        char name[200];
        snprintf(name, sizeof name, "%s %s", dir, names[i].md);
        print_value(name, s->frame[i], s->frame_len[i]);
    }
}

/* A frame as pinned: its hex, or for a long one "sha512:" and the hex of its SHA-512. */
static void frame_repr(const uint8_t *p, size_t n, char *out)
{
    if (n <= SHOWN) {
        hex_of(p, n, out);
        return;
    }
    uint8_t h[crypto_hash_sha512_BYTES];
    crypto_hash_sha512(h, p, n);
    memcpy(out, "sha512:", 7);
    hex_of(h, sizeof h, out + 7);
}

static void print_c(const char *table, const vside *s, const fname *names)
{
    char hex[2 * SHOWN + 1];
    printf("static const vec %s[] = {\n", table);
    for (size_t i = 0; i < s->nframes; i++) {
        frame_repr(s->frame[i], s->frame_len[i], hex);
        printf("    {\"%s\",\n", names[i].c);
        size_t len = strlen(hex);
        for (size_t off = 0; off < len; off += 64)
            printf("     \"%.64s\"%s\n", hex + off, off + 64 >= len ? "}," : "");
    }
    printf("};\n");
}

static void compare(const vside *s, const vec *pinned, size_t count)
{
    char hex[2 * SHOWN + 1];
    assert_int_equal(s->nframes, count);
    for (size_t i = 0; i < count; i++) {
        frame_repr(s->frame[i], s->frame_len[i], hex);
        if (strcmp(hex, pinned[i].hex) != 0)
            fail_msg("%s differs:\n  got  %s\n  want %s", pinned[i].name, hex, pinned[i].hex);
    }
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One side's frames of a scenario: shown (Markdown), printed as its pinned table (C), or
 * compared with that table. */
static void pin(const char *dir, const char *table, const vside *s, const fname *names, const vec *pinned,
                size_t count)
{
    print_frames(dir, s, 0, s->nframes, names);
    if (print_mode == 2)
        print_c(table, s, names);
    if (!print_mode)
        compare(s, pinned, count);
}

static void test_vectors(void **state)
{
    (void)state;
    keys k;
    make_keys(&k);
    static vside I, R, R2; /* large: not on the stack */
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
        uint8_t s[192];
        memset(seed, 0x11, 32);
        stream_bytes(seed, 0, s, 192);
        print_value("initiator random stream, bytes 0..191 (seed 32 x 0x11)", s, 192);
        memset(seed, 0x22, 32);
        stream_bytes(seed, 0, s, 192);
        print_value("responder random stream, bytes 0..191 (seed 32 x 0x22)", s, 192);
        printf("\n### Pairing\n\n");
    }
    derived d;
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
    spec_check(&k, 1, start_i, start_r, &I, 0, &R, 0, NULL, &d);
    check_first_records(&I, &R, &d);
    pin("I → R", "PAIR_I", &I, I_NAMES_PAIR, PAIR_I, COUNT(PAIR_I));
    pin("R → I", "PAIR_R", &R, R_NAMES_PAIR, PAIR_R, COUNT(PAIR_R));
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);

    if (print_mode == 1)
        printf("\n### Reconnect\n\n");
    derived d2;
    start_i = off_i;
    start_r = off_r;
    run(&k, 0, &off_i, &off_r, &I, &R);
    assert_int_equal(off_i, 128);
    assert_int_equal(off_r, 128);
    assert_int_equal(R.end_calls, 0);
    assert_int_equal(I.nframes, 4);
    assert_int_equal(R.nframes, 5);
    spec_check(&k, 0, start_i, start_r, &I, 0, &R, 0, NULL, &d2);
    check_first_records(&I, &R, &d2);
    pin("I → R", "RECONNECT_I", &I, I_NAMES_RECONNECT, RECONNECT_I, COUNT(RECONNECT_I));
    pin("R → I", "RECONNECT_R", &R, R_NAMES_RECONNECT, RECONNECT_R, COUNT(RECONNECT_R));

    /* The same engines go on: the reconnect's session is resumed. */
    derived d3;
    start_i = off_i;
    start_r = off_r;
    resume_scenario(&k, &off_i, &off_r, &I, &R, &R2, &d2);
    assert_int_equal(off_i, 192);
    assert_int_equal(off_r, 192);
    if (print_mode == 1)
        printf("\n### Resume\n\n#### Second connection, before the link drops\n\n");
    check_resume_tail(&I, &R2, &d2);
    print_frames("I → R", &I, 0, 2, I_NAMES_RESUME);
    print_frames("R → I", &R2, 0, 1, R_NAMES_RESUME);
    if (print_mode == 1)
        printf("\n#### Third connection\n\n");
    resume_in res = {d2.session_id, d2.resume_key, 1};
    spec_check(&k, 0, start_i, start_r, &I, 2, &R2, 1, &res, &d3);
    check_resume_records(&I, &R2, &d3);
    print_frames("I → R", &I, 2, I.nframes, I_NAMES_RESUME);
    print_frames("R → I", &R2, 1, R2.nframes, R_NAMES_RESUME);
    if (print_mode == 2) {
        print_c("RESUME_I", &I, I_NAMES_RESUME);
        print_c("RESUME_R", &R2, R_NAMES_RESUME);
    }
    if (!print_mode) {
        compare(&I, RESUME_I, COUNT(RESUME_I));
        compare(&R2, RESUME_R, COUNT(RESUME_R));
    }
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);
    pl_engine_clear(&R2.e);

    /* Reset, rekey, Ping, a message in two records, Abort; then an Error. */
    if (print_mode == 1)
        printf("\n### Reset, rekey, Ping, a message of two records, Abort\n\n#### Fourth connection\n\n");
    derived d4, d5;
    size_t mark_i = off_i;
    reset_scenario(&k, &off_i, &off_r, &I, &R, &R2, &d4, &d5);
    assert_int_equal(off_i, mark_i + 128);
    assert_int_equal(off_r, 320);
    if (print_mode == 1)
        printf("#### Records of both connections\n\n");
    check_reset_records(&I, &R, &R2, &d4, &d5);
    print_frames("I → R", &I, 0, 4, I_NAMES_RESET);
    print_frames("R → I", &R, 0, 4, R_NAMES_RESET4);
    print_frames("I → R", &I, 4, I.nframes, I_NAMES_RESET);
    print_frames("R → I", &R2, 0, R2.nframes, R_NAMES_RESET);
    if (print_mode == 2) {
        print_c("RESET_I", &I, I_NAMES_RESET);
        print_c("RESET_R4", &R, R_NAMES_RESET4);
        print_c("RESET_R", &R2, R_NAMES_RESET);
    }
    if (!print_mode) {
        compare(&I, RESET_I, COUNT(RESET_I));
        compare(&R, RESET_R4, COUNT(RESET_R4));
        compare(&R2, RESET_R, COUNT(RESET_R));
    }
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);
    pl_engine_clear(&R2.e);

    if (print_mode == 1)
        printf("\n### Error\n\n");
    error_scenario(&k, &off_i, &off_r, &I, &R);
    assert_int_equal(off_i, 384);
    assert_int_equal(off_r, 352);
    pin("I → R", "ERROR_I", &I, I_NAMES_ERROR, ERROR_I, COUNT(ERROR_I));
    pin("R → I", "ERROR_R", &R, R_NAMES_ERROR, ERROR_R, COUNT(ERROR_R));
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);

    if (print_mode == 1)
        printf("\n### Secret, metadata and the exporter (seventh connection)\n\n");
    derived d7;
    secret_scenario(&k, &off_i, &off_r, &I, &R, &d7);
    assert_int_equal(off_i, 448);
    assert_int_equal(off_r, 416);
    pin("I → R", "SECRET_I", &I, I_NAMES_SECRET, SECRET_I, COUNT(SECRET_I));
    pin("R → I", "SECRET_R", &R, R_NAMES_SECRET, SECRET_R, COUNT(SECRET_R));
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
