/* pool.c — persistent workers that spin on a generation counter, then sleep.
 *
 * Protocol (all counters are 32-bit words so a futex can wait on them):
 *   gen      bumped by the caller to publish a job (fn, ctx, pending);
 *   pending  workers still running the job; the one that takes it to zero
 *   done     stores the job's gen there, which is what the caller waits on;
 *   bar_*    a phase-counting barrier for use inside jobs.
 * A thread that gives up spinning registers itself in the word's sleeper
 * count before re-checking the word and sleeping; a writer that finds the
 * count non-zero after its store issues a wake. Both sides use seq_cst, so
 * at least one of them sees the other (no lost wake-ups), and the common
 * all-spinning case makes no system call at all. */
#include "base/pool.h"
#include "base/clock.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

#define TL_POOL_MAX_THREADS 4096
#define TL_POOL_DEFAULT_SPIN_US 50

/* A futex-able word plus the number of threads sleeping on it, on its own
 * cache line so that spinning readers of one word do not slow the others. */
typedef struct wait_word {
    _Alignas(64) _Atomic uint32_t v;
    _Atomic int sleepers;
} wait_word;

typedef struct worker_arg {
    tl_pool *pool;
    int ith;
} worker_arg;

struct tl_pool {
    wait_word gen;
    wait_word done;
    wait_word bar_phase;
    _Alignas(64) _Atomic int pending;
    _Alignas(64) _Atomic int bar_count;
    _Alignas(64) tl_pool_fn fn;     /* written by the caller before gen++ */
    void *ctx;
    _Atomic bool stop;
    int n;
    bool oversubscribed;            /* more threads than online CPUs */
    _Atomic uint64_t spin_ns;       /* idle workers read it while spinning */
    pthread_t *threads;             /* n-1 workers */
    worker_arg *args;
    int n_started;
#ifndef __linux__
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
};

/* ---------------------------------------------------------- sleep / wake */

