/* sampler.h — internals of the public tl_sampler (declared in torchless.h).
 *
 * Chain, in llama.cpp's common-sampler order:
 *   penalties (repeat / frequency / presence over the last repeat_last_n
 *   accepted tokens) -> top-k -> top-p -> min-p -> temperature -> draw.
 * temperature <= 0 is greedy: argmax of the penalised logits, ties going to
 * the lowest token id. The random draw uses xoshiro256** seeded through
 * splitmix64, so a fixed seed gives the same tokens on every platform.
 * All buffers are sized at init: sampling allocates nothing. */
#ifndef TL_SERVE_SAMPLER_H
#define TL_SERVE_SAMPLER_H

#include "torchless.h"

/* tl_sampler_params.seed value meaning "pick a random seed at init" (from
 * the clock and addresses). It is the default; every other value, 0
 * included, is a fixed, reproducible seed. */
#define TL_SEED_RANDOM UINT64_MAX

/* The seed actually in use (the resolved one when TL_SEED_RANDOM was asked
 * for), so that a run can be reproduced. */
uint64_t tl_sampler_seed(const tl_sampler *s);

/* Greedy choice over n logits: index of the largest, lowest index on ties;
 * NaNs are never chosen (returns 0 if every value is NaN). */
tl_token tl_sampler_argmax(const float *logits, int n);

/* Runs the chain on logits without drawing (the RNG is not advanced) and
 * returns the number of candidates that survive; *ids and *probs (borrowed
 * from the sampler until its next call) hold them best first, with
 * probabilities after temperature, normalised to sum to 1. Greedy samplers
 * return the single argmax with probability 1. For tests and for showing
 * top alternatives. */
int tl_sampler_candidates(tl_sampler *s, const float *logits, const tl_token **ids,
                          const float **probs);

#endif
