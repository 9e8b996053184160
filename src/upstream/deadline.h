/*
 * A transfer's response deadlines, shared by the two HTTP clients (curl.c, h1.c): the first
 * byte within first_byte_ms of the start (a wait for a connection included), then no silence
 * longer than idle_ms. One uv_timer_t, re-armed lazily: a piece of the response only stores
 * its time, and the timer, when it fires before the real deadline, moves itself there. A
 * paused transfer has no deadline; on resume the idle one restarts from zero. A timeout of 0
 * disables that deadline.
 */
#ifndef SL_UPSTREAM_DEADLINE_H
#define SL_UPSTREAM_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "upstream/curl.h" /* enum sl_curl_timeout */

struct sl_deadline {
    uv_timer_t *timer; /* the transfer's, which may serve it for other work too */
    uv_timer_cb cb;    /* the transfer's timer callback: it calls sl_deadline_expired() */
    uint64_t first_byte_ms, idle_ms;
    uint64_t last; /* loop time of the last response byte */
    bool got_byte;
};

void sl_deadline_init(struct sl_deadline *d, uv_timer_t *timer, uv_timer_cb cb,
                      uint64_t first_byte_ms, uint64_t idle_ms);

/* Starts the deadline that applies now, counted from now; stops the timer while paused. */
void sl_deadline_arm(struct sl_deadline *d, bool paused);

/* A response byte arrived: from now on only the idle deadline applies. */
void sl_deadline_byte(struct sl_deadline *d, bool paused);

/* The transfer resumes after a pause: the idle deadline starts again from zero. */
void sl_deadline_resume(struct sl_deadline *d);

/*
 * From the timer's callback: whether a deadline has passed (*which tells which); if not, the
 * timer was moved to the real deadline and the callback has nothing to do.
 */
bool sl_deadline_expired(struct sl_deadline *d, enum sl_curl_timeout *which);

#endif
