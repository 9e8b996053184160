/* Every test of test_httpcall.c, through libcurl (http_client: curl) instead of h1.c. */
#define HTTPCALL_CLIENT SL_HTTP_CLIENT_CURL
#include "test_httpcall.c"
