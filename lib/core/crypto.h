/* SPDX-License-Identifier: ISC */
/*
 * Cryptographic building blocks of the handshake (sans-I/O, libsodium):
 * HKDF-SHA512 (RFC 5869) and CPace (draft-irtf-cfrg-cpace, suite
 * CPACE-RISTR255-SHA512, initiator-responder mode).
 */
#ifndef PL_CORE_CRYPTO_H
#define PL_CORE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define PL_HASH_SIZE 64 /* SHA-512 */

/* HKDF-Extract: prk = HMAC-SHA512(salt, ikm). */
void pl_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                     uint8_t prk[PL_HASH_SIZE]);
/* HKDF-Expand with info = label (ASCII, no NUL) || ctx. out_len <= 255 * 64.
 * prk_len may be shorter than 64 (any HMAC key). PL_OK or PL_ERR_INVALID. */
int pl_hkdf_expand(const uint8_t *prk, size_t prk_len, const char *label, const uint8_t *ctx,
                   size_t ctx_len, uint8_t *out, size_t out_len);

/* ---------------------------------------------------------------- CPace */

#define PL_CPACE_POINT 32  /* an encoded ristretto255 element */
#define PL_CPACE_SCALAR 32
#define PL_CPACE_ISK 64

/* lv_cat(...) as the draft defines it: each part prefixed by its length
 * as LEB128. Appends to out (cap bytes); returns the new length, or 0 if
 * it does not fit. */
size_t pl_cpace_lv_cat(uint8_t *out, size_t cap, size_t off, const uint8_t *part, size_t len);

/* The generator g from the password-related string prs (the code), the
 * channel identifier ci and the session id sid. PL_OK, or PL_ERR_INVALID
 * if an input is too long (prs, ci <= 1024 bytes, sid <= 255 bytes). */
int pl_cpace_generator(const uint8_t *prs, size_t prs_len, const uint8_t *ci, size_t ci_len,
                       const uint8_t *sid, size_t sid_len, uint8_t g[PL_CPACE_POINT]);

/* Our message Y = y * g. y: a scalar to use (little endian, 32 bytes, for
 * test vectors) or NULL to draw a random one into y_out. y_out receives
 * the scalar used (wipe it after pl_cpace_isk). PL_OK or PL_ERR_PROTOCOL. */
int pl_cpace_message(const uint8_t g[PL_CPACE_POINT], const uint8_t *y,
                     uint8_t y_out[PL_CPACE_SCALAR], uint8_t Y[PL_CPACE_POINT]);

/* ISK in initiator-responder mode:
 *   K = scalar_mult_vfy(y, Y_peer); abort if K is the identity or Y_peer
 *   does not decode;
 *   ISK = SHA-512(lv_cat("CPaceRistretto255_ISK", sid, K) || transcript_ir)
 *   transcript_ir = lv_cat(Ya, ADa) || lv_cat(Yb, ADb)
 * Ya/ADa are the initiator's message and associated data, Yb/ADb the
 * responder's. PL_OK, or PL_ERR_PROTOCOL for an invalid or identity
 * Y_peer (the handshake must then abort). */
int pl_cpace_isk_ir(const uint8_t y[PL_CPACE_SCALAR], const uint8_t Y_peer[PL_CPACE_POINT],
                    const uint8_t *sid, size_t sid_len, const uint8_t Ya[PL_CPACE_POINT],
                    const uint8_t *ADa, size_t ADa_len, const uint8_t Yb[PL_CPACE_POINT],
                    const uint8_t *ADb, size_t ADb_len, uint8_t isk[PL_CPACE_ISK]);

#endif
