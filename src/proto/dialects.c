/*
 * The dialects by the names configuration gives them (proto/dialects.h).
 */
#include "proto/dialects.h"

#include <string.h>

#include "proto/native.h"

static const struct {
    const char *name;
    const struct sl_proto *proto;
} dialects[] = {
    {"native", &sl_proto_native_sio}, {"chat", &sl_proto_chat}, {"stream", &sl_proto_stream},
    {"ws-chat", &sl_proto_ws_chat},   {"ai", &sl_proto_ai},     {"llm", &sl_proto_llm},
};

const struct sl_proto *
sl_proto_by_dialect(const char *name)
{
    for (size_t i = 0; i < sizeof(dialects) / sizeof(dialects[0]); i++)
        if (strcmp(dialects[i].name, name) == 0)
            return dialects[i].proto;
    return NULL;
}
