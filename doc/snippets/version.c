/* version.c: check at run time that the library loaded is one this
 * program can use (doc/abi.md). */
#include <stdio.h>

#include <dnngen.h>

int main(void)
{
    /* DNG_VERSION is the header this program was compiled with;
     * dng_version() is the library the dynamic loader found. */
    int built = DNG_VERSION, running = dng_version();
    printf("built against libdnngen %s, running %s\n", DNG_VERSION_STRING,
           dng_version_string());
    /* The same major version, and a library at least as new as the
     * header: later minor and patch releases only add and fix. */
    if (running / 10000 != built / 10000 || running < built) {
        fprintf(stderr, "this program needs libdnngen %d.%d or a later "
                "%d.x\n", DNG_VERSION_MAJOR, DNG_VERSION_MINOR,
                DNG_VERSION_MAJOR);
        return 1;
    }

    /* An enum value this library does not know is refused, not guessed:
     * a program built against a newer header learns it at once. */
    dng_layer *l = dng_activation((dng_act)99, 0.0f);
    printf("unknown activation: %s\n", l ? "accepted" : dng_last_error());
    dng_layer_destroy(l);
    printf("unknown status: %s\n", dng_status_string((dng_status)-99));
    return 0;
}
