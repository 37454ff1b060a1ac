/* fftw_planner.h: the one lock around FFTW's planner. FFTW keeps its planner and wisdom in process-global
 * state that is not thread-safe, so every fftwf_plan_* and fftwf_destroy_plan call in cnnkit goes through here. */
#ifndef CNK_FFTW_PLANNER_H
#define CNK_FFTW_PLANNER_H

/* Take before creating or destroying an FFTW plan, release right after. Executing plans needs no lock. */
void cnk_fftw_planner_lock(void);
void cnk_fftw_planner_unlock(void);

#endif
