/* reduce.c: bias adds, row/column sums and small elementwise helpers. */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* y[i, j] += b[j] */
void dng__add_row_bias(float *y, const float *b, int64_t rows, int64_t cols,
                       int64_t ld)
{
    for (int64_t i = 0; i < rows; i++) {
        float *r = y + i * ld;
        for (int64_t j = 0; j < cols; j++)
            r[j] += b[j];
    }
}

/* y[c, i] += b[c] */
void dng__add_channel_bias(float *y, const float *b, int64_t channels,
                           int64_t plane)
{
    for (int64_t c = 0; c < channels; c++) {
        float *r = y + c * plane;
        const float v = b[c];
        for (int64_t i = 0; i < plane; i++)
            r[i] += v;
    }
}

/* out[j] (+)= sum_i x[i, j] */
void dng__col_sums(const float *x, int64_t rows, int64_t cols, int64_t ld,
                   float *out, bool acc)
{
    if (!acc)
        for (int64_t j = 0; j < cols; j++)
            out[j] = 0.0f;
    for (int64_t i = 0; i < rows; i++) {
        const float *r = x + i * ld;
        for (int64_t j = 0; j < cols; j++)
            out[j] += r[j];
    }
}

/* out[i] (+)= sum_j x[i, j], each row summed in double for accuracy on
 * long rows (conv planes). */
void dng__row_sums(const float *x, int64_t rows, int64_t cols, int64_t ld,
                   float *out, bool acc)
{
    for (int64_t i = 0; i < rows; i++) {
        const float *r = x + i * ld;
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++)
            s += r[j];
        out[i] = acc ? out[i] + (float)s : (float)s;
    }
}

/* y += alpha x */
void dng__axpy(int64_t n, float alpha, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* x *= alpha */
void dng__scale(int64_t n, float alpha, float *x)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= alpha;
}

/* sum x_i^2 in double */
double dng__sumsq(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}

bool dng__all_finite(const float *x, int64_t n)
{
    /* A float is NaN or infinite when its exponent bits are all ones; an
     * integer OR-reduction keeps the loop branch-free so it vectorises. */
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}