#ifdef __linux__
static void os_wait(tl_pool *p, wait_word *w, uint32_t val) {
    (void)p;
    /* The kernel re-checks *v == val atomically before sleeping; EINTR and
     * spurious returns are handled by the caller's loop. */
    syscall(SYS_futex, (uint32_t *)&w->v, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void os_wake(tl_pool *p, wait_word *w) {
    (void)p;
    syscall(SYS_futex, (uint32_t *)&w->v, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static void os_wait(tl_pool *p, wait_word *w, uint32_t val) {
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&w->v) == val) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
static void os_wake(tl_pool *p, wait_word *w) {
    (void)w;
    /* Taking the mutex orders this wake after a sleeper's check-then-wait. */
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
#endif

/* Returns once w->v != val (with acquire semantics). */
static void wait_while_eq(tl_pool *p, wait_word *w, uint32_t val) {
    if (atomic_load_explicit(&w->v, memory_order_acquire) != val) return;
    const uint64_t spin_ns = atomic_load_explicit(&p->spin_ns, memory_order_relaxed);
    if (spin_ns > 0) {
        uint64_t deadline = 0;
        for (unsigned i = 1;; i++) {
            /* Pause-spin first (the partner is usually running on another
             * CPU and about to finish); after that, or at once when there
             * are more threads than CPUs, yield: a spinner may be holding
             * the very CPU the thread it waits for needs, which on a loaded
             * machine otherwise costs a whole scheduler time slice. */
            bool yielding = p->oversubscribed || i > 256;
            if (yielding) sched_yield();
            else cpu_relax();
            if (atomic_load_explicit(&w->v, memory_order_acquire) != val) return;
            if (yielding || (i & 63) == 0) {   /* the clock costs ~20 ns: poll it rarely */
                uint64_t now = tl_clock_ns();
                if (deadline == 0) deadline = now + spin_ns;
                else if (now >= deadline) break;
            }
        }
    }
    atomic_fetch_add(&w->sleepers, 1);
    while (atomic_load(&w->v) == val) os_wait(p, w, val);
    atomic_fetch_sub(&w->sleepers, 1);
}

static void store_and_wake(tl_pool *p, wait_word *w, uint32_t val) {
    atomic_store(&w->v, val);
    if (atomic_load(&w->sleepers) > 0) os_wake(p, w);
}

/* ----------------------------------------------------------------- pool */

static void *worker_main(void *arg) {
    worker_arg *a = arg;
    tl_pool *p = a->pool;
    uint32_t seen = 0;
    for (;;) {
        wait_while_eq(p, &p->gen, seen);
        seen = atomic_load_explicit(&p->gen.v, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        p->fn(p->ctx, a->ith, p->n);
        /* The last finisher publishes completion; acq_rel makes every
         * worker's writes reach it, and its seq_cst store hands them on. */
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1)
            store_and_wake(p, &p->done, seen);
    }
    return NULL;
}

static void stop_workers(tl_pool *p) {
    if (p->n_started == 0) return;
    atomic_store(&p->stop, true);
    store_and_wake(p, &p->gen, atomic_load(&p->gen.v) + 1);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    p->n_started = 0;
}

tl_status tl_pool_init(int n_threads, tl_pool **out, tl_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > TL_POOL_MAX_THREADS)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "thread pool: n_threads %d not in [1, %d]",
                          n_threads, TL_POOL_MAX_THREADS);
    size_t sz = (sizeof(tl_pool) + 63) & ~(size_t)63;
    tl_pool *p = aligned_alloc(64, sz);
    if (!p) return tl_err_set(err, TL_ERR_NOMEM, "thread pool: out of memory");
    memset(p, 0, sz);
    atomic_init(&p->gen.v, 0);
    atomic_init(&p->done.v, 0);
    atomic_init(&p->bar_phase.v, 0);
    atomic_init(&p->gen.sleepers, 0);
    atomic_init(&p->done.sleepers, 0);
    atomic_init(&p->bar_phase.sleepers, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->stop, false);
    p->n = n_threads;
    atomic_init(&p->spin_ns, (uint64_t)TL_POOL_DEFAULT_SPIN_US * 1000);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    p->oversubscribed = ncpu > 0 && n_threads > ncpu;
#ifndef __linux__
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
#endif
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
        if (!p->threads || !p->args) {
            tl_pool_free(p);
            return tl_err_set(err, TL_ERR_NOMEM, "thread pool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i] = (worker_arg){.pool = p, .ith = i + 1};
            int rc = pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]);
            if (rc != 0) {
                tl_pool_free(p);
                return tl_err_set(err, TL_ERR_INTERNAL,
                                  "thread pool: cannot start thread %d of %d (error %d)",
                                  i + 1, n_threads, rc);
            }
            p->n_started++;
        }
    }
    *out = p;
    return TL_OK;
}

void tl_pool_free(tl_pool *p) {
    if (!p) return;
    stop_workers(p);
#ifndef __linux__
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
#endif
    free(p->threads);
    free(p->args);
    free(p);
}

int tl_pool_n_threads(const tl_pool *p) { return p ? p->n : 1; }

void tl_pool_set_spin_us(tl_pool *p, int us) {
    if (p) atomic_store_explicit(&p->spin_ns, us > 0 ? (uint64_t)us * 1000 : 0, memory_order_relaxed);
}

void tl_pool_run(tl_pool *p, tl_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    /* Only this thread writes gen, so a plain read-then-store is enough; the
     * seq_cst store publishes fn, ctx and pending to the workers. */
    uint32_t g = atomic_load_explicit(&p->gen.v, memory_order_relaxed) + 1;
    store_and_wake(p, &p->gen, g);
    fn(ctx, 0, p->n);
    /* done moves from g-1 to g exactly once during this job. */
    wait_while_eq(p, &p->done, g - 1);
}

void tl_pool_barrier(tl_pool *p, int ith) {
    (void)ith;
    if (p->n == 1) return;
    /* Read the phase before arriving: it cannot move until we have arrived. */
    uint32_t phase = atomic_load_explicit(&p->bar_phase.v, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == p->n - 1) {
        /* Last to arrive: reset before releasing, so that a thread racing
         * into the next barrier counts from zero. */
        atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
        store_and_wake(p, &p->bar_phase, phase + 1);
    } else {
        wait_while_eq(p, &p->bar_phase, phase);
    }
}
