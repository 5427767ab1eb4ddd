/* pool.h — a persistent thread pool tuned for very frequent, short jobs.
 *
 * Decode calls tl_pool_run hundreds of times per token, so dispatch must cost
 * about a microsecond: workers spin on a generation counter for a short while
 * after each job (and the caller spins waiting for them) before falling back
 * to sleeping in the kernel (futex on Linux, condition variable elsewhere).
 *
 * Threading contract: one thread at a time calls tl_pool_run on a given pool
 * (it is not reentrant: fn must not call tl_pool_run on the same pool). The
 * calling thread takes part as thread 0. */
#ifndef TL_BASE_POOL_H
#define TL_BASE_POOL_H

#include "base/err.h"

typedef struct tl_pool tl_pool;

/* A job: called once on every thread with ith in [0, nth). */
typedef void (*tl_pool_fn)(void *ctx, int ith, int nth);

/* Creates a pool of n_threads threads in total, counting the caller: it
 * spawns n_threads-1 workers (none when n_threads == 1). n_threads must be in
 * [1, 4096]. *out is caller-frees with tl_pool_free. */
tl_status tl_pool_init(int n_threads, tl_pool **out, tl_err *err);

/* Stops and joins the workers. Accepts NULL. Must not race a tl_pool_run. */
void tl_pool_free(tl_pool *p);

/* Total threads (workers + caller). */
int tl_pool_n_threads(const tl_pool *p);

/* Runs fn(ctx, ith, nth) on all threads, the caller being ith 0, and returns
 * once every call has returned. Everything written by any thread inside fn
 * is visible to the caller afterwards, and everything the caller wrote before
 * is visible inside fn. */
void tl_pool_run(tl_pool *p, tl_pool_fn fn, void *ctx);

/* Barrier for use inside a job: blocks until all nth threads of the current
 * run have called it; may be called any number of times per job, but every
 * thread must call it the same number of times. Spins briefly, then sleeps.
 * Memory written before the barrier by any thread is visible after it. */
void tl_pool_barrier(tl_pool *p, int ith);

/* How long an idle thread spins before sleeping, in microseconds (default 50;
 * 0 sleeps at once). Longer spins cut latency between bursts of jobs at the
 * price of burnt CPU. Safe to call between runs; workers pick it up the next
 * time they go idle. */
void tl_pool_set_spin_us(tl_pool *p, int us);

#endif
