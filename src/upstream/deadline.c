#include "upstream/deadline.h"

void
sl_deadline_init(struct sl_deadline *d, uv_timer_t *timer, uv_timer_cb cb, uint64_t first_byte_ms,
                 uint64_t idle_ms)
{
    d->timer = timer;
    d->cb = cb;
    d->first_byte_ms = first_byte_ms;
    d->idle_ms = idle_ms;
    d->last = 0;
    d->got_byte = false;
}

void
sl_deadline_arm(struct sl_deadline *d, bool paused)
{
    uint64_t ms = d->got_byte ? d->idle_ms : d->first_byte_ms;
    if (ms == 0 || paused) {
        uv_timer_stop(d->timer);
        return;
    }
    uv_timer_start(d->timer, d->cb, ms, 0);
}

void
sl_deadline_byte(struct sl_deadline *d, bool paused)
{
    d->last = uv_now(d->timer->loop);
    if (!d->got_byte) {
        d->got_byte = true;
        sl_deadline_arm(d, paused);
    }
}

void
sl_deadline_resume(struct sl_deadline *d)
{
    d->last = uv_now(d->timer->loop);
    sl_deadline_arm(d, false);
}

bool
sl_deadline_expired(struct sl_deadline *d, enum sl_curl_timeout *which)
{
    *which = SL_CURL_TIMEOUT_FIRST_BYTE;
    if (d->got_byte) {
        uint64_t now = uv_now(d->timer->loop), due = d->last + d->idle_ms;
        if (now < due) {
            uv_timer_start(d->timer, d->cb, due - now, 0);
            return false;
        }
        *which = SL_CURL_TIMEOUT_IDLE;
    }
    return true;
}
