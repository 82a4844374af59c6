/* image.c: sample grids as PNG (through libpng) or binary PGM/PPM. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#ifdef DNG_HAVE_PNG
#include <png.h>
#include <setjmp.h>
#endif

#include "io-impl.h"

/* Pixels between neighbouring tiles (as torchvision's make_grid). */
#define GRID_PAD 2
/* The largest grid side we write: far beyond any sample sheet, and small
 * enough that width * height * 3 never overflows. */
#define GRID_MAX_SIDE 65535

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Tile images [N, C, H, W] into an interleaved 8-bit canvas (C channels
 * per pixel) of rows x cols tiles, with black padding between tiles. Each
 * value maps as v in [-1, 1] -> round((v + 1) * 127.5), clamped. */
static void fill_canvas(const dng_tensor *t, int64_t cols, int64_t width,
                        uint8_t *canvas)
{
    int64_t n = t->shape[0], c = t->shape[1], h = t->shape[2],
            w = t->shape[3];
    for (int64_t i = 0; i < n; i++) {
        int64_t y0 = (i / cols) * (h + GRID_PAD);
        int64_t x0 = (i % cols) * (w + GRID_PAD);
        for (int64_t ch = 0; ch < c; ch++) {
            const float *src = t->data + (i * c + ch) * h * w;
            for (int64_t y = 0; y < h; y++) {
                uint8_t *dst = canvas + ((y0 + y) * width + x0) * c + ch;
                for (int64_t x = 0; x < w; x++) {
                    float v = (src[y * w + x] + 1.0f) * 127.5f;
                    v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                    dst[x * c] = (uint8_t)(v + 0.5f);
                }
            }
        }
    }
}

static dng_status write_pnm(const char *path, const uint8_t *canvas,
                            int64_t width, int64_t height, int64_t c)
{
    char head[64];
    int k = snprintf(head, sizeof head, "P%c\n%" PRId64 " %" PRId64 "\n255\n",
                     c == 1 ? '5' : '6', width, height);
    size_t bytes = (size_t)(width * height * c);
    dng__wbuf w = {0};
    dng_status s;
    dng__w_bytes(&w, head, (size_t)k);
    dng__w_bytes(&w, canvas, bytes);
    if (w.failed) {
        dng__wbuf_free(&w);
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "dng_write_image_grid: "
                          "cannot buffer %zu bytes", bytes);
    }
    s = dng__write_file_atomic("dng_write_image_grid", path, w.data, w.len);
    dng__wbuf_free(&w);
    return s;
}

#ifdef DNG_HAVE_PNG

/* libpng reports errors through a callback that must not return: it
 * records the message and jumps back to the setjmp in write_png. */
typedef struct png_ctx {
    dng__wbuf out;
    char msg[256];
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    /* The library prints nothing. */
    (void)png;
    (void)msg;
}

static void png_on_write(png_structp png, png_bytep data, size_t len)
{
    png_ctx *ctx = png_get_io_ptr(png);
    dng__w_bytes(&ctx->out, data, len);
    if (ctx->out.failed)
        png_error(png, "out of memory");
}

static void png_on_flush(png_structp png)
{
    (void)png;
}

static dng_status write_png(const char *path, const uint8_t *canvas,
                            int64_t width, int64_t height, int64_t c)
{
    png_structp png;
    png_infop info;
    png_ctx *ctx;
    dng_status s;
    /* The context lives on the heap: locals changed between setjmp and
     * longjmp would be indeterminate after the jump, and ctx (like png
     * and info) is set once before setjmp and never reassigned. */
    ctx = dng__calloc(1, sizeof *ctx, "dng_write_image_grid");
    if (!ctx)
        return DNG_ERR_OUT_OF_MEMORY;
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error,
                                  png_on_warning);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        dng__free(ctx);
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "dng_write_image_grid: "
                          "cannot create a PNG writer");
    }
    if (setjmp(png_jmpbuf(png))) {
        s = dng__error(ctx->out.failed ? DNG_ERR_OUT_OF_MEMORY : DNG_ERR_IO,
                       "dng_write_image_grid: libpng failed on %s: %s", path,
                       ctx->msg);
        png_destroy_write_struct(&png, &info);
        dng__wbuf_free(&ctx->out);
        dng__free(ctx);
        return s;
    }
    png_set_write_fn(png, ctx, png_on_write, png_on_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t y = 0; y < height; y++)
        png_write_row(png, canvas + y * width * c);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    s = dng__write_file_atomic("dng_write_image_grid", path, ctx->out.data,
                               ctx->out.len);
    dng__wbuf_free(&ctx->out);
    dng__free(ctx);
    return s;
}

