#include <stdlib.h>
#include "mutf7.h"
char *mx_mutf7_decode(const char *in) { (void)in; return NULL; }
char *mx_mutf7_encode(const char *in) { (void)in; return NULL; }
