/* Work sharing for the kernels: run n tasks on the calling thread and up to
 * n_threads - 1 helper threads, where the caller never waits for a thread
 * that has not started.
 *
 * Why not an OpenMP parallel loop: a parallel region ends in a barrier that
 * waits for every thread of the team to arrive. On a busy machine (another
 * process on the other core, or another runtime's spinning threads) a
 * descheduled team thread arrives a scheduler slice later, milliseconds, and
 * the whole step waits for it, however the work was scheduled. Here the
 * caller takes tasks itself and only waits for the tasks that another thread
 * has claimed and is running; a helper that wakes up late finds no task left
 * and goes back to sleep without holding anyone up.
 *
 * The job: a task function, its context and a task count, published with a
 * generation number. The next task to claim and the generation share one
 * 64-bit word (generation << 32 | index), so a helper claims a task of the
 * job it saw or nothing: a compare-and-swap against a newer generation fails.
 * A job's fields stay valid while any of its tasks is unfinished, because the
 * caller publishes the next job only after every task of this one is done.
 *
 * Waiting: helpers spin briefly after a job (back-to-back steps find them
 * awake), then sleep on a condition variable; the caller wakes them only when
 * some sleep. Two callers at once (kernels release the GIL): the second runs
 * its tasks on its own thread. After fork() the child starts with no helpers.
 *
 * Results never depend on which thread runs which task: the kernels' tasks
 * write disjoint elements, and reductions store one partial per task and
 * combine them in task order (reductions.pxi).
 *
 * Without POSIX threads (Windows) the tasks run under an OpenMP dynamic loop.
 */
#ifndef CYOPTIM_POOL_H
#define CYOPTIM_POOL_H

#include <stdint.h>

typedef void (*cyoptim_task_fn)(void* ctx, int64_t task);

#if defined(_WIN32) || !defined(_OPENMP) && !defined(__unix__) && !defined(__APPLE__)

static void cyoptim_pool_run(cyoptim_task_fn fn, void* ctx, int64_t n_tasks, int n_threads) {
    int64_t t;
#ifdef _OPENMP
    #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads) if (n_threads > 1)
#endif
    for (t = 0; t < n_tasks; t++)
        fn(ctx, t);
}
static int cyoptim_pool_helpers(void) { return 0; }

#else

#include <pthread.h>
#include <sched.h>

#include <stdlib.h>

#define CYOPTIM_POOL_MAX_HELPERS 255
/* Spins (each a pause instruction: tens to a hundred cycles) before a helper
 * sleeps, unless the environment variable CYOPTIM_POOL_SPINS says otherwise
 * (read when the first helper starts; 0: sleep at once). A spinning helper
 * takes a core from whatever else runs between steps: measured on 2 cores
 * with one busy process (docs/performance.md), the README's Quickstart loop
 * took 0.28 s with 2000 spins and 0.32-0.40 s with 20000; idle, 0.25 s and
 * 0.23-0.25 s. */
#define CYOPTIM_POOL_DEFAULT_SPINS 2000

#if defined(__x86_64__) || defined(__i386__)
#define CYOPTIM_PAUSE() __builtin_ia32_pause()
#else
#define CYOPTIM_PAUSE() ((void)0)
#endif

static struct {
    pthread_mutex_t lock;          /* guards sleeping helpers and thread start */
    pthread_cond_t wake;
    pthread_mutex_t submit;        /* one job at a time */
    int n_helpers;                 /* helper threads started */
    int sleepers;                  /* helpers in pthread_cond_wait (atomic) */
    /* the current job (written by the caller before it publishes `next`) */
    cyoptim_task_fn fn;
    void* ctx;
    int64_t n_tasks;
    int invited;                   /* helpers that may join this job */
    int joined;                    /* helpers that joined it (atomic) */
    int64_t done;                  /* tasks finished (atomic) */
    uint64_t next;                 /* generation << 32 | next task (atomic) */
    long spins;                    /* spins before sleeping (helpers and the waiting caller) */
} cyoptim_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                  PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                  CYOPTIM_POOL_DEFAULT_SPINS};

static uint32_t cyoptim_generation(uint64_t word) { return (uint32_t)(word >> 32); }

