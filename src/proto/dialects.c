#include "proto/dialects.h"

#include <string.h>

#include "proto/native.h"

const struct sl_proto *
sl_proto_by_dialect(const char *name)
{
    if (strcmp(name, "native") == 0)
        return &sl_proto_native_sio;
    return NULL;
}
