/*
 * The built-in demo model: a local generator whose answer depends on the prompt and
 * streams at providers.<name>.tokens_per_second (default 30). No network, no key.
 */
#ifndef SL_UPSTREAM_DEMO_H
#define SL_UPSTREAM_DEMO_H

#include "upstream/provider.h"

extern const struct sl_provider_ops sl_provider_demo;

#endif