/* Claim and run tasks of generation gen until none is left; returns how many ran. */
static int64_t cyoptim_pool_work(uint32_t gen) {
    int64_t ran = 0;
    for (;;) {
        uint64_t word = __atomic_load_n(&cyoptim_pool.next, __ATOMIC_ACQUIRE);
        int64_t task = (int64_t)(word & 0xffffffffu);
        if (cyoptim_generation(word) != gen
                || task >= __atomic_load_n(&cyoptim_pool.n_tasks, __ATOMIC_RELAXED))
            return ran;
        if (!__atomic_compare_exchange_n(&cyoptim_pool.next, &word, word + 1, 0,
                                         __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        /* Claimed: the job cannot change until this task is counted done. */
        cyoptim_pool.fn(cyoptim_pool.ctx, task);
        __atomic_add_fetch(&cyoptim_pool.done, 1, __ATOMIC_RELEASE);
        ran++;
    }
}

static void* cyoptim_pool_helper(void* unused) {
    uint32_t seen = cyoptim_generation(__atomic_load_n(&cyoptim_pool.next, __ATOMIC_ACQUIRE));
    (void)unused;
    for (;;) {
        uint32_t gen;
        long spins = 0;
        while ((gen = cyoptim_generation(__atomic_load_n(&cyoptim_pool.next,
                                                         __ATOMIC_ACQUIRE))) == seen) {
            if (++spins < cyoptim_pool.spins) {
                CYOPTIM_PAUSE();
                continue;
            }
            pthread_mutex_lock(&cyoptim_pool.lock);
            __atomic_add_fetch(&cyoptim_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            while (cyoptim_generation(__atomic_load_n(&cyoptim_pool.next,
                                                      __ATOMIC_SEQ_CST)) == seen)
                pthread_cond_wait(&cyoptim_pool.wake, &cyoptim_pool.lock);
            __atomic_sub_fetch(&cyoptim_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&cyoptim_pool.lock);
            spins = 0;
        }
        seen = gen;
        /* Only as many helpers as the job asked for take part. */
        if (__atomic_add_fetch(&cyoptim_pool.joined, 1, __ATOMIC_ACQ_REL)
                <= __atomic_load_n(&cyoptim_pool.invited, __ATOMIC_RELAXED))
            cyoptim_pool_work(gen);
    }
    return NULL;
}

static void cyoptim_pool_after_fork(void) {
    /* The child has none of the parent's threads. */
    pthread_mutex_init(&cyoptim_pool.lock, NULL);
    pthread_cond_init(&cyoptim_pool.wake, NULL);
    pthread_mutex_init(&cyoptim_pool.submit, NULL);
    cyoptim_pool.n_helpers = 0;
    cyoptim_pool.sleepers = 0;
}

/* Start helpers until there are `wanted` (under the lock); returns how many there are. */
static int cyoptim_pool_grow(int wanted) {
    static int fork_handler = 0;
    pthread_attr_t attr;
    pthread_t thread;
    if (wanted > CYOPTIM_POOL_MAX_HELPERS)
        wanted = CYOPTIM_POOL_MAX_HELPERS;
    pthread_mutex_lock(&cyoptim_pool.lock);
    if (!fork_handler) {
        const char* spins = getenv("CYOPTIM_POOL_SPINS");
        if (spins != NULL && *spins != '\0')
            cyoptim_pool.spins = strtol(spins, NULL, 10);
        pthread_atfork(NULL, NULL, cyoptim_pool_after_fork);
        fork_handler = 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (cyoptim_pool.n_helpers < wanted
           && pthread_create(&thread, &attr, cyoptim_pool_helper, NULL) == 0)
        cyoptim_pool.n_helpers++;
    pthread_attr_destroy(&attr);
    pthread_mutex_unlock(&cyoptim_pool.lock);
    return cyoptim_pool.n_helpers;
}

static void cyoptim_pool_run(cyoptim_task_fn fn, void* ctx, int64_t n_tasks, int n_threads) {
    int64_t t;
    uint32_t gen;
    long spins = 0;
    if (n_threads <= 1 || n_tasks <= 1 || pthread_mutex_trylock(&cyoptim_pool.submit) != 0) {
        for (t = 0; t < n_tasks; t++)
            fn(ctx, t);
        return;
    }
    if (cyoptim_pool.n_helpers < n_threads - 1)
        cyoptim_pool_grow(n_threads - 1);
    cyoptim_pool.fn = fn;
    cyoptim_pool.ctx = ctx;
    __atomic_store_n(&cyoptim_pool.n_tasks, n_tasks, __ATOMIC_RELAXED);
    __atomic_store_n(&cyoptim_pool.invited, n_threads - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&cyoptim_pool.joined, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cyoptim_pool.done, 0, __ATOMIC_RELAXED);
    gen = cyoptim_generation(cyoptim_pool.next) + 1;
    __atomic_store_n(&cyoptim_pool.next, (uint64_t)gen << 32, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cyoptim_pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&cyoptim_pool.lock);
        pthread_cond_broadcast(&cyoptim_pool.wake);
        pthread_mutex_unlock(&cyoptim_pool.lock);
    }
    cyoptim_pool_work(gen);
    /* Every task is claimed; wait for the ones other threads are running. */
    while (__atomic_load_n(&cyoptim_pool.done, __ATOMIC_ACQUIRE) < n_tasks) {
        if (++spins < cyoptim_pool.spins)
            CYOPTIM_PAUSE();
        else
            sched_yield();
    }
    pthread_mutex_unlock(&cyoptim_pool.submit);
}

static int cyoptim_pool_helpers(void) { return cyoptim_pool.n_helpers; }

#endif
#endif