#endif /* DNG_HAVE_PNG */

DNG_API dng_status dng_write_image_grid(const dng_tensor *images, int cols,
                                        const char *path)
{
    int64_t n, c, h, w, rows, ncols, width, height;
    uint8_t *canvas;
    bool png = false;
    dng_status s;
    char shape[160];
    DNG__CHECK_NULL(images, "dng_write_image_grid");
    DNG__CHECK_NULL(path, "dng_write_image_grid");
    if (!*path)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_write_image_grid: "
                          "path is empty");
    if (images->ndim != 4 || (images->shape[1] != 1 && images->shape[1] != 3))
        return dng__error(DNG_ERR_SHAPE, "dng_write_image_grid: images has "
                          "shape %s; expected [N, C, H, W] with C = 1 or 3",
                          dng__shape_str(shape, sizeof shape, images->ndim,
                                         images->shape));
    if (cols < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_write_image_grid: "
                          "cols = %d is not positive", cols);
    n = images->shape[0];
    c = images->shape[1];
    h = images->shape[2];
    w = images->shape[3];
    if (ends_with(path, ".png")) {
#ifdef DNG_HAVE_PNG
        png = true;
#else
        return dng__error(DNG_ERR_UNSUPPORTED, "dng_write_image_grid: %s: "
                          "this build has no PNG support (libpng); write a "
                          ".pgm or .ppm file instead", path);
#endif
    } else if ((ends_with(path, ".pgm") && c != 1) ||
               (ends_with(path, ".ppm") && c != 3)) {
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_write_image_grid: "
                          "%s: a %s file holds %s images, these have %"
                          PRId64 " channels", path,
                          c == 1 ? ".ppm" : ".pgm", c == 1 ? "RGB" : "grey",
                          c);
    }
    /* With fewer images than columns, the grid is one row of n. */
    ncols = n < cols ? n : cols;
    rows = (n + ncols - 1) / ncols;
    if (w > GRID_MAX_SIDE || h > GRID_MAX_SIDE ||
        ncols > (GRID_MAX_SIDE + GRID_PAD) / (w + GRID_PAD) ||
        rows > (GRID_MAX_SIDE + GRID_PAD) / (h + GRID_PAD))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_write_image_grid: "
                          "a grid of %" PRId64 " x %" PRId64 " tiles of %"
                          PRId64 " x %" PRId64 " pixels exceeds %d pixels "
                          "per side", rows, ncols, h, w, GRID_MAX_SIDE);
    width = ncols * w + (ncols - 1) * GRID_PAD;
    height = rows * h + (rows - 1) * GRID_PAD;
    for (int64_t i = 0; i < images->numel; i++)
        if (!isfinite(images->data[i]))
            return dng__error(DNG_ERR_NUMERIC, "dng_write_image_grid: "
                              "images holds a non-finite value at flat "
                              "index %" PRId64, i);
    canvas = dng__calloc((size_t)(width * height * c), 1,
                         "dng_write_image_grid");
    if (!canvas)
        return DNG_ERR_OUT_OF_MEMORY;
    fill_canvas(images, ncols, width, canvas);
#ifdef DNG_HAVE_PNG
    if (png)
        s = write_png(path, canvas, width, height, c);
    else
#endif
        s = write_pnm(path, canvas, width, height, c);
    (void)png;
    dng__free(canvas);
    return s;
}
