/*
 * clock.h -- the library's clocks, once.
 */
#ifndef LLS_BASE_CLOCK_H
#define LLS_BASE_CLOCK_H

#include <stdint.h>

/* Microseconds since the Unix epoch (wall clock): row times, expiry. */
int64_t lls_now_us(void);

/* Microseconds on a monotonic clock: durations and latencies. */
double lls_mono_us(void);

#endif
