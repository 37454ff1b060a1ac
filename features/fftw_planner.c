#include "features/fftw_planner.h"

#include <pthread.h>

/* The one piece of global mutable state in cnnkit, and deliberately so: it guards FFTW's own global planner
 * (Debian's libfftw3f_threads would offer fftwf_make_planner_thread_safe(), but that needs another library
 * linked; a mutex does the same job). It holds no cnnkit state, so contexts stay independent. */
static pthread_mutex_t planner_mutex = PTHREAD_MUTEX_INITIALIZER;

void cnk_fftw_planner_lock(void) { pthread_mutex_lock(&planner_mutex); }

void cnk_fftw_planner_unlock(void) { pthread_mutex_unlock(&planner_mutex); }
