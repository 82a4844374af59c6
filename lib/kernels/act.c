/* act.c: activation functions and their derivatives. */
#include <math.h>

#include "dnngen.h"
#include "kernels.h"

/* sigmoid(x) = 1 / (1 + exp(-x)), evaluated without overflow. */
static inline float sigmoidf(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

#define DNG__SQRT1_2 0.70710678118654752440f
#define DNG__INV_SQRT_2PI 0.39894228040143267794f

void dng__act_forward(int kind, float param, const float *x, float *y,
                      int64_t n)
{
    switch (kind) {
    case DNG_ACT_RELU: /* max(0, x) */
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case DNG_ACT_LEAKY_RELU: /* x > 0 ? x : a x */
        /* Both sides computed, then selected: no branch, so it vectorises. */
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], s = param * v;
            y[i] = v > 0.0f ? v : s;
        }
        break;
    case DNG_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = sigmoidf(x[i]);
        break;
    case DNG_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case DNG_ACT_GELU: /* x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 */
        for (int64_t i = 0; i < n; i++)
            y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * DNG__SQRT1_2));
        break;
    default: /* identity */
        if (y != x)
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i];
        break;
    }
}

void dng__act_backward(int kind, float param, const float *x, const float *y,
                       const float *dy, float *dx, int64_t n)
{
    switch (kind) {
    case DNG_ACT_RELU:
        for (int64_t i = 0; i < n; i++) {
            float g = dy[i];
            dx[i] = x[i] > 0.0f ? g : 0.0f;
        }
        break;
    case DNG_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            dx[i] = x[i] > 0.0f ? dy[i] : param * dy[i];
        break;
    case DNG_ACT_SIGMOID: /* y (1 - y) */
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case DNG_ACT_TANH: /* 1 - y^2 */
        for (int64_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case DNG_ACT_GELU: /* Phi(x) + x phi(x) */
        for (int64_t i = 0; i < n; i++) {
            float cdf = 0.5f * (1.0f + erff(x[i] * DNG__SQRT1_2));
            float pdf = DNG__INV_SQRT_2PI * expf(-0.5f * x[i] * x[i]);
            dx[i] = dy[i] * (cdf + x[i] * pdf);
        }
        break;
    default:
        if (dx != dy)
            for (int64_t i = 0; i < n; i++)
                dx[i] = dy[i];
        break;
    }
}

/* y_i = exp(x_i - max) / sum_j exp(x_j - max), per row */
void dng__softmax_forward(const float *x, float *y, int64_t rows,
                          int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = xr[0];
        double sum = 0.0;
        for (int64_t j = 1; j < cols; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        for (int64_t j = 0; j < cols; j++) {
            yr[j] = expf(xr[j] - mx);
            sum += yr[j];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < cols; j++)
            yr[j] *= inv;
    }
}

/* dx_i = y_i (dy_i - sum_j dy_j y_j) */
void dng__softmax_backward(const float *y, const float *dy, float *dx,
                           int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++)
            dot += (double)dyr[j] * yr[j];
        for (int64_t j = 0; j < cols; j++)
            dxr[j] = yr[j] * (dyr[j] - (float)dot);
    }
}

/* y_i = (x_i - max) - log sum_j exp(x_j - max), per row. The max comes
 * off first: x_i - max is exact for nearby logits, whereas max + log-sum
 * rounded to float would cost an ulp of the logits (1e-3 at 1e4). */
void dng__log_softmax(const float *x, float *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = xr[0];
        double sum = 0.0;
        for (int64_t j = 1; j < cols; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        for (int64_t j = 0; j < cols; j++)
            sum += exp((double)(xr[j] - mx));
        float ls = (float)log(sum);
        for (int64_t j = 0; j < cols; j++)
            yr[j] = (xr[j] - mx) - ls;
    }
}
