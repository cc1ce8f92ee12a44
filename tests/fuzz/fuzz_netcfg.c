/* fuzz_netcfg.c — libFuzzer target: nb_net_parse on arbitrary text must
 * return a network or an error with a message (file and line); never crash,
 * leak or hit UB. Building is not fuzzed: a valid description may ask for
 * any amount of memory. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0; /* the parser takes a C string; an embedded NUL ends it */
    nb_clear_error();
    nb_net *net = nb_net_parse(text, "fuzz.cfg");
    free(text);
    if (!net) {
        if (!strstr(nb_errmsg(), "fuzz.cfg")) abort(); /* every failure names the file */
        return 0;
    }
    if (nb_net_layers(net) < 0 || !nb_net_source(net)) abort();
    for (int i = 0; i < nb_net_layers(net); i++)
        if (!nb_net_layer_name(net, i)) abort();
    nb_net_free(net);
    return 0;
}
